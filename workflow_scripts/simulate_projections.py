"""Rule simulate_projections: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.case_stages import run_simulate_shard
from pvc_core.pipeline.runtime import snakemake_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
ctx, p = snakemake_job(smk)
with ctx as log:
    run_simulate_shard(int(smk.wildcards.shard), p.cases, p.camera, p.grid, p.results, list(smk.input),
                       smk.output[0], p.fingerprint, p.depends_on, log=log, token=p.retry)
