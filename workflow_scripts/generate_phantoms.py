"""Rule generate_phantoms: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.case_stages import run_phantom_shard
from pvc_core.pipeline.runtime import snakemake_job

ctx, config = snakemake_job(snakemake)  # noqa: F821 (injected by Snakemake)
with ctx as log:
    run_phantom_shard(int(snakemake.wildcards.shard), snakemake.params.cases, config,  # noqa: F821
                      config["results_dir"], snakemake.output[0], log=log,  # noqa: F821
                      token=snakemake.params.retry)  # noqa: F821
