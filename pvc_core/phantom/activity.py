"""Random activity distributions as in the paper: random shapes, a nonuniform pattern, patient-like scaling.

1. A target active volume V (mL) and a total activity A (MBq) are drawn per case.
2. Random shapes are placed at random voxels inside the body until V is reached. A shape is a
   rotated superellipsoid (exponent 2-5) whose bounding-box edges lie in ``shape_edge_mm``,
   roughened by a smooth random field that only ever removes voxels (``f * (1 + a n) < 1`` with
   ``n >= 0``), so it never leaves its box. Whole shapes are added while the volume stays below
   V (1 + tolerance); the shape that would overshoot is trimmed to the level set of its own field
   that gives V, so the achieved volume is V to within the tolerance (or half a voxel; a case
   holds at least one active voxel).
3. Each shape gets an uptake level; the mask is multiplied by a spatially contiguous
   nonuniform pattern (cubic B-spline interpolation of Gaussian noise on a coarse grid whose
   spacing is the correlation length), mapped to [pattern minimum, 1]; optionally quantised into
   a few levels for sharp intensity steps.
4. The distribution is scaled so that its total activity is A exactly.

All activity lies inside the body mask. Every draw comes from the generator passed in (the case's
'activity' stream), in a fixed order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from pvc_core.errors import InputError
from pvc_core.specs import Grid, PhantomSettings

_EXPONENT_RANGE = (2.0, 5.0)  # superellipsoid exponent: 2 = ellipsoid, larger = boxier
_ROUGHNESS_RANGE = (0.0, 0.6)  # amplitude of the shape's surface perturbation
_ROUGHNESS_NODES = 5  # nodes per axis of the perturbation field inside a shape's box
_ASPECT_MAX = 2.0  # each edge is the base edge times a factor in [1/2, 2]
_ELLIPSOID_FILL = math.pi / 6.0  # volume of an ellipsoid / volume of its box


@dataclass
class Shape:
    """One placed shape: centre (mm), box edges (mm), rotation (columns = local axes), and outcome."""

    centre_mm: np.ndarray
    edges_mm: np.ndarray
    rotation: np.ndarray
    exponent: float
    level: float
    n_voxels: int = 0
    trimmed: bool = False


@dataclass
class ActivityResult:
    """Activity (MBq/mL, float32), the shape id of every voxel (0 = none) and the case's draws."""

    activity_mbq_ml: np.ndarray
    shape_ids: np.ndarray
    shapes: list[Shape]
    info: dict = field(default_factory=dict)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniformly distributed 3-D rotation matrix (from a normalised Gaussian quaternion)."""
    q = rng.standard_normal(4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _volume_window(target_vox: float, tolerance: float, n_body: int, target_ml: float, body_ml: float):
    """(lowest, aimed, highest) active voxel counts for a target of ``target_vox`` voxels."""
    slack = max(tolerance * target_vox, 0.5)
    lo, hi = max(1, math.ceil(target_vox - slack)), math.floor(target_vox + slack)
    if lo > n_body:
        raise InputError(f"target active volume {target_ml:.1f} mL exceeds the body's {body_ml:.1f} mL "
                         "in the field of view", "phantom.active_volume_ml")
    hi = max(lo, min(hi, n_body))
    return lo, int(min(max(round(target_vox), lo), hi)), hi


def random_activity(body_mask: np.ndarray, grid: Grid, rng: np.random.Generator,
                    settings: PhantomSettings) -> ActivityResult:
    """Random activity distribution (MBq/mL on ``grid``) inside ``body_mask``.

    Raises :class:`InputError` (key ``phantom.active_volume_ml``) when the drawn target volume
    exceeds the body, and (key ``phantom``) for an empty body.
    """
    body = np.asarray(body_mask, dtype=bool)
    n_body = int(body.sum())
    if n_body == 0:
        raise InputError("the body mask is empty: no voxel can hold activity", "phantom")
    vml = grid.voxel_ml
    # case-level draws, always in this order
    target_ml = settings.active_volume_ml.draw(rng)
    total_mbq = settings.total_activity_mbq.draw(rng)
    lo_c, hi_c = settings.pattern_correlation_mm
    corr_mm = float(np.exp(rng.uniform(np.log(lo_c), np.log(hi_c))))
    pattern_min = float(rng.uniform(*settings.pattern_min_range))
    sharp = bool(rng.random() < settings.sharp_steps_probability)
    n_levels = int(rng.integers(settings.sharp_steps_levels[0], settings.sharp_steps_levels[1] + 1))
    nodes = int(math.ceil(grid.fov_mm / corr_mm)) + 4
    coarse = rng.standard_normal((nodes,) * 3)

    lo, aim, hi = _volume_window(target_ml / vml, settings.volume_tolerance, n_body, target_ml, n_body * vml)
    ids = np.zeros(grid.shape, dtype=np.int32)
    shapes, n_active = _place_shapes(body, ids, grid, rng, settings, lo, aim, hi)
    fallback = 0
    if n_active < lo:
        fallback = _grow(body, ids, aim - n_active)
        n_active += fallback

    active = np.nonzero(ids)
    pattern = _pattern(coarse, corr_mm, grid, active, pattern_min, n_levels if sharp else 0)
    levels = np.array([0.0] + [s.level for s in shapes])
    raw = levels[ids[active]] * pattern
    activity = np.zeros(grid.shape, dtype=np.float32)
    activity[active] = (raw * (total_mbq / (raw.sum() * vml))).astype(np.float32)

    info = {
        "active_volume_ml_target": float(target_ml),
        "active_volume_ml": float(n_active * vml),
        "total_activity_mbq_target": float(total_mbq),
        "total_activity_mbq": float(activity.sum(dtype=np.float64) * vml),
        "n_shapes": len(shapes),
        "n_shapes_trimmed": int(sum(s.trimmed for s in shapes)),
        "shape_edges_mm_min": float(min((s.edges_mm.min() for s in shapes), default=0.0)),
        "shape_edges_mm_max": float(max((s.edges_mm.max() for s in shapes), default=0.0)),
        "fallback_fill_voxels": int(fallback),
        "pattern_correlation_mm": corr_mm,
        "pattern_min": pattern_min,
        "sharp_steps_levels": n_levels if sharp else 0,
        "max_activity_mbq_ml": float(activity.max()),
    }
    return ActivityResult(activity, ids.astype(np.int16 if len(shapes) < 32767 else np.int32), shapes, info)


def _draw_edges(rng: np.random.Generator, settings: PhantomSettings) -> np.ndarray:
    emin, emax = settings.shape_edge_mm
    u = rng.random()
    if settings.shape_edge_distribution == "loguniform":
        base = math.exp(math.log(emin) + u * (math.log(emax) - math.log(emin)))
    else:
        base = emin + u * (emax - emin)
    aspect = np.exp(rng.uniform(-math.log(_ASPECT_MAX), math.log(_ASPECT_MAX), 3))
    return np.clip(base * aspect, emin, emax)


def _pick_centre(body: np.ndarray, ids: np.ndarray, rng: np.random.Generator) -> tuple[int, int, int] | None:
    """A random body voxel without activity (rejection sampling, then an exhaustive draw)."""
    n = body.shape
    for _ in range(200):
        i, j, k = (int(v) for v in rng.integers(0, n))
        if body[i, j, k] and ids[i, j, k] == 0:
            return i, j, k
    free = np.flatnonzero(body & (ids == 0))
    if not free.size:
        return None
    return tuple(int(v) for v in np.unravel_index(free[int(rng.integers(free.size))], n))  # type: ignore[return-value]


def _place_shapes(body, ids, grid: Grid, rng, settings: PhantomSettings, lo: int, aim: int, hi: int):
    c = grid.centres_mm()
    vs = grid.voxel_mm
    shapes: list[Shape] = []
    n_active = 0
    emin = settings.shape_edge_mm[0]
    for _ in range(settings.max_shapes):
        if n_active >= lo:
            break
        edges = _draw_edges(rng, settings)
        room_mm3 = (hi - n_active) * vs**3
        est = _ELLIPSOID_FILL * float(np.prod(edges))
        if est > room_mm3:  # keep the shape's size distribution for the volume still open
            edges = np.maximum(edges * (room_mm3 / est) ** (1.0 / 3.0), emin)
        rot = random_rotation(rng)
        p = float(rng.uniform(*_EXPONENT_RANGE))
        rough = float(rng.uniform(*_ROUGHNESS_RANGE))
        bumps = rng.random((_ROUGHNESS_NODES,) * 3)
        lo_l, hi_l = settings.shape_level_range
        level = float(np.exp(rng.uniform(np.log(lo_l), np.log(hi_l)))) if hi_l > lo_l else float(hi_l)
        centre_idx = _pick_centre(body, ids, rng)
        if centre_idx is None:
            break
        centre = c[list(centre_idx)]
        shape = Shape(centre, edges, rot, p, level)
        new = _rasterise(shape, rough, bumps, body, ids, c, vs)
        if new is None:
            continue
        idx, f = new
        if n_active + idx[0].size > hi:
            keep = np.argsort(f, kind="stable")[: aim - n_active]
            idx = tuple(a[keep] for a in idx)
            shape.trimmed = True
        shapes.append(shape)
        ids[idx] = len(shapes)
        shape.n_voxels = int(idx[0].size)
        n_active += shape.n_voxels
    return shapes, n_active


def _rasterise(shape: Shape, rough: float, bumps: np.ndarray, body, ids, c: np.ndarray, vs: float):
    """Indices (into the full grid) of the free body voxels the shape covers, and its field there."""
    half = shape.edges_mm / 2.0
    extent = np.abs(shape.rotation) @ half  # half-extent of the rotated box along x, y, z
    box = []
    for axis in range(3):
        lo = np.searchsorted(c, shape.centre_mm[axis] - extent[axis] - 0.5 * vs)
        hi = np.searchsorted(c, shape.centre_mm[axis] + extent[axis] + 0.5 * vs, side="right")
        box.append(slice(int(lo), int(hi)))
    dx = (c[box[0]] - shape.centre_mm[0]).astype(np.float32)[:, None, None]
    dy = (c[box[1]] - shape.centre_mm[1]).astype(np.float32)[None, :, None]
    dz = (c[box[2]] - shape.centre_mm[2]).astype(np.float32)[None, None, :]
    R = shape.rotation.astype(np.float32)
    p = np.float32(shape.exponent)
    acc = None
    local = []
    for j in range(3):  # local coordinate u_j = (x - centre) . axis_j, scaled by its half edge
        u = (R[0, j] * dx + R[1, j] * dy + R[2, j] * dz) / np.float32(half[j])
        local.append(u)
        term = np.abs(u) ** p
        acc = term if acc is None else acc + term
    free = body[box[0], box[1], box[2]] & (ids[box[0], box[1], box[2]] == 0)
    cand = (acc < 1.0) & free
    if not cand.any():
        return None
    sel = np.nonzero(cand)
    f = acc[sel] ** (1.0 / p)
    if rough > 0:
        g = [np.broadcast_to(u, cand.shape)[sel] for u in local]
        coords = np.stack([(gj + 1.0) * 0.5 * (_ROUGHNESS_NODES - 1) for gj in g])
        n = ndimage.map_coordinates(bumps, coords, order=1, mode="nearest")
        f = f * (1.0 + rough * n)
        keep = f < 1.0
        sel = tuple(s[keep] for s in sel)
        f = f[keep]
        if not f.size:
            return None
    idx = tuple(s + b.start for s, b in zip(sel, box))
    return idx, f


def _grow(body: np.ndarray, ids: np.ndarray, n: int) -> int:
    """Add the ``n`` free body voxels nearest to the active ones, each joining its nearest shape."""
    if n <= 0:
        return 0
    if not ids.any():
        free = np.flatnonzero(body)[:n]
        ids.flat[free] = 1
        return int(free.size)
    dist, nearest = ndimage.distance_transform_edt(ids == 0, return_indices=True)
    free = np.flatnonzero(body & (ids == 0))
    order = free[np.argsort(dist.flat[free], kind="stable")[:n]]
    src = tuple(nearest[a].flat[order] for a in range(3))
    ids.flat[order] = ids[src]
    return int(order.size)


def _pattern(coarse: np.ndarray, corr_mm: float, grid: Grid, active, pattern_min: float, n_levels: int) -> np.ndarray:
    """Smooth pattern in [pattern_min, 1] at the active voxels (optionally quantised to n_levels)."""
    if not active[0].size:
        return np.zeros(0)
    c = grid.centres_mm()
    coords = np.stack([(c[a] + grid.fov_mm / 2.0) / corr_mm + 2.0 for a in active])
    g = ndimage.map_coordinates(coarse, coords, order=3, mode="nearest")
    sd = float(g.std())
    g = (g - g.mean()) / sd if sd > 0 else np.zeros_like(g)
    p = 1.0 / (1.0 + np.exp(-1.7 * g))  # close to the normal CDF: spreads values over (0, 1)
    if n_levels >= 2:
        p = np.minimum(np.floor(p * n_levels), n_levels - 1) / (n_levels - 1)
    return pattern_min + (1.0 - pattern_min) * p
