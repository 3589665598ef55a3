rule simulate_projections:
    """Noise-free Lu-177 projections: photopeak and both scatter windows, counts."""
    input:
        manifest("phantom"),
    output:
        manifest("simulate"),
    params:
        cases=cases_of,
        retry=retry("simulate"),
        fingerprint=fingerprint("simulate"),
        depends_on=depends_on("simulate"),
        camera=SETTINGS.camera,
        randomise=SETTINGS.randomise,
        grid=SETTINGS.grid,
        results=results_folder,
        layout=LAYOUT,
    log:
        log_file("simulate"),
    benchmark:
        bench_file("simulate")
    threads: 1
    resources:
        mem_mb=8000,
        runtime=240,
    conda:
        "../envs/spect.yaml"
    script:
        "../workflow_scripts/simulate_projections.py"


rule add_noise:
    """Poisson realisation of every window, seeded by (seed, case id)."""
    input:
        manifest("simulate"),
    output:
        manifest("noise"),
    params:
        cases=cases_of,
        retry=retry("noise"),
        fingerprint=fingerprint("noise"),
        depends_on=depends_on("noise"),
        seed=SETTINGS.seed,
        results=results_folder,
        layout=LAYOUT,
    log:
        log_file("noise"),
    benchmark:
        bench_file("noise")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/spect.yaml"
    script:
        "../workflow_scripts/add_noise.py"
