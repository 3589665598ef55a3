rule train_network:
    """Train one 3D U-Net variant (architecture x dataset x normalisation x input size)."""
    input:
        split=SPLIT,
    output:
        model=f"{RESULTS}/models/{{model}}/model.pt",
        card=f"{RESULTS}/models/{{model}}/model_card.json",
    params:
        spec=lambda wc: MODEL_SPECS[wc.model],
        config=CONFIG,
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
    """DL-PVC of the test cases with a trained model (total activity conserved)."""
    input:
        split=SPLIT,
        model=f"{RESULTS}/models/{{model}}/model.pt",
    output:
        f"{RESULTS}/predictions/{{model}}/done.json",
    params:
        config=CONFIG,
    log:
        log_file("predict", "{model}"),
    benchmark:
        bench_file("predict", "{model}")
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    conda:
        "../envs/dlpvc.yaml"
    script:
        "../workflow_scripts/predict_test_cases.py"
