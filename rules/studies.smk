rule run_study:
    """One of the paper's studies (minimum feature size, validation phantoms) with the default model."""
    input:
        model=model_file(DEFAULT_TRAINING),
        resolution=resolution_file(dataset_parts(MODEL_SPECS[DEFAULT_MODEL]["dataset"])[0]),
        calibration=calibration_file(dataset_parts(MODEL_SPECS[DEFAULT_MODEL]["dataset"])[0]),
    output:
        manifest=study_manifest(),
        table=study_table(),
    params:
        job="study_{study}",
        fingerprint=fingerprint("study_{study}"),
        depends_on=depends_on("study_{study}"),
        inference=JobMapping({k: MODEL_SPECS[DEFAULT_MODEL][k] for k in INFERENCE_KEYS}),
        settings=SETTINGS,
        results=results_folder,
        layout=LAYOUT,
    log:
        log_file("study", "{study}"),
    benchmark:
        bench_file("study", "{study}")
    threads: 1
    resources:
        mem_mb=8000,
        runtime=720,
    conda:
        "../envs/dlpvc.yaml"
    script:
        "../workflow_scripts/run_study.py"
