"""Rule evaluate_methods: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.dataset_stages import evaluate
from pvc_core.pipeline.runtime import snakemake_job

ctx, config = snakemake_job(snakemake)  # noqa: F821 (injected by Snakemake)
with ctx as log:
    evaluate(config, config["results_dir"], snakemake.input.split, list(snakemake.params.models),  # noqa: F821
             snakemake.output.metrics, snakemake.output.summary, log=log)  # noqa: F821
