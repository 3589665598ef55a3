"""Rule correct_iterative_yang: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.dataset_stages import correct_iterative_yang
from pvc_core.pipeline.runtime import snakemake_job

ctx, config = snakemake_job(snakemake)  # noqa: F821 (injected by Snakemake)
with ctx as log:
    correct_iterative_yang(snakemake.wildcards.dataset, config, config["results_dir"],  # noqa: F821
                           snakemake.input.split, snakemake.input.resolution, snakemake.output[0], log=log)  # noqa: F821
