"""Rule make_report: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.runtime import snakemake_job
from pvc_core.report.html import build_report

smk = snakemake  # noqa: F821 (injected by Snakemake)
ctx, p = snakemake_job(smk)
with ctx as log:
    build_report(p.settings, p.layout, p.model, list(smk.input.recon), smk.output[0], log=log,
                 sweep_stages=list(p.sweep_stages))
