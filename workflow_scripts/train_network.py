"""Rule train_network: unpack Snakemake's job and call pvc_core."""
from pathlib import Path

from pvc_core.pipeline.dataset_stages import train_network
from pvc_core.pipeline.runtime import snakemake_job

ctx, config = snakemake_job(snakemake)  # noqa: F821 (injected by Snakemake)
with ctx as log:
    train_network(dict(snakemake.params.spec), config, config["results_dir"], snakemake.input.split,  # noqa: F821
                  str(Path(snakemake.output.model).parent), log=log)  # noqa: F821
