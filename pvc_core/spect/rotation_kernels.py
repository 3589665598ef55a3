"""CPU kernels (numba) that build a view block's rotated frame: the splat map and ``exp(-tau)``.

They compute exactly what :func:`pvc_core.spect.geometry.splat_matrices` and
:func:`~pvc_core.spect.geometry.sample_rotated` + :func:`~pvc_core.spect.geometry.attenuation_factors`
compute with numpy and torch (kept as the reference and for other devices), without their
intermediates: the numpy splat builder sorts ``4 x n_voxels x n_views`` triplets (a counting sort
per view suffices, because the rows of different views never mix), and the torch path writes the
rotated mu, then ``tau``, then ``exp(-tau)`` as three passes over a (views, planes, u, z) tensor
that is 1-10 GB at the phantom grid. Why hand-written: no kept library builds a bilinear splat
map or a cumulative attenuation along a rotated axis without materialising those passes.

Conventions (angles, snapping of near-integer coordinates, the 1e-12 weight cut, corner order)
are those of :mod:`pvc_core.spect.geometry`; the tests compare both paths.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit, prange

from pvc_core.spect.geometry import _csr_tensor, detector_directions
from pvc_core.spect.kernels import use_threads

#: Coordinates within this of an integer are rounded to it (:func:`pvc_core.spect.geometry._snap`).
SNAP = 1e-9
#: Bilinear weights at or below this are dropped (as in :func:`pvc_core.spect.geometry._bilinear`).
MIN_WEIGHT = 1e-12


@njit(cache=True, inline="always")
def _snap(x):  # pragma: no cover - compiled
    r = np.round(x)
    return r if abs(x - r) < SNAP else x


@njit(parallel=True, cache=True, boundscheck=False)
def _splat_rows(px, py, ex, ey, tx, ty, voxel_mm, half_s, half_u, k0, n_planes, n_u, keep, fill, counts, crow, cols,
                vals):  # pragma: no cover - compiled
    """Enumerate every (voxel, view, corner) entry of the splat map: count them per row
    (``fill`` False, into ``counts``) or write them at the rows' cursors (``fill`` True)."""
    n_vox = px.shape[0]
    rows_per_view = n_planes * n_u
    for v in prange(ex.shape[0]):
        cursor = crow[v * rows_per_view:(v + 1) * rows_per_view].copy() if fill else crow[:1].copy()
        for i in range(n_vox):
            if not keep[i]:
                continue
            a = _snap((px[i] * ex[v] + py[i] * ey[v]) / voxel_mm + half_s) - k0
            c = _snap((px[i] * tx[v] + py[i] * ty[v]) / voxel_mm + half_u)
            a0 = np.floor(a)
            c0 = np.floor(c)
            fa = a - a0
            fc = c - c0
            for da in range(2):
                wa = fa if da == 1 else 1.0 - fa
                ai = int(a0) + da
                if ai < 0 or ai >= n_planes:
                    continue
                for dc in range(2):
                    wc = fc if dc == 1 else 1.0 - fc
                    ci = int(c0) + dc
                    if wa * wc > MIN_WEIGHT and ci >= 0 and ci < n_u:
                        local = ai * n_u + ci
                        if fill:
                            pos = cursor[local]
                            cols[pos] = i
                            vals[pos] = np.float32(wa * wc)
                            cursor[local] = pos + 1
                        else:
                            counts[v * rows_per_view + local] += 1


def splat_csr(px: np.ndarray, py: np.ndarray, e: np.ndarray, t: np.ndarray, voxel_mm: float, n_s: int, n_u: int,
              k0: int, n_planes: int, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Node-major CSR (row pointers int64, columns int64, values float32) of the splat map.

    ``px, py``: voxel centres (mm) in row order ``i * n_xy + j``; ``e, t``: (n_views, 2) detector
    directions; rows ``(view * n_planes + plane) * n_u + u`` for planes ``k0 .. k0 + n_planes - 1``;
    ``keep``: voxels splatted (the activity support; the others are columns without entries).
    """
    use_threads()
    args = (np.ascontiguousarray(px, np.float64), np.ascontiguousarray(py, np.float64),
            np.ascontiguousarray(e[:, 0], np.float64), np.ascontiguousarray(e[:, 1], np.float64),
            np.ascontiguousarray(t[:, 0], np.float64), np.ascontiguousarray(t[:, 1], np.float64),
            float(voxel_mm), (n_s - 1) / 2.0, (n_u - 1) / 2.0, float(k0), int(n_planes), int(n_u),
            np.ascontiguousarray(keep, dtype=np.bool_))
    n_rows = len(e) * n_planes * n_u
    counts = np.zeros(n_rows, np.int64)
    crow = np.zeros(n_rows + 1, np.int64)
    no_cols, no_vals = np.empty(0, np.int64), np.empty(0, np.float32)
    _splat_rows(*args, False, counts, crow, no_cols, no_vals)
    np.cumsum(counts, out=crow[1:])
    cols = np.empty(crow[-1], np.int64)
    vals = np.empty(crow[-1], np.float32)
    _splat_rows(*args, True, counts, crow, cols, vals)
    return crow, cols, vals


@njit(parallel=True, cache=True, boundscheck=False)
def rotated_attenuation(mu, mu_any, ex, ey, tx, ty, s_mm, u_mm, voxel_mm, crow, out):  # pragma: no cover - compiled
    """exp(-tau) at the rotated-frame nodes that the splat map reaches: out (V, n_planes, n_u, n_z).

    mu: (n_xy, n_xy, n_z) in 1/cm, sampled bilinearly at each node (zero outside the grid);
    ``tau_k = (sum_{k' > k} mu_k' + mu_k / 2) dv`` toward the detector (higher plane index),
    as :func:`pvc_core.spect.geometry.attenuation_factors`. Nodes whose splat row (``crow``) is
    empty hold no activity and are never read: they are set to 0 and their exponential skipped.
    ``mu_any`` (n_xy, n_xy): columns with any non-zero mu (the others are skipped as corners).
    """
    n_xy = mu.shape[0]
    n_z = mu.shape[2]
    n_v, n_planes, n_u = out.shape[0], out.shape[1], out.shape[2]
    half = (n_xy - 1) / 2.0
    dv_cm = np.float32(voxel_mm / 10.0)
    for vu in prange(n_v * n_u):
        v = vu // n_u
        j = vu % n_u
        acc = np.zeros(n_z, dtype=np.float32)
        sample = np.empty(n_z, dtype=np.float32)
        for k in range(n_planes - 1, -1, -1):
            a = _snap((s_mm[k] * ex[v] + u_mm[j] * tx[v]) / voxel_mm + half)
            c = _snap((s_mm[k] * ey[v] + u_mm[j] * ty[v]) / voxel_mm + half)
            a0 = np.floor(a)
            c0 = np.floor(c)
            fa = a - a0
            fc = c - c0
            for z in range(n_z):
                sample[z] = 0.0
            for da in range(2):
                wa = fa if da == 1 else 1.0 - fa
                ai = int(a0) + da
                if ai < 0 or ai >= n_xy:
                    continue
                for dc in range(2):
                    wc = fc if dc == 1 else 1.0 - fc
                    ci = int(c0) + dc
                    if wa * wc > MIN_WEIGHT and ci >= 0 and ci < n_xy and mu_any[ai, ci]:
                        w = np.float32(wa * wc)
                        for z in range(n_z):
                            sample[z] += w * mu[ai, ci, z]
            r = (v * n_planes + k) * n_u + j
            if crow[r + 1] > crow[r]:
                for z in range(n_z):
                    out[v, k, j, z] = np.exp(-((np.float32(0.5) * sample[z] + acc[z]) * dv_cm))
            else:
                for z in range(n_z):
                    out[v, k, j, z] = 0.0
            for z in range(n_z):
                acc[z] += sample[z]


def splat_matrix(frame, angles_deg: np.ndarray, planes: tuple[int, int], support: np.ndarray):
    """The forward splat map of :func:`pvc_core.spect.geometry.splat_matrices` (no transpose), CPU,
    restricted to the voxels of ``support`` (n_xy, n_xy)."""
    e, t = detector_directions(angles_deg)
    xc = frame.centres_mm()
    px, py = np.meshgrid(xc, xc, indexing="ij")
    crow, cols, vals = splat_csr(px.ravel(), py.ravel(), e, t, frame.voxel_mm, frame.n_s, frame.n_u, *planes,
                                 keep=np.asarray(support, dtype=bool).ravel())
    return _csr_tensor(crow, cols, vals, (len(e) * planes[1] * frame.n_u, frame.n_xy * frame.n_xy),
                       torch.device("cpu"))


def attenuation(mu_per_cm, frame, angles_deg: np.ndarray, planes: tuple[int, int], splat):
    """exp(-tau) of a view block where its ``splat`` map has entries (0 elsewhere), (n_views,
    n_planes, n_u, n_z) float32 tensor, CPU."""
    k0, n_planes = planes
    e, t = detector_directions(angles_deg)
    s = np.ascontiguousarray(frame.depth_mm()[k0:k0 + n_planes])
    u = (np.arange(frame.n_u) - (frame.n_u - 1) / 2.0) * frame.voxel_mm
    mu = np.ascontiguousarray(mu_per_cm.numpy() if hasattr(mu_per_cm, "numpy") else mu_per_cm, dtype=np.float32)
    out = np.empty((len(e), n_planes, frame.n_u, mu.shape[2]), np.float32)
    use_threads()
    rotated_attenuation(mu, np.ascontiguousarray((mu != 0).any(axis=2)), np.ascontiguousarray(e[:, 0]), np.ascontiguousarray(e[:, 1]),
                        np.ascontiguousarray(t[:, 0]), np.ascontiguousarray(t[:, 1]), s, u, float(frame.voxel_mm),
                        splat.crow_indices().numpy(), out)
    return torch.from_numpy(out)
