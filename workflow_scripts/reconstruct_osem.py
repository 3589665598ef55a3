"""Rule reconstruct_osem: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.case_stages import run_reconstruct_shard
from pvc_core.pipeline.runtime import snakemake_job

ctx, config = snakemake_job(snakemake)  # noqa: F821 (injected by Snakemake)
with ctx as log:
    run_reconstruct_shard(int(snakemake.wildcards.shard), snakemake.params.cases,  # noqa: F821
                          snakemake.wildcards.method, config, config["results_dir"],  # noqa: F821
                          list(snakemake.input), snakemake.output[0], log=log,  # noqa: F821
                          token=snakemake.params.retry)  # noqa: F821
