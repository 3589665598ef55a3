"""Dry-run (planning) time of the paper configuration at 1,000 / 10,000 / 50,000 cases.

Usage: .venv/bin/python benchmarks/bench_dryrun.py [--randomise] [N ...]
Prints the wall time of ``snakemake -n --configfile config/paper.yaml --config n_cases=N`` in a
fresh temporary working directory (test and validation sets 5% each) and the job count per rule for the paper scale.
``--randomise``: with config/paper.yaml's commented ``randomise:`` example switched on.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from paper_example import randomise_example  # noqa: E402

RANDOMISE = "--randomise" in sys.argv


def dry_run(n_cases: int) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as tmp:
        scale = Path(tmp) / "scale.yaml"
        scale.write_text(f"n_cases: {n_cases}\nsplit: {{n_test: {n_cases // 20}, n_validation: {n_cases // 20}}}\n"
                         + (f"randomise: {json.dumps(randomise_example())}\n" if RANDOMISE else ""))
        cmd = [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(REPO / "Snakefile"), "--directory", tmp,
               "--configfile", str(REPO / "config/paper.yaml"), str(scale), "--cores", "2",
               "--quiet", "rules"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        dt = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-2000:])
        return dt, proc.stdout + proc.stderr


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:] if a != "--randomise"] or [1000, 10000, 50000]
    print(f"{'cases':>8} {'jobs':>6} {'dry-run s':>10}")
    for n in sizes:
        dt, out = dry_run(n)
        total = re.search(r"^total\s+(\d+)", out, re.M)
        print(f"{n:>8} {total.group(1) if total else '?':>6} {dt:>10.2f}")
        if n == 10000:
            table = out[out.find("Job stats"):]
            print(table[: table.find("total") + 20])


if __name__ == "__main__":
    main()
