"""Rule make_phantom_montage: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.runtime import snakemake_job
from pvc_core.report.figures import phantom_montage

smk = snakemake  # noqa: F821 (injected by Snakemake)
ctx, p = snakemake_job(smk)
with ctx as log:
    phantom_montage(p.layout, smk.input[0], smk.output[0], log=log)
