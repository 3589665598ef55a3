rule calibrate_reconstruction:
    """Calibration cylinder acquired with the patient protocol, reconstructed with one reconstruction's settings."""
    output:
        calibration_file(),
    params:
        job="calibration_{recon}",
        fingerprint=fingerprint("calibration_{recon}"),
        depends_on=depends_on("calibration_{recon}"),
        recon=lambda wildcards: SETTINGS.reconstructions[wildcards.recon],
        calibration=SETTINGS.calibration,
        camera=SETTINGS.camera,
        grid=SETTINGS.grid,
        seed=SETTINGS.seed,
        results=results_folder,
        layout=LAYOUT,
    log:
        log_file("calibration", "{recon}"),
    benchmark:
        bench_file("calibration", "{recon}")
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    conda:
        "../envs/spect.yaml"
    script:
        "../workflow_scripts/calibrate_reconstruction.py"
