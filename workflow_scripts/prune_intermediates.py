"""Rule prune_intermediates: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.runtime import snakemake_job
from pvc_core.pipeline.storage import prune_shard

ctx, config = snakemake_job(snakemake)  # noqa: F821 (injected by Snakemake)
with ctx as log:
    prune_shard(int(snakemake.wildcards.shard), snakemake.params.cases, config["storage"],  # noqa: F821
                config["results_dir"], list(snakemake.input), snakemake.output[0], log=log)  # noqa: F821
