"""Cluster tooling for running the dlpvc pipeline on SLURM; not part of the science package.

:mod:`dlpvc_cluster.slurm_check` checks a Snakemake SLURM profile against the cluster's
partitions before any job is submitted::

    python -m dlpvc_cluster.slurm_check profiles/slurm
"""
