rule split_cases:
    """Deterministic train / validation / test lists of every case id (consumers drop unfinished cases)."""
    output:
        SPLIT,
    params:
        job="split",
        fingerprint=fingerprint("split"),
        depends_on=depends_on("split"),
        spec=SETTINGS.split,
        seed=SETTINGS.seed,
        n_cases=SETTINGS.n_cases,
        results=results_folder,
        layout=LAYOUT,
    log:
        log_file("split", "split"),
    benchmark:
        bench_file("split", "split")
    conda:
        "../envs/dlpvc.yaml"
    script:
        "../workflow_scripts/split_cases.py"
