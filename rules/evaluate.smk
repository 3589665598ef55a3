rule evaluate_methods:
    """SSIM, NRMSE, VAA and AD per test case x dataset x method; summary with Wilcoxon tests."""
    input:
        split=SPLIT,
        iy=expand(f"{RESULTS}/iy/{{dataset}}.json", dataset=paths.DATASETS),
        predictions=lambda wc: [f"{RESULTS}/predictions/{m}/done.json" for m in SUITES[wc.suite]],
    output:
        metrics=f"{RESULTS}/tables/metrics_{{suite}}.csv",
        summary=f"{RESULTS}/tables/summary_{{suite}}.csv",
    params:
        models=lambda wc: SUITES[wc.suite],
        config=CONFIG,
    log:
        log_file("evaluate", "{suite}"),
    benchmark:
        bench_file("evaluate", "{suite}")
    conda:
        "../envs/dlpvc.yaml"
    script:
        "../workflow_scripts/evaluate_methods.py"
