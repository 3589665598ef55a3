"""Rule run_study: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.runtime import snakemake_job
from pvc_core.studies import run_study

smk = snakemake  # noqa: F821 (injected by Snakemake)
ctx, p = snakemake_job(smk)
with ctx as log:
    run_study(smk.wildcards.study, p.settings, p.layout, smk.input.model, p.inference, smk.input.resolution,
              smk.input.calibration, log=log)
