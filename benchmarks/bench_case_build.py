"""Build time of one training case with [3.3]'s data: a patient-like phantom (``phantom.uptake``)
and a randomised acquisition (the commented ``randomise:`` example of config/paper.yaml) through
the one acquisition chain with both reconstructions and noise levels (``scatter_correction``
as drawn: TEW or the model-based estimate).

Usage: .venv/bin/python benchmarks/bench_case_build.py --matrix 80 [--case 0] [--shapes]
Prints the seconds of each step. The scatter model's fit and the calibration are per camera, not
per case: they are made (or read from their caches) before the clock starts. Time the whole
command with farm-bench for the figures in docs/performance.md.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from paper_example import randomise_example  # noqa: E402
from pvc_core.config import load_config, validate_config  # noqa: E402
from pvc_core.phantom import generate_case  # noqa: E402
from pvc_core.pipeline.calibration_stage import cached_calibration  # noqa: E402
from pvc_core.specs import Settings  # noqa: E402
from pvc_core.spect.acquisition import AcquisitionChain, NoiseSeed, chain_for_case  # noqa: E402

def settings_for(matrix: int, patient: bool) -> Settings:
    cfg = copy.deepcopy(load_config(REPO / "config" / "paper.yaml"))
    cfg["grid"]["recon_matrix"] = matrix
    cfg["phantom"].setdefault("uptake", {})["patient_probability"] = 1.0 if patient else 0.0
    cfg["randomise"] = randomise_example()
    return Settings.from_config(validate_config(cfg, "bench_case_build"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--matrix", type=int, default=80)
    p.add_argument("--case", type=int, default=0)
    p.add_argument("--shapes", action="store_true", help="today's random shapes instead of patient-like uptake")
    p.add_argument("--cache", type=Path, default=REPO / "results" / "bench_case_build")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    s = settings_for(args.matrix, not args.shapes)
    base = AcquisitionChain(s.camera, s.grid, tuple(s.reconstructions.values()))
    chain, draw = chain_for_case(base, s.randomise, args.case)
    t0 = time.perf_counter()
    levels = chain.calibration_chain()  # the protocol's camera: per camera, not per case (as the DAG does)
    calibration = {r.name: float(cached_calibration(AcquisitionChain(levels.camera, levels.grid, (r,)), s.calibration,
                                                    s.seed, args.cache)["factor"]) for r in levels.reconstructions}
    t_cal = time.perf_counter() - t0
    t0 = time.perf_counter()
    pc = generate_case(args.case, s.seed, s.phantom, s.grid)
    t_phantom = time.perf_counter() - t0
    acquired = chain.acquire(pc.activity_mbq_ml, pc.mu_per_cm, NoiseSeed(s.seed, args.case), calibration=calibration)
    sec = acquired.seconds
    recon = sum(v for k, v in sec.items() if k.startswith("recon"))
    print(f"matrix {args.matrix}^3, case {args.case}, {'shapes' if args.shapes else 'patient-like'}; draw {draw}")
    print(f"per camera (cached after the first run): calibration + scatter fit {t_cal:.1f} s")
    print(f"per case: phantom {t_phantom:.2f} s, simulate {sec['simulate']:.2f} s, noise {sec.get('noise', 0):.2f} s, "
          f"reconstructions {recon:.2f} s ({', '.join(f'{k} {v:.1f} s' for k, v in sec.items() if k.startswith('recon'))}); "
          f"total {t_phantom + sum(sec.values()):.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
