"""Rule split_cases: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.dataset_stages import make_split
from pvc_core.pipeline.runtime import snakemake_job

ctx, config = snakemake_job(snakemake)  # noqa: F821 (injected by Snakemake)
with ctx as log:
    make_split(config, list(snakemake.input.recon), snakemake.output[0], log=log)  # noqa: F821
