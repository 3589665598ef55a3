"""Resampling between grids given by their affines (mm, NIfTI RAS+ world), activity conserved.

Three quantities, three rules:

- :func:`resample_activity`: activity concentration (MBq/mL), an *extensive* quantity per
  voxel volume. The target voxel receives the activity (concentration x volume) of every piece of
  source voxel that overlaps it, divided by its own volume, so ``sum(dst) V_dst == sum(src) V_src``
  for all activity that falls inside the target grid.
- :func:`resample_mean`: intensive quantities (mu in 1/cm): the overlap-weighted mean of the
  source values over the part of the target voxel that the source covers; 0 where nothing covers.
- :func:`resample_labels`: integer labels, nearest neighbour in world coordinates, 0 outside.

Two regimes, chosen from the index map ``M = inv(dst_affine) @ src_affine``:

- *Aligned* (``M[:3, :3]`` is a scaled permutation: any voxel sizes, flips, axis permutations and
  origins): exact overlap integration. The 3-D overlap of two axis-aligned boxes is the product of
  1-D interval overlaps, so the resampling is three sparse 1-D weight matrices applied in turn
  (float64). Activity inside the target is conserved to rounding (~1e-12 relative) and a lesion
  the size of one target voxel keeps all of its activity in the (at most 2^3) target voxels it
  overlaps, whatever its sub-voxel offset. Voxel boundaries that coincide within 1e-5 voxel are
  snapped (affines read from NIfTI carry float32 rounding), so grids that coincide give the source
  values exactly.
- *Oblique* (any rotation): supersampling. Each source voxel is split into ``k0 x k1 x k2``
  sub-points (``k_a >= 2`` and so that one sub-step moves <= 1/4 of a target voxel along every
  target axis); each carries ``1/(k0 k1 k2)`` of the voxel's activity and is deposited with
  trilinear weights into the target voxel centres (positions within the target grid's outer
  half-voxel are clamped onto the edge voxel, so nothing inside the target box is lost). Activity
  and the first moment (centroid) inside the target are conserved to rounding; a lesion of one
  target voxel keeps >= 99 % of its activity in the 3 x 3 x 3 target voxels around it (the
  trilinear deposit spreads it by up to one voxel). Source voxels are processed in chunks of
  ~1e6 sub-points to bound memory (a few hundred MB); the cost is about 1 us per sub-point, so a rotated
  256^3 input takes a minute or two where an aligned one takes a second.

Activity that falls outside the target grid is lost; :func:`lost_activity_fraction` measures it so
that callers can refuse or warn.

Why hand-written: ``scipy.ndimage.affine_transform`` / ``map_coordinates`` and nibabel's
``resample_from_to`` (built on them) interpolate *point samples* of the source at the target
voxel centres. That neither conserves activity when voxel sizes differ (a small hot lesion
between target centres vanishes, one on a centre is over-counted) nor gives a mean over the
target voxel; rescaling to the global total only hides the error in the sum.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

#: Off-axis entries of the index map below this fraction of the axis's scale count as zero.
_ALIGN_TOL = 1e-9
#: Voxel boundaries within this distance (target voxels) of a target boundary are snapped onto it.
#: NIfTI stores affines in float32 (relative precision 6e-8), so grids meant to coincide (e.g. a
#: phantom exactly as large as the field of view) differ by ~1e-6 voxel; 1e-5 voxel of 4.8 mm is 48 nm.
_SNAP_TOL = 1e-5
#: Sub-points per chunk in the oblique (supersampling) path.
_CHUNK_POINTS = 1 << 20


def index_map(src_affine: np.ndarray, dst_affine: np.ndarray) -> np.ndarray:
    """4x4 map from source voxel indices to (continuous) target voxel indices: ``inv(dst) @ src``."""
    return np.linalg.solve(np.asarray(dst_affine, dtype=float), np.asarray(src_affine, dtype=float))


def is_axis_aligned(src_affine: np.ndarray, dst_affine: np.ndarray) -> bool:
    """True when the two grids' axes coincide up to permutation, flips and scaling (any origins)."""
    return _axis_pairing(index_map(src_affine, dst_affine)) is not None


def total_activity_mbq(data: np.ndarray, affine: np.ndarray) -> float:
    """Total activity (MBq) of a concentration image (MBq/mL): sum x voxel volume (mL), float64."""
    volume_ml = abs(float(np.linalg.det(np.asarray(affine, dtype=float)[:3, :3]))) / 1000.0
    return float(np.asarray(data).sum(dtype=np.float64)) * volume_ml


def lost_activity_fraction(src_data: np.ndarray, src_affine: np.ndarray, dst_data: np.ndarray,
                           dst_affine: np.ndarray) -> float:
    """Fraction of the source's activity missing from ``dst_data`` (e.g. outside the target grid).

    ``1 - total(dst) / total(src)`` with totals from :func:`total_activity_mbq`; 0 for an empty
    source. After :func:`resample_activity` this is the share that fell outside the target grid
    (to rounding, ~1e-12 for aligned grids).
    """
    total_src = total_activity_mbq(src_data, src_affine)
    if total_src == 0:
        return 0.0
    return 1.0 - total_activity_mbq(dst_data, dst_affine) / total_src


def resample_activity(data: np.ndarray, src_affine: np.ndarray, dst_shape: tuple[int, int, int],
                      dst_affine: np.ndarray) -> np.ndarray:
    """Activity concentration (MBq/mL) on the target grid, activity (value x voxel volume) conserved.

    Parameters
    ----------
    data:
        Source concentration (MBq/mL), 3-D, indexed like ``src_affine``'s voxel axes.
    src_affine, dst_affine:
        4x4 voxel-index-to-world affines (mm) of the source and target grids.
    dst_shape:
        Target grid shape (voxels).

    Returns float64 of ``dst_shape``. Exact overlap integration for aligned grids, supersampling
    with trilinear deposit for oblique ones (see the module docstring for the accuracy). Activity
    outside the target grid is dropped; see :func:`lost_activity_fraction`.
    """
    data, m, dst_shape = _check(data, src_affine, dst_shape, dst_affine)
    pairing = _axis_pairing(m)
    if pairing is not None:
        mats = [_overlap_weights(data.shape[a], dst_shape[b], s, t) for a, (b, s, t) in enumerate(pairing)]
        return _apply_separable(data, mats, [b for b, _, _ in pairing])
    volume_ratio = abs(float(np.linalg.det(m[:3, :3])))  # V_src / V_dst
    num, _ = _splat(data, m, dst_shape, coverage=False)
    return num * volume_ratio


def resample_mean(data: np.ndarray, src_affine: np.ndarray, dst_shape: tuple[int, int, int],
                  dst_affine: np.ndarray) -> np.ndarray:
    """Overlap-weighted mean of an intensive quantity (e.g. mu in 1/cm) on the target grid.

    Each target voxel gets the mean of the source values over the part of it that the source
    covers (weights: overlap volume for aligned grids, sub-point trilinear weights for oblique
    ones); 0 where no source voxel covers it. Same parameters as :func:`resample_activity`;
    returns float64 of ``dst_shape`` in the source's units.
    """
    data, m, dst_shape = _check(data, src_affine, dst_shape, dst_affine)
    pairing = _axis_pairing(m)
    if pairing is not None:
        mats = []
        for a, (b, s, t) in enumerate(pairing):
            w = _overlap_weights(data.shape[a], dst_shape[b], s, t)
            row = np.asarray(w.sum(axis=1)).ravel()
            inv = np.divide(1.0, row, out=np.zeros_like(row), where=row > 0)
            mats.append(sp.diags(inv) @ w)
        return _apply_separable(data, mats, [b for b, _, _ in pairing])
    num, den = _splat(data, m, dst_shape, coverage=True)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def resample_labels(labels: np.ndarray, src_affine: np.ndarray, dst_shape: tuple[int, int, int],
                    dst_affine: np.ndarray) -> np.ndarray:
    """Nearest-neighbour labels on the target grid (world mm), dtype kept, 0 outside the source.

    Each target voxel centre takes the label of the source voxel whose box contains it (ties at a
    boundary go to the higher index).
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"expected a 3-D label map, got shape {labels.shape}")
    dst_shape = tuple(int(n) for n in dst_shape)
    back = index_map(dst_affine, src_affine)  # target index -> source index
    out = np.zeros(dst_shape, dtype=labels.dtype)
    n_src = np.asarray(labels.shape)
    jj, kk = np.meshgrid(np.arange(dst_shape[1]), np.arange(dst_shape[2]), indexing="ij")
    plane = np.stack([np.zeros(jj.size), jj.ravel(), kk.ravel()], axis=1).astype(float)
    for i in range(dst_shape[0]):
        plane[:, 0] = i
        q = plane @ back[:3, :3].T + back[:3, 3]
        r = np.floor(_snap(q) + 0.5).astype(np.int64)
        ok = np.all((r >= 0) & (r < n_src), axis=1)
        vals = np.zeros(len(q), dtype=labels.dtype)
        vals[ok] = labels[r[ok, 0], r[ok, 1], r[ok, 2]]
        out[i] = vals.reshape(dst_shape[1], dst_shape[2])
    return out


# -- internals ---------------------------------------------------------------------------------

def _check(data, src_affine, dst_shape, dst_affine):
    a = np.asarray(data)
    if a.ndim != 3:
        raise ValueError(f"expected a 3-D image, got shape {a.shape}")
    shape = tuple(int(n) for n in dst_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"dst_shape must be three positive sizes, got {dst_shape}")
    m = index_map(src_affine, dst_affine)
    if abs(np.linalg.det(m[:3, :3])) == 0:
        raise ValueError("singular affine: voxels of zero volume")
    return a, m, shape


def _axis_pairing(m: np.ndarray) -> list[tuple[int, float, float]] | None:
    """Per source axis a: (target axis b, scale s, offset t) with ``idx_b = s idx_a + t``; None if oblique."""
    lin = m[:3, :3]
    mag = np.abs(lin)
    big = mag > _ALIGN_TOL * mag.max(axis=0, keepdims=True)
    if not (np.all(big.sum(axis=0) == 1) and np.all(big.sum(axis=1) == 1)):
        return None
    pairing = []
    for a in range(3):
        b = int(np.argmax(big[:, a]))
        pairing.append((b, float(lin[b, a]), float(m[b, 3])))
    return pairing


def _snap(x: np.ndarray) -> np.ndarray:
    """Values within ``_SNAP_TOL`` of a half-integer (a voxel boundary) or an integer, put onto it."""
    r = np.round(2.0 * x) / 2.0
    return np.where(np.abs(x - r) <= _SNAP_TOL, r, x)


def _overlap_weights(n_src: int, n_dst: int, s: float, t: float) -> sp.csr_matrix:
    """(n_dst, n_src) weights: overlap (in target voxels) of source voxel i with target voxel j.

    Source voxel i spans ``[i - 1/2, i + 1/2]`` in its index space, i.e. ``s (i -+ 1/2) + t`` in
    target index space; target voxel j spans ``[j - 1/2, j + 1/2]``. ``c_dst = W @ c_src`` along
    this axis conserves ``sum(c) x length``. Weights are the overlap's share of the (snapped)
    source interval times ``|s|``, so the shares of one source voxel sum to 1 to rounding.
    """
    i = np.arange(n_src, dtype=float)
    e0, e1 = _snap(s * (i - 0.5) + t), _snap(s * (i + 0.5) + t)
    lo, hi = np.minimum(e0, e1), np.maximum(e0, e1)
    width = hi - lo
    j0 = np.floor(lo + 0.5).astype(np.int64)
    jj = j0[:, None] + np.arange(int(np.ceil(abs(s))) + 2)[None, :]
    ov = np.minimum(hi[:, None], jj + 0.5) - np.maximum(lo[:, None], jj - 0.5)
    keep = (ov > 0) & (jj >= 0) & (jj < n_dst)
    rows = jj[keep]
    cols = np.broadcast_to(np.arange(n_src)[:, None], jj.shape)[keep]
    vals = (ov / width[:, None] * abs(s))[keep]
    return sp.csr_matrix((vals, (rows, cols)), shape=(n_dst, n_src))


def _apply_separable(data: np.ndarray, mats: list[sp.csr_matrix], targets: list[int]) -> np.ndarray:
    """Apply one sparse matrix per source axis (float64); axis a ends up as target axis ``targets[a]``."""
    out = np.asarray(data, dtype=np.float64)
    # shrink first: the axis with the smallest n_dst / n_src ratio is contracted first
    for a in sorted(range(3), key=lambda ax: mats[ax].shape[0] / mats[ax].shape[1]):
        moved = np.moveaxis(out, a, 0)
        rest = moved.shape[1:]
        res = mats[a] @ moved.reshape(moved.shape[0], -1)
        out = np.moveaxis(np.asarray(res).reshape((mats[a].shape[0],) + rest), 0, a)
    inverse = np.argsort(targets)  # target axis b holds source axis inverse[b]
    return np.ascontiguousarray(out.transpose(inverse))


def _subdivisions(m: np.ndarray) -> np.ndarray:
    """Sub-points per source axis: >= 2 and one sub-step <= 1/4 target voxel along every target axis."""
    step = np.abs(m[:3, :3]).max(axis=0)  # target voxels moved per source voxel, worst target axis
    return np.maximum(2, np.ceil(4.0 * step - 1e-9)).astype(np.int64)


def _splat(data: np.ndarray, m: np.ndarray, dst_shape: tuple[int, int, int],
           coverage: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Trilinear deposit of sub-sampled source voxels: (sum of w x value, sum of w or None), per target voxel.

    Each source voxel contributes ``1/K`` (K sub-points) in total weight when fully inside the
    target grid. Without ``coverage`` only non-zero voxels are visited.
    """
    k = _subdivisions(m)
    offs = [(np.arange(n) + 0.5) / n - 0.5 for n in k]
    sub = np.stack(np.meshgrid(*offs, indexing="ij"), axis=-1).reshape(-1, 3)  # source-index offsets
    delta = sub @ m[:3, :3].T  # (K, 3) target-index offsets
    n_sub = len(sub)
    dst = np.asarray(dst_shape)
    n_flat = int(np.prod(dst))
    num = np.zeros(n_flat)
    den = np.zeros(n_flat) if coverage else None
    values = np.asarray(data, dtype=np.float64).ravel()
    voxels = np.arange(values.size) if coverage else np.flatnonzero(values)
    per_chunk = max(1, _CHUNK_POINTS // n_sub)
    # an axis of one voxel gets stride 0 for the upper corner (its weight is 0 there anyway)
    strides = np.array([dst[1] * dst[2], dst[2], 1]) * (dst > 1)
    corner_offsets = (np.array([0, 1])[:, None, None] * strides[0] + np.array([0, 1])[None, :, None] * strides[1]
                      + np.array([0, 1])[None, None, :] * strides[2]).ravel()  # (8,), corner order x, y, z
    upper = np.maximum(dst - 2, 0)
    for start in range(0, len(voxels), per_chunk):
        flat = voxels[start:start + per_chunk]
        idx = np.stack(np.unravel_index(flat, data.shape), axis=1).astype(float)
        centre = idx @ m[:3, :3].T + m[:3, 3]
        p = (centre[:, None, :] + delta[None, :, :]).reshape(-1, 3)
        inside = np.all((p >= -0.5) & (p < dst - 0.5), axis=1)
        if not inside.any():
            continue
        p = np.clip(p[inside], 0.0, dst - 1)
        v = np.repeat(values[flat], n_sub)[inside]
        f = np.minimum(np.floor(p), upper)
        fr = p - f
        base = f.astype(np.int64) @ (np.array([dst[1] * dst[2], dst[2], 1]))
        wx = np.stack([1.0 - fr[:, 0], fr[:, 0]], axis=1)
        wy = np.stack([1.0 - fr[:, 1], fr[:, 1]], axis=1)
        wz = np.stack([1.0 - fr[:, 2], fr[:, 2]], axis=1)
        wxy = (wx[:, :, None] * wy[:, None, :]).reshape(-1, 4)
        w = (wxy[:, :, None] * (wz / n_sub)[:, None, :]).reshape(-1, 8)
        flat_dst = (base[:, None] + corner_offsets[None, :]).ravel()
        w = w.ravel()
        lo, hi = int(flat_dst.min()), int(flat_dst.max())
        rel = flat_dst - lo
        num[lo:hi + 1] += np.bincount(rel, weights=w * np.repeat(v, 8), minlength=hi - lo + 1)
        if coverage:
            den[lo:hi + 1] += np.bincount(rel, weights=w, minlength=hi - lo + 1)
    shape = tuple(int(n) for n in dst)
    return num.reshape(shape), None if den is None else den.reshape(shape)
