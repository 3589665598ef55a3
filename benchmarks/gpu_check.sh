#!/usr/bin/env bash
# The prepared GPU check (issue [3.4] item 4): training steps/s and peak memory of every architecture at
# 128^3 in fp32 and bf16, a 128^3 `apply`, one paper-grid case; one table (benchmarks/gpu_check.py says
# what each part does and its time budget). The whole run stays under 8 minutes (it starts no work
# after 450 s).
#
# Run it whenever a GPU is lent, with NOTHING ELSE on the GPU (another job changes both the timings and
# the memory): through the project's device tool, `run` with the command
#
#     bash benchmarks/gpu_check.sh
#
# and timeout_s 540; the table comes back in the output and as $OUT/gpu_check.md and gpu_check.json.
# Arguments go to gpu_check.py (e.g. `--parts train --architectures unet r2unet`; `--smoke --device cpu`
# for a quick run on any machine).
#
# Python: GPU_CHECK_PYTHON if set; else the first of .venv/bin/python and python3 whose torch sees a
# CUDA GPU; else .venv/bin/python when it imports torch, else python3. Packages the GPU machine's
# Python lacks (monai, nibabel, pydicom, jsonschema, pytomography, ...: the table's header lists what is
# missing) travel as wheels in .whl/ (carry: [".whl"]; docs of the device tool): they are installed
# into /tmp/site first when that folder holds any.
set -u
cd "$(dirname "$0")/.." || exit 2

if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi

pick_python() {
    local py
    for py in .venv/bin/python python3; do
        if "$py" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
            echo "$py"
            return
        fi
    done
    if .venv/bin/python -c 'import torch' 2>/dev/null; then echo .venv/bin/python; else echo python3; fi
}

PY="${GPU_CHECK_PYTHON:-$(pick_python)}"
echo "gpu_check.sh: $PY ($("$PY" -V 2>&1)); nvidia-smi: $(nvidia-smi --query-gpu=name,memory.used,memory.total \
    --format=csv,noheader 2>/dev/null || echo none)"
export PYTHONUNBUFFERED=1
exec "$PY" benchmarks/gpu_check.py "$@"
