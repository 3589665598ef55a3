rule measure_resolution:
    """Matched-filter FWHM of a reconstruction method (noise-free calibration cases)."""
    input:
        split=SPLIT,
    output:
        f"{RESULTS}/resolution/{{method}}.json",
    params:
        config=CONFIG,
    log:
        log_file("resolution", "{method}"),
    benchmark:
        bench_file("resolution", "{method}")
    conda:
        "../envs/dlpvc.yaml"
    script:
        "../workflow_scripts/measure_resolution.py"
