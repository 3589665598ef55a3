"""Rule make_report: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.runtime import snakemake_job
from pvc_core.report.html import build_report

ctx, config = snakemake_job(snakemake)  # noqa: F821 (injected by Snakemake)
with ctx as log:
    build_report(config, config["results_dir"], snakemake.params.model, snakemake.output[0], log=log)  # noqa: F821
