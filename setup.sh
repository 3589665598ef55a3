#!/usr/bin/env bash
# One-command set-up: creates .venv and installs dlpvc with every dependency.
# torch==2.13.0 (CPU) is installed first and stays pinned, so no dependency pulls a CUDA build.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
"$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -r requirements.txt -c requirements.txt
.venv/bin/python -m pip install --quiet --no-deps -e .
.venv/bin/python -c "import torch, pytomography, monai, snakemake; print('dlpvc set-up done: torch', torch.__version__)"
