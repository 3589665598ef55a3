rule split_cases:
    """Deterministic train / validation / test lists; failed cases are listed, not used."""
    input:
        recon=all_manifests("recon_noRR") + all_manifests("recon_RR"),
        prune=all_manifests("prune"),
    output:
        SPLIT,
    params:
        config=CONFIG,
    log:
        log_file("split", "split"),
    benchmark:
        bench_file("split", "split")
    conda:
        "../envs/dlpvc.yaml"
    script:
        "../workflow_scripts/split_cases.py"
