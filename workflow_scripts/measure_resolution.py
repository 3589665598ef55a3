"""Rule measure_resolution: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.dataset_stages import measure_resolution
from pvc_core.pipeline.runtime import snakemake_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
ctx, p = snakemake_job(smk)
with ctx as log:
    measure_resolution(smk.wildcards.recon, p.spec, p.layout, smk.input.split, list(smk.input.recon), smk.output[0],
                       log=log)
