"""Rule calibrate_reconstruction: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.calibration_stage import calibrate_reconstruction
from pvc_core.pipeline.runtime import snakemake_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
ctx, p = snakemake_job(smk)
with ctx as log:
    calibrate_reconstruction(p.recon, p.calibration, p.camera, p.grid, p.seed, p.fingerprint, smk.output[0], log=log)
