"""Rule prune_intermediates: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.runtime import snakemake_job
from pvc_core.pipeline.storage import prune_shard

smk = snakemake  # noqa: F821 (injected by Snakemake)
ctx, p = snakemake_job(smk)
with ctx as log:
    prune_shard(int(smk.wildcards.shard), p.cases, p.storage, p.layout, list(smk.input), smk.output[0], log=log)
