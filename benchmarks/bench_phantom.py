"""Benchmark: phantom generation time per case on the 128^3 and 256^3 simulation grids.

Prints one row per grid: median and maximum wall time of ``pvc_core.phantom.generate_case`` per
case and the median split into anatomy (body, mu, mask), activity (shapes, pattern, scaling) and
downsampling to the reconstruction grid, over ``--cases`` cases of the demo configuration with the
grid replaced (614.4 mm field of view, sim_factor 2: 128^3 of 4.8 mm = the demo's sim grid, 256^3
of 2.4 mm = the paper's). ``--voxel ZIP_OR_H33`` adds the mesh50 XCAT voxel phantom (first case
includes reading the label map). ``--uptake patient`` makes every case patient-like
(``phantom.uptake.patient_probability: 1``; the shapes column then counts lesions). Single-threaded
numpy/scipy; the demo generates 36 cases at 128^3, the paper 10,000 at 256^3. Target: a few seconds
per case at 256^3 on one core.

Usage: python benchmarks/bench_phantom.py [--cases 5] [--sizes 128 256] [--voxel PATH] [--uptake shapes|patient]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from pvc_core.config import load_config  # noqa: E402
from pvc_core.phantom import generate_case  # noqa: E402
from pvc_core.specs import phantom_specs

REPO = Path(__file__).resolve().parents[1]
XCAT_LABELS = {0: "outside", 1: "soft_tissue", 2: "air", 3: "brain", 4: "air", 5: "soft_tissue", 6: "lung",
               7: "cortical_bone"}


def config_for(size: int, voxel: str | None, uptake: str = "shapes") -> dict:
    cfg = copy.deepcopy(load_config(REPO / "config.yaml"))
    cfg["grid"].update(recon_matrix=size // 2, recon_voxel_mm=614.4 / (size // 2), sim_factor=2)
    if uptake == "patient":
        cfg["phantom"]["uptake"]["patient_probability"] = 1.0
    if voxel:
        cfg["phantom"].update(source="voxel", voxel={
            "path": voxel, "labels": XCAT_LABELS, "orientation": "LPS",
            "bed_centres_mm": {"head": 1613.0, "thorax": 1333.0, "abdomen": 1063.0}})
    return cfg


def run(size: int, cases: int, voxel: str | None, uptake: str = "shapes") -> dict:
    cfg = config_for(size, voxel, uptake)
    walls, parts = [], {"anatomy": [], "activity": [], "downsample": []}
    shapes, volumes = [], []
    for case in range(cases):
        t = {}
        t0 = time.perf_counter()
        pc = generate_case(case, cfg["seed"], *phantom_specs(cfg), timings=t)
        walls.append(time.perf_counter() - t0)
        for k in parts:
            parts[k].append(t[k])
        shapes.append(pc.meta["n_shapes"] if "n_shapes" in pc.meta else pc.meta["n_lesions"])
        volumes.append(pc.meta["active_volume_ml"])
    return {"walls": walls, "parts": {k: statistics.median(v) for k, v in parts.items()},
            "shapes": statistics.median(shapes), "volume": statistics.median(volumes)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=5)
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--voxel", default=None, help="voxel phantom (e.g. the mesh50 XCAT zip) instead of procedural")
    ap.add_argument("--uptake", choices=("shapes", "patient"), default="shapes",
                    help="the paper's random shapes (default) or patient-like uptake for every case")
    args = ap.parse_args()
    print(f"phantom generation, {args.cases} cases per grid, {'voxel: ' + args.voxel if args.voxel else 'procedural'}, "
          f"uptake {args.uptake}; "
          f"{os.cpu_count()} CPUs visible, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    print(f"{'grid':>12} {'median s':>9} {'max s':>7} {'anatomy':>8} {'activity':>9} {'downsmp':>8} "
          f"{'shapes':>7} {'volume mL':>10}")
    for size in args.sizes:
        r = run(size, args.cases, args.voxel, args.uptake)
        p = r["parts"]
        print(f"{size:>4}^3 {614.4 / size:4.1f}mm {statistics.median(r['walls']):9.2f} {max(r['walls']):7.2f} "
              f"{p['anatomy']:8.2f} {p['activity']:9.2f} {p['downsample']:8.2f} {r['shapes']:7.0f} {r['volume']:10.0f}")


if __name__ == "__main__":
    main()
