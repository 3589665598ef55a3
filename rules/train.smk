rule train_network:
    """Train one 3D U-Net variant (architecture x dataset x input size; its sum and max models share it).

    Resumes from models/<training>/checkpoint.pt when a job of the same fingerprint left one; it is
    deliberately not an output, since Snakemake deletes a failed (e.g. timed-out) job's outputs.
    """
    input:
        split=SPLIT,
        recon=lambda wildcards: recon_manifests(recon_of_training(wildcards)),
    output:
        model=model_file(),
        card=model_card(),
    params:
        job="train_{training}",
        fingerprint=fingerprint("train_{training}"),
        depends_on=depends_on("train_{training}"),
        spec=lambda wildcards: JobMapping(TRAINING_SPECS[wildcards.training]),
        seed=SETTINGS.seed,
        vaa_alpha=SETTINGS.evaluation.alpha,
        trained_for=lambda wildcards: JobMapping(trained_for(SETTINGS, TRAINING_SPECS[wildcards.training]["dataset"])),
        results=results_folder,
        layout=LAYOUT,
    log:
        log_file("train", "{training}"),
    benchmark:
        bench_file("train", "{training}")
    threads: workflow.cores
    resources:
        mem_mb=16000,
        runtime=1440,
        gpu=1,
    conda:
        "../envs/dlpvc.yaml"
    script:
        "../workflow_scripts/train_network.py"


rule predict_test_cases:
    """DL-PVC of the test cases with a trained network and the model's normalisation (total activity
    conserved for sum); on the GPU when there is one."""
    input:
        split=SPLIT,
        model=training_model_file,
        recon=lambda wildcards: recon_manifests(recon_of_model(wildcards)),
    output:
        predictions_done(),
    params:
        job="predict_{model}",
        fingerprint=fingerprint("predict_{model}"),
        depends_on=depends_on("predict_{model}"),
        inference=lambda wildcards: JobMapping({k: MODEL_SPECS[wildcards.model][k] for k in INFERENCE_KEYS}),
        results=results_folder,
        layout=LAYOUT,
    log:
        log_file("predict", "{model}"),
    benchmark:
        bench_file("predict", "{model}")
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=1,
    conda:
        "../envs/dlpvc.yaml"
    script:
        "../workflow_scripts/predict_test_cases.py"
