def _resolution_of(wildcards):
    return f"{RESULTS}/resolution/{wildcards.dataset.split('_')[0]}.json"


rule correct_iterative_yang:
    """Iterative-Yang PVC of the test cases (matched-filter FWHM; truth and SPECT-derived masks)."""
    input:
        split=SPLIT,
        resolution=_resolution_of,
    output:
        f"{RESULTS}/iy/{{dataset}}.json",
    params:
        config=CONFIG,
        results=RESULTS,
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
