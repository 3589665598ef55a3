"""Rule predict_test_cases: unpack Snakemake's job and call pvc_core."""
from pvc_core.pipeline.dataset_stages import predict_test_cases
from pvc_core.pipeline.runtime import snakemake_job

smk = snakemake  # noqa: F821 (injected by Snakemake)
ctx, p = snakemake_job(smk)
with ctx as log:
    predict_test_cases(smk.wildcards.model, smk.input.model, p.layout, smk.input.split, list(smk.input.recon),
                       smk.output[0], log=log, inference=dict(p.inference))
