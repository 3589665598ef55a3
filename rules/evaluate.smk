rule evaluate_methods:
    """SSIM, NRMSE, VAA and AD per test case x dataset x PVC method; summary with Wilcoxon tests."""
    input:
        split=SPLIT,
        recon=recon_manifests(),
        iy=[iy_done(d) for d in DATASETS],
        predictions=lambda wildcards: [predictions_done(m) for m in SUITES[wildcards.suite]],
    output:
        metrics=metrics_table(),
        summary=summary_table(),
    params:
        job="evaluate_{suite}",
        fingerprint=lambda wildcards: fingerprint_of(GRAPH.evaluate_dependencies(SUITES[wildcards.suite])),
        depends_on=lambda wildcards: JobMapping(GRAPH.evaluate_dependencies(SUITES[wildcards.suite])),
        models=lambda wildcards: SUITES[wildcards.suite],
        spec=SETTINGS.evaluation,
        results=results_folder,
    log:
        log_file("evaluate", "{suite}"),
    benchmark:
        bench_file("evaluate", "{suite}")
    conda:
        "../envs/dlpvc.yaml"
    script:
        "../workflow_scripts/evaluate_methods.py"
