"""Rule calibrate_reconstruction: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.calibration_stage import calibrate_reconstruction
from pvc_core.pipeline.runtime import snakemake_job
from pvc_core.spect.acquisition import AcquisitionChain

smk = snakemake  # noqa: F821 (injected by Snakemake)
ctx, p = snakemake_job(smk)
with ctx as log:
    chain = AcquisitionChain(p.camera, p.grid, (p.recon,))
    calibrate_reconstruction(chain, p.calibration, p.seed, fingerprint=p.fingerprint, out=smk.output[0], log=log)
