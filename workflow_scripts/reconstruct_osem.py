"""Rule reconstruct_osem: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.case_stages import run_reconstruct_shard
from pvc_core.pipeline.runtime import snakemake_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
ctx, p = snakemake_job(smk)
with ctx as log:
    run_reconstruct_shard(int(smk.wildcards.shard), p.cases, p.recon, p.camera, p.results, [smk.input.noise],
                          smk.input.calibration, smk.output[0], p.fingerprint, p.depends_on, log=log, token=p.retry)
