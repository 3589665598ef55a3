"""``correct_image`` on an image stored axis-aligned vs with an oblique (rotated) affine.

The same 128^3 body-sized blurred activity array (4.8 mm voxels) is stored twice: with an
axis-aligned RAS+ affine and with that affine rotated by ``--degrees`` (30) about the world z
axis through the image centre (the object is the same, only its world placement turns with the
affine). Prints, in one run:

* the time of :func:`pvc_core.apply.correct.correct_image` for each storage (median of
  ``--repeats`` runs, the two storages interleaved, after one warm-up run) and the ratio
  oblique / aligned;
* the largest relative difference (%) between the two corrected images of the peaks and the
  means of the lesions and of the body (regions defined in the object's world coordinates and
  mapped through each storage's affine).

``--legacy`` uses the model grid of dlpvc before the model grid followed the input's orientation
(an axis-aligned RAS+ grid covering the input's world bounding box; copied below), for a
before/after comparison in the same checkout.

    .venv/bin/python benchmarks/bench_oblique.py                  # shipped model
    .venv/bin/python benchmarks/bench_oblique.py --legacy
    .venv/bin/python benchmarks/bench_oblique.py --tiny --matrix 64
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import numpy as np
import torch
from scipy.ndimage import gaussian_filter


def legacy_model_grid(shape, affine, voxel_mm):
    """dlpvc's model grid before this change: RAS+ axis-aligned, covering the world bounding box."""
    corners = np.array([[i - 0.5 for i in c] for c in itertools.product(*[(0, n) for n in shape])], float)
    world = (np.asarray(affine, float)[:3, :3] @ corners.T).T + np.asarray(affine, float)[:3, 3]
    lower, upper = world.min(axis=0), world.max(axis=0)
    v = np.asarray(voxel_mm, float)
    extent = (upper - lower) / v
    n = np.where(np.abs(extent - np.round(extent)) < 1e-4, np.round(extent), np.ceil(extent)).astype(int)
    n = np.maximum(n, 1)
    out = np.eye(4)
    out[:3, :3] = np.diag(v)
    out[:3, 3] = lower + v / 2
    return tuple(int(k) for k in n), out


def rotation(axis: str, degrees: float) -> np.ndarray:
    """4x4 rotation about a world axis through the origin."""
    t = np.deg2rad(degrees)
    c, s = np.cos(t), np.sin(t)
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    r = np.eye(4)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def body_image(n: int, voxel_mm: float, seed: int = 0):
    """(activity MBq/mL, aligned affine centred on the world origin, lesions as (centre mm, radius mm))."""
    rng = np.random.default_rng(seed)
    i, j, k = np.mgrid[:n, :n, :n].astype(np.float32)
    c = (n - 1) / 2
    body = ((i - c) / (0.35 * n)) ** 2 + ((j - c) / (0.25 * n)) ** 2 < 1
    act = np.where(body, 0.05, 0.0).astype(np.float32)
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = -voxel_mm * c
    lesions = []
    for _ in range(8):
        p = rng.uniform(0.35 * n, 0.65 * n, 3)
        r = rng.uniform(3, 7)  # voxels
        act[(i - p[0]) ** 2 + (j - p[1]) ** 2 + (k - p[2]) ** 2 < r * r] += rng.uniform(0.3, 2.0)
        lesions.append(((affine[:3, :3] @ p + affine[:3, 3]), r * voxel_mm))
    return gaussian_filter(act, 2.0).astype(np.float32), affine, lesions


def world_masks(shape, affine, placement, lesions, body_radii_mm):
    """Boolean masks (lesions, then the body) of the voxels whose world centre, taken back to the
    object's frame by ``inv(placement)``, lies in each region."""
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, 3).astype(float)
    world = idx @ affine[:3, :3].T + affine[:3, 3]
    obj = (world - placement[:3, 3]) @ np.linalg.inv(placement[:3, :3]).T
    masks = [(np.sum((obj - ctr) ** 2, axis=1) < rad * rad).reshape(shape) for ctr, rad in lesions]
    a, b = body_radii_mm
    masks.append(((obj[:, 0] / a) ** 2 + (obj[:, 1] / b) ** 2 < 1).reshape(shape))
    return masks


def tiny_model():
    from pathlib import Path

    from pvc_core.apply.model import ApplyModel
    from pvc_core.networks import build_network

    torch.manual_seed(0)
    module = build_network("unet", [4, 8]).eval()
    with torch.no_grad():
        module.gain.fill_(0.5)  # not the identity
    cfg = {"architecture": "unet", "channels": [4, 8], "input": "full", "normalisation": "sum", "tta": False}
    return ApplyModel(module, cfg, {"trained_for": {"voxel_mm": [4.8] * 3}}, Path("tiny/model.pt"), "0" * 64,
                      torch.device("cpu"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--matrix", type=int, default=128)
    ap.add_argument("--voxel-mm", type=float, default=4.8)
    ap.add_argument("--degrees", type=float, default=30.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tiny", action="store_true", help="a tiny random network instead of the shipped model")
    ap.add_argument("--legacy", action="store_true", help="the axis-aligned world model grid of before")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import pvc_core.apply.correct as correct
    from pvc_core.apply.model import load_apply_model
    from pvc_core.io import Image

    if args.legacy:
        correct.model_grid = legacy_model_grid
    model = tiny_model() if args.tiny else load_apply_model(None, "cpu")
    data, aligned, lesions = body_image(args.matrix, args.voxel_mm)
    placement = rotation("z", args.degrees)
    storages = {"aligned": (aligned, np.eye(4)), f"oblique {args.degrees:g} deg": (placement @ aligned, placement)}
    print(f"model {'tiny unet [4, 8]' if args.tiny else model.path} ({model.cfg['channels']}), "
          f"{args.matrix}^3 at {args.voxel_mm} mm, {args.threads} torch thread(s), "
          f"model grid: {'legacy (world axis-aligned)' if args.legacy else 'pvc_core.apply.model_grid'}")
    correct_image(model, Image(data, aligned), correct)  # warm-up
    runs = {name: [] for name in storages}
    outs = {}
    for _ in range(args.repeats):  # interleaved, so that a busy spell of a shared machine hits both alike
        for name, (affine, _) in storages.items():
            t0 = time.perf_counter()
            outs[name] = correct_image(model, Image(data, affine), correct)
            runs[name].append(time.perf_counter() - t0)
    times, stats = {}, {}
    for name, (affine, place) in storages.items():
        times[name] = statistics.median(runs[name])
        masks = world_masks(data.shape, affine, place, lesions, (0.35 * args.matrix * args.voxel_mm,
                                                                 0.25 * args.matrix * args.voxel_mm))
        out = outs[name]
        stats[name] = (np.array([out[m].max() for m in masks[:-1]]), np.array([out[m].mean() for m in masks]))
        print(f"{name:18s} median {times[name]:7.2f} s (runs {', '.join(f'{t:.2f}' for t in runs[name])}); "
              f"{int(masks[0].sum())} voxels in lesion 0")
    (a_name, b_name) = storages
    ratio = times[b_name] / times[a_name]
    peaks = 100 * np.max(np.abs(stats[b_name][0] / stats[a_name][0] - 1))
    means = 100 * np.max(np.abs(stats[b_name][1] / stats[a_name][1] - 1))
    lowest = 100 * np.min(stats[b_name][0] / stats[a_name][0] - 1)
    print(f"time oblique / aligned: {ratio:.2f}")
    print(f"max |relative difference| oblique vs aligned: peaks {peaks:.2f} % (lowest {lowest:+.2f} %), "
          f"region means {means:.2f} %")


def correct_image(model, image, correct):
    return correct.correct_image(model, image)[0]


if __name__ == "__main__":
    main()
