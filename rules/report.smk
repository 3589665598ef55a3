rule make_report:
    """One self-contained HTML report that reads like the paper: Table 1 per dataset, Figures 2-7,
    the studies, the sweep's supplement tables, what differs from the paper, timings, failures."""
    input:
        metrics=metrics_table("main"),
        summary=summary_table("main"),
        split=SPLIT,
        resolution=[resolution_file(r) for r in RECONSTRUCTIONS],
        calibration=[calibration_file(r) for r in RECONSTRUCTIONS],
        montage=str(LAYOUT.montage_file()),
        card=model_card(DEFAULT_TRAINING),
        studies=[study_manifest(s) for s in paths.STUDIES],
        sweep=[sweep_table(stage) for stage in SWEEP_STAGES],  # the supplement, when a sweep is configured
        manifests=[m for stage in CASE_STAGES for m in all_manifests(stage)],
        recon=recon_manifests(),
    output:
        REPORT,
    params:
        job="report",
        fingerprint=lambda wildcards: fingerprint_of(GRAPH.report_dependencies(MAIN_MODELS, SWEEP_MODELS)),
        depends_on=lambda wildcards: JobMapping(GRAPH.report_dependencies(MAIN_MODELS, SWEEP_MODELS)),
        model=DEFAULT_MODEL,
        sweep_stages=list(SWEEP_STAGES),
        settings=SETTINGS,
        results=results_folder,
        layout=LAYOUT,
    log:
        log_file("report", "report"),
    conda:
        "../envs/dlpvc.yaml"
    script:
        "../workflow_scripts/make_report.py"
