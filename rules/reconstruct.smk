rule reconstruct_osem:
    """OSEM with attenuation and TEW scatter correction: noRR (no PSF) or RR (with PSF), n and nf."""
    input:
        noise=manifest("noise"),
        calibration=calibration_file(),
    output:
        manifest("recon_{recon}"),
    params:
        cases=cases_of,
        retry=retry("recon_{recon}"),
        fingerprint=fingerprint("recon_{recon}"),
        depends_on=depends_on("recon_{recon}"),
        recon=lambda wildcards: SETTINGS.reconstructions[wildcards.recon],
        camera=SETTINGS.camera,
        randomise=SETTINGS.randomise,
        calibration=SETTINGS.calibration,
        grid=SETTINGS.grid,
        results=results_folder,
        layout=LAYOUT,
    log:
        log_file("recon_{recon}"),
    benchmark:
        bench_file("recon_{recon}")
    threads: 1
    resources:
        mem_mb=8000,
        runtime=480,
    conda:
        "../envs/spect.yaml"
    script:
        "../workflow_scripts/reconstruct_osem.py"


rule prune_intermediates:
    """Record bytes per artefact of each finished case; delete what config 'storage' drops."""
    input:
        manifest("recon_noRR"),
        manifest("recon_RR"),
    output:
        manifest("prune"),
    params:
        cases=cases_of,
        fingerprint=fingerprint("prune"),
        storage=SETTINGS.storage,
        results=results_folder,
        layout=LAYOUT,
    log:
        log_file("prune"),
    benchmark:
        bench_file("prune")
    conda:
        "../envs/dlpvc.yaml"
    script:
        "../workflow_scripts/prune_intermediates.py"
