"""Rule train_network: unpack Snakemake's job and call pvc_core (as torchrun ranks when the job has several GPUs)."""
from pathlib import Path

from pvc_core.pipeline.dataset_stages import train_network
from pvc_core.pipeline.runtime import snakemake_job
from pvc_core.training.distributed import launch_torchrun

smk = snakemake  # noqa: F821 (injected by Snakemake)
ctx, p = snakemake_job(smk)
out_dir = str(Path(smk.output.model).parent)
args = dict(spec=dict(p.spec), seed=p.seed, layout=p.layout, split_path=smk.input.split,
            recon_manifests=list(smk.input.recon), out_dir=out_dir, threads=smk.threads,
            fingerprint=p.fingerprint, vaa_alpha=p.vaa_alpha, trained_for=dict(p.trained_for))
gpus = int(getattr(smk.resources, "gpu", 1) or 1)
with ctx as log:
    if gpus > 1:  # one DDP rank per GPU of the job (pvc_core.training.distributed)
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        launch_torchrun({"train_network": {**args, "layout": p.layout.as_dict()}}, gpus, Path(out_dir) / "torchrun_job.json", log=log)
    else:
        train_network(**args, log=log)
