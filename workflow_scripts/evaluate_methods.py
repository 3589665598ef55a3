"""Rule evaluate_methods: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.dataset_stages import evaluate
from pvc_core.pipeline.runtime import snakemake_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
ctx, p = snakemake_job(smk)
with ctx as log:
    evaluate(p.spec, p.layout, smk.input.split, list(smk.input.recon), list(p.models), smk.output.metrics,
             smk.output.summary, log=log)
