"""dlpvc core package: phantoms, SPECT physics, reconstruction, PVC, networks, metrics and report.

Every Snakemake rule calls a function of this package through a thin script in
``workflow_scripts/``; everything here is importable and testable without Snakemake.
"""

__version__ = "0.1.0"
