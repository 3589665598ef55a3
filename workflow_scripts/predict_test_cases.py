"""Rule predict_test_cases: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.dataset_stages import predict_test_cases
from pvc_core.pipeline.runtime import snakemake_job

ctx, config = snakemake_job(snakemake)  # noqa: F821 (injected by Snakemake)
with ctx as log:
    predict_test_cases(snakemake.wildcards.model, snakemake.input.model, config["results_dir"],  # noqa: F821
                       snakemake.input.split, snakemake.output[0], log=log)  # noqa: F821
