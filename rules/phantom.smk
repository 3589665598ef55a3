rule generate_phantoms:
    """Anatomy, attenuation and random activity of each case in a shard."""
    output:
        manifest("phantom"),
    params:
        cases=cases_of,
        retry=retry("phantom"),
        fingerprint=fingerprint("phantom"),
        depends_on=depends_on("phantom"),
        phantom=SETTINGS.phantom,
        grid=SETTINGS.grid,
        seed=SETTINGS.seed,
        results=results_folder,
        layout=LAYOUT,
    log:
        log_file("phantom"),
    benchmark:
        bench_file("phantom")
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/dlpvc.yaml"
    script:
        "../workflow_scripts/generate_phantoms.py"


rule make_phantom_montage:
    """Figure of a few cases' anatomy and activity (like the paper's Figure 2)."""
    input:
        manifest("phantom", SHARDS[0]),
    output:
        str(LAYOUT.montage_file()),
    params:
        job="montage",
        fingerprint=fingerprint("montage"),
        depends_on=depends_on("montage"),
        results=results_folder,
        layout=LAYOUT,
    log:
        log_file("figures", "phantom_montage"),
    benchmark:
        bench_file("figures", "phantom_montage")
    conda:
        "../envs/dlpvc.yaml"
    script:
        "../workflow_scripts/make_phantom_montage.py"
