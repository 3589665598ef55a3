"""Rule measure_resolution: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.dataset_stages import measure_resolution
from pvc_core.pipeline.runtime import snakemake_job

ctx, config = snakemake_job(snakemake)  # noqa: F821 (injected by Snakemake)
with ctx as log:
    measure_resolution(snakemake.wildcards.method, config, config["results_dir"],  # noqa: F821
                       snakemake.input.split, snakemake.output[0], log=log)  # noqa: F821
