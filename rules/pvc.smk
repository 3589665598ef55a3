rule correct_iterative_yang:
    """Iterative-Yang PVC of the test cases (matched-filter FWHM; truth and SPECT-derived masks)."""
    input:
        split=SPLIT,
        resolution=resolution_of,
    output:
        f"{RESULTS}/iy/{{dataset}}.json",
    params:
        config=CONFIG,
    log:
        log_file("iy", "{dataset}"),
    benchmark:
        bench_file("iy", "{dataset}")
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    conda:
        "../envs/petpvc.yaml" if config["pvc"]["backend"] == "petpvc" else "../envs/dlpvc.yaml"
    script:
        "../workflow_scripts/correct_iterative_yang.py"
