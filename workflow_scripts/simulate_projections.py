"""Rule simulate_projections: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.case_stages import run_simulate_shard
from pvc_core.pipeline.runtime import snakemake_job
from pvc_core.pipeline.shards import ShardJob
from pvc_core.spect.acquisition import AcquisitionChain

smk = snakemake  # noqa: F821 (injected by Snakemake)
ctx, p = snakemake_job(smk)
with ctx as log:
    job = ShardJob(int(smk.wildcards.shard), p.cases, p.layout, smk.output[0], p.fingerprint, p.depends_on,
                   upstream=tuple(smk.input), log=log, token=p.retry)
    run_simulate_shard(job, AcquisitionChain(p.camera, p.grid), p.randomise)
