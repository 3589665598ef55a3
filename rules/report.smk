rule make_report:
    """One HTML report: Table-1-like summary, slice figures with VAA maps, phantoms, timings, failures."""
    input:
        metrics=metrics_table("main"),
        summary=f"{RESULTS}/tables/summary_main.csv",
        split=SPLIT,
        resolution=expand(f"{RESULTS}/resolution/{{method}}.json", method=paths.METHODS),
        montage=f"{RESULTS}/figures/phantoms.png",
        card=f"{RESULTS}/models/{DEFAULT_MODEL}/model_card.json",
        manifests=[m for st in paths.CASE_STAGES for m in all_manifests(st)],
    output:
        REPORT,
    params:
        model=DEFAULT_MODEL,
        config=CONFIG,
    log:
        log_file("report", "report"),
    conda:
        "../envs/dlpvc.yaml"
    script:
        "../workflow_scripts/make_report.py"
