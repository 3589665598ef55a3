rule measure_resolution:
    """Matched-filter FWHM of a reconstruction (noise-free calibration cases)."""
    input:
        split=SPLIT,
        recon=lambda wildcards: recon_manifests(wildcards.recon),
    output:
        resolution_file(),
    params:
        job="resolution_{recon}",
        fingerprint=fingerprint("resolution_{recon}"),
        depends_on=depends_on("resolution_{recon}"),
        spec=SETTINGS.resolution,
        results=results_folder,
        layout=LAYOUT,
    log:
        log_file("resolution", "{recon}"),
    benchmark:
        bench_file("resolution", "{recon}")
    conda:
        "../envs/dlpvc.yaml"
    script:
        "../workflow_scripts/measure_resolution.py"
