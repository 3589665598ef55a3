rule train_network:
    """Train one 3D U-Net variant (architecture x dataset x normalisation x input size).

    Resumes from models/<model>/checkpoint.pt when a job of the same fingerprint left one; it is
    deliberately not an output, since Snakemake deletes a failed (e.g. timed-out) job's outputs.
    """
    input:
        split=SPLIT,
        recon=lambda wildcards: recon_manifests(recon_of_model(wildcards)),
    output:
        model=model_file(),
        card=model_card(),
    params:
        job="train_{model}",
        fingerprint=fingerprint("train_{model}"),
        depends_on=depends_on("train_{model}"),
        spec=lambda wildcards: JobMapping(MODEL_SPECS[wildcards.model]),
        seed=SETTINGS.seed,
        vaa_alpha=SETTINGS.evaluation.alpha,
        results=results_folder,
    log:
        log_file("train", "{model}"),
    benchmark:
        bench_file("train", "{model}")
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
    """DL-PVC of the test cases with a trained model (total activity conserved); on the GPU when there is one."""
    input:
        split=SPLIT,
        model=model_file(),
        recon=lambda wildcards: recon_manifests(recon_of_model(wildcards)),
    output:
        predictions_done(),
    params:
        job="predict_{model}",
        fingerprint=fingerprint("predict_{model}"),
        depends_on=depends_on("predict_{model}"),
        results=results_folder,
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
