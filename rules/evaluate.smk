rule evaluate_methods:
    """SSIM, NRMSE, VAA and AD per test case x dataset x PVC method; summary with Wilcoxon tests."""
    input:
        split=SPLIT,
        recon=recon_manifests(),
        iy=[iy_done(d) for d in DATASETS],
        deconvolution=[deconvolution_done(d) for d in DATASETS],
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
        layout=LAYOUT,
    log:
        log_file("evaluate", "{suite}"),
    benchmark:
        bench_file("evaluate", "{suite}")
    conda:
        "../envs/dlpvc.yaml"
    script:
        "../workflow_scripts/evaluate_methods.py"


rule compare_sweep_stages:
    """The staged sweep's paired Wilcoxon tests between the variants of each stage (Holm-adjusted)."""
    input:
        metrics=metrics_table("sweep"),
    output:
        tables=[sweep_table(stage) for stage in SWEEP_STAGES],
    params:
        stages=JobMapping({s: [{k: v[k] for k in ("dataset", "variant", "model")} for v in vs]
                           for s, vs in SWEEP_STAGES.items()}),
        outputs=JobMapping({s: sweep_table(s) for s in SWEEP_STAGES}),
        significance=SETTINGS.evaluation.significance,
    log:
        log_file("evaluate", "sweep_stages"),
    conda:
        "../envs/dlpvc.yaml"
    script:
        "../workflow_scripts/compare_sweep_stages.py"
