"""Rule train_network: unpack Snakemake's job and call pvc_core."""
from pathlib import Path

from pvc_core.pipeline.dataset_stages import train_network
from pvc_core.pipeline.runtime import snakemake_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
ctx, p = snakemake_job(smk)
with ctx as log:
    train_network(dict(p.spec), p.seed, p.results, smk.input.split, list(smk.input.recon),
                  str(Path(smk.output.model).parent), log=log, threads=smk.threads,
                  fingerprint=p.fingerprint, vaa_alpha=p.vaa_alpha)
