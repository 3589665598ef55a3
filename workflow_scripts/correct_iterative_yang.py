"""Rule correct_iterative_yang: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.dataset_stages import correct_iterative_yang
from pvc_core.pipeline.runtime import snakemake_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
ctx, p = snakemake_job(smk)
with ctx as log:
    correct_iterative_yang(smk.wildcards.dataset, p.spec, p.layout, smk.input.split, list(smk.input.recon),
                           smk.input.resolution, smk.output[0], log=log)
