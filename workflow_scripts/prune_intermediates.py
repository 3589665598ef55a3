"""Rule prune_intermediates: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.runtime import job_log
from pvc_core.pipeline.storage import prune_shard

with job_log(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    prune_shard(int(snakemake.wildcards.shard), snakemake.params.cases, snakemake.params.storage,  # noqa: F821
                snakemake.params.results, list(snakemake.input), snakemake.output[0], log=log)  # noqa: F821
