"""Rule compare_sweep_stages: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.runtime import snakemake_job
from pvc_core.pipeline.sweep_tables import write_sweep_tables

smk = snakemake  # noqa: F821 (injected by Snakemake)
ctx, p = snakemake_job(smk)
with ctx as log:
    write_sweep_tables(dict(p.stages), smk.input.metrics, dict(p.outputs), p.significance, log=log)
