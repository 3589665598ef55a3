rule correct_iterative_yang:
    """Iterative-Yang PVC of the test cases (matched-filter FWHM; truth and SPECT-derived masks)."""
    input:
        split=SPLIT,
        resolution=lambda wildcards: resolution_file(recon_of_dataset(wildcards)),
        recon=lambda wildcards: recon_manifests(recon_of_dataset(wildcards)),
    output:
        iy_done(),
    params:
        job="iy_{dataset}",
        fingerprint=fingerprint("iy_{dataset}"),
        depends_on=depends_on("iy_{dataset}"),
        spec=SETTINGS.pvc,
        results=results_folder,
        layout=LAYOUT,
    log:
        log_file("iy", "{dataset}"),
    benchmark:
        bench_file("iy", "{dataset}")
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    conda:
        "../envs/petpvc.yaml" if SETTINGS.pvc.backend == "petpvc" else "../envs/dlpvc.yaml"
    script:
        "../workflow_scripts/correct_iterative_yang.py"


rule correct_deconvolution:
    """Mask-free baselines of the test cases: Richardson-Lucy and Van Cittert (PETPVC's definitions)."""
    input:
        split=SPLIT,
        resolution=lambda wildcards: resolution_file(recon_of_dataset(wildcards)),
        recon=lambda wildcards: recon_manifests(recon_of_dataset(wildcards)),
    output:
        deconvolution_done(),
    params:
        job="deconv_{dataset}",
        fingerprint=fingerprint("deconv_{dataset}"),
        depends_on=depends_on("deconv_{dataset}"),
        spec=SETTINGS.pvc,
        results=results_folder,
        layout=LAYOUT,
    log:
        log_file("deconv", "{dataset}"),
    benchmark:
        bench_file("deconv", "{dataset}")
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    conda:
        "../envs/dlpvc.yaml"
    script:
        "../workflow_scripts/correct_deconvolution.py"
