"""Rule make_phantom_montage: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.runtime import snakemake_job
from pvc_core.report.figures import phantom_montage

ctx, config = snakemake_job(snakemake)  # noqa: F821 (injected by Snakemake)
with ctx as log:
    phantom_montage(config["results_dir"], snakemake.input[0], snakemake.output[0], log=log)  # noqa: F821
