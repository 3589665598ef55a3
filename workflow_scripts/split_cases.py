"""Rule split_cases: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.dataset_stages import make_split
from pvc_core.pipeline.runtime import snakemake_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
ctx, p = snakemake_job(smk)
with ctx as log:
    make_split(p.spec, p.seed, p.n_cases, smk.output[0], log=log)
