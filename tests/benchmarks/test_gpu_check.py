"""The prepared GPU check (benchmarks/gpu_check.py) in its smoke mode on the CPU: a row per part, a
failing variant or part reported in its own row while the others run, the time limits, and the
network it times being the one the trainer builds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
sys.path.insert(0, str(REPO / "benchmarks"))

import gpu_check as check


def _run(out: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict, str]:
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    env["OMP_NUM_THREADS"] = "1"  # tiny problems; no OpenMP contention on a shared machine
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--device", "cpu", "--threads", "1",
                           "--out", str(out), *args], check=False, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, json.loads((out / "gpu_check.json").read_text()), (out / "gpu_check.md").read_text()


def test_smoke_has_a_row_per_part_and_a_failing_variant_stays_in_its_row(tmp_path):
    proc, doc, md = _run(tmp_path, "--architectures", "unet", "nosuch")
    assert "torch.cuda.is_available() False" in proc.stdout
    assert doc["header"]["torch"] == torch.__version__ and doc["header"]["smoke"] is True
    rows = doc["rows"]
    assert [r["part"] for r in rows] == ["train"] * 4 + ["apply", "case"]
    by_variant = {r["variant"]: r for r in rows if r["part"] == "train"}
    for precision in check.PRECISIONS:
        ok = by_variant[f"unet {precision}"]
        assert ok["status"] == check.OK and ok["values"]["steps_per_s"] > 0, ok
        bad = by_variant[f"nosuch {precision}"]
        assert bad["status"] == check.ERROR and "unknown architecture 'nosuch'" in bad["result"], bad
    apply, case = rows[4], rows[5]
    assert apply["status"] == check.OK and "apply_one" in apply["result"], apply
    assert case["status"] == check.OK and case["values"]["seconds"]["case total"] > 0, case
    assert "CPU-only" in case["variant"]
    # the markdown table: one line per row, the error in the failing one, and the same table on stdout
    table = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| part")]
    assert len(table) == len(rows)
    assert any(line.startswith("| train | nosuch fp32 | error | ValueError: unknown architecture") for line in table)
    assert md.split("| part |")[1] in proc.stdout


def test_a_failing_part_reports_its_error(tmp_path):
    _, doc, md = _run(tmp_path, "--parts", "apply", "--model", str(tmp_path / "missing" / "model.pt"))
    (row,) = doc["rows"]
    assert row["part"] == "apply" and row["status"] == check.ERROR and "model file not found" in row["result"], row
    assert "| apply |" in md and "model file not found" in md


def test_nothing_starts_after_the_deadline(tmp_path):
    _, doc, _ = _run(tmp_path, "--architectures", "unet", "--deadline-s", "0")
    assert [r["status"] for r in doc["rows"]] == [check.SKIPPED] * 4
    assert [r["part"] for r in doc["rows"]] == ["train", "train", "apply", "case"]


def test_guard_turns_errors_and_overruns_into_rows():
    cpu = torch.device("cpu")

    def fails():
        raise RuntimeError("broken\nsecond line")

    row = check.guarded(check.Row("apply", "x"), cpu, 10, fails)
    assert (row.status, row.result) == (check.ERROR, "RuntimeError: broken")
    t0 = time.perf_counter()
    row = check.guarded(check.Row("case", "y"), cpu, 0.2, lambda: time.sleep(5))
    assert row.status == check.TIMEOUT and time.perf_counter() - t0 < 3, row

    def out_of_memory():
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79 GiB")

    row = check.guarded(check.Row("train", "w"), cpu, 10, out_of_memory)
    assert (row.status, row.result) == (check.OOM, "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB")
    row = check.guarded(check.Row("train", "z"), cpu, 10, lambda: ("fine", {"a": 1}))
    assert (row.status, row.result, row.values) == (check.OK, "fine", {"a": 1})


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the rows of a machine without CUDA")
def test_cuda_requested_without_a_gpu_is_a_row(tmp_path, monkeypatch):
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # main sets it; restored after the test
    assert check.main(["--parts", "train", "apply", "--out", str(tmp_path), "--architectures", "unet"]) == 0
    rows = json.loads((tmp_path / "gpu_check.json").read_text())["rows"]
    assert [(r["part"], r["status"]) for r in rows] == [("train", check.ERROR), ("apply", check.ERROR)]
    assert "no CUDA GPU" in rows[0]["result"]


def test_timed_network_is_the_trainers():
    """build_network with its defaults (what the check times) is the network the trainer builds from
    the model settings' defaults, for every architecture."""
    from pvc_core.model_spec import ModelSpec
    from pvc_core.networks import ARCHITECTURES, build_network
    from pvc_core.training.train import network_kwargs

    channels = [4, 8, 16]
    for name in ARCHITECTURES:
        spec = ModelSpec.complete({"architecture": name, "channels": channels}, "test")
        torch.manual_seed(0)
        ours = build_network(name, channels)
        torch.manual_seed(0)
        trainers = build_network(name, channels, **network_kwargs(spec))
        assert repr(ours) == repr(trainers), name
        assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), trainers.state_dict().values())), name
