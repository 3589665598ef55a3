rule make_report:
    """One HTML report: Table-1-like summary, slice figures with VAA maps, phantoms, timings, failures."""
    input:
        metrics=metrics_table("main"),
        summary=summary_table("main"),
        split=SPLIT,
        resolution=[resolution_file(r) for r in RECONSTRUCTIONS],
        calibration=[calibration_file(r) for r in RECONSTRUCTIONS],
        montage=str(paths.montage_file(RESULTS)),
        card=model_card(DEFAULT_TRAINING),
        manifests=[m for stage in CASE_STAGES for m in all_manifests(stage)],
        recon=recon_manifests(),
    output:
        REPORT,
    params:
        job="report",
        fingerprint=lambda wildcards: fingerprint_of(GRAPH.report_dependencies(DEFAULT_MODEL)),
        depends_on=lambda wildcards: JobMapping(GRAPH.report_dependencies(DEFAULT_MODEL)),
        model=DEFAULT_MODEL,
        settings=SETTINGS,
        results=results_folder,
    log:
        log_file("report", "report"),
    conda:
        "../envs/dlpvc.yaml"
    script:
        "../workflow_scripts/make_report.py"
