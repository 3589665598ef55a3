"""The pipeline's stages as plain functions: what each Snakemake rule does, testable without Snakemake.

Per-case stages work on *shards* (blocks of consecutive case ids) so that the DAG stays small at
paper scale (10,000 cases = 100 shards of 100), while each case is still finished, skipped or
retried on its own (see :mod:`pvc_core.pipeline.shards`).
"""
