"""Solid primitives painted into a label volume, each evaluated only inside its bounding box.

Coordinates are 1-D arrays of voxel-centre positions in mm (one per axis, any monotonic order),
so a primitive costs only the voxels of its box. A primitive is a pair (bounds, inside) where
``bounds = ((x0, x1), (y0, y1), (z0, z1))`` and ``inside(X, Y, Z)`` takes broadcastable coordinate
arrays and returns a boolean array.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Bounds = tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
Inside = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
Primitive = tuple[Bounds, Inside]


def index_range(coords: np.ndarray, lo: float, hi: float) -> slice | None:
    """Slice of the indices whose coordinate lies in [lo, hi] (``coords`` monotonic), or None."""
    idx = np.flatnonzero((coords >= lo) & (coords <= hi))
    return slice(int(idx[0]), int(idx[-1]) + 1) if idx.size else None


class Painter:
    """Paints primitives into ``labels`` (uint8, indexed x, y, z) given the axes' coordinates (mm)."""

    def __init__(self, labels: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> None:
        self.labels, self.x, self.y, self.z = labels, x, y, z

    def region(self, bounds: Bounds) -> tuple[slice, slice, slice] | None:
        """Index box of ``bounds``, or None where it misses the grid."""
        s = [index_range(c, lo, hi) for c, (lo, hi) in zip((self.x, self.y, self.z), bounds)]
        return None if any(v is None for v in s) else tuple(s)  # type: ignore[return-value]

    def paint(self, primitive: Primitive, label: int, allowed: tuple[int, ...]) -> int:
        """Set ``label`` where the primitive holds and the current label is in ``allowed``.

        Returns the number of voxels painted.
        """
        bounds, inside = primitive
        box = self.region(bounds)
        if box is None:
            return 0
        sx, sy, sz = box
        mask = inside(self.x[sx][:, None, None], self.y[sy][None, :, None], self.z[sz][None, None, :])
        sub = self.labels[sx, sy, sz]
        lut = np.zeros(256, dtype=bool)
        lut[list(allowed)] = True
        mask = np.broadcast_to(mask, sub.shape) & lut[sub]
        sub[mask] = label
        return int(mask.sum())


def ellipsoid(centre, semi, rot_deg: float = 0.0, where: Inside | None = None) -> Primitive:
    """Ellipsoid with semi-axes ``semi`` (mm), rotated by ``rot_deg`` about the z axis.

    ``where`` (optional) further restricts the region (e.g. a half-space).
    """
    cx, cy, cz = centre
    a, b, c = semi
    r = max(a, b)
    th = np.deg2rad(rot_deg)
    cos, sin = np.cos(th), np.sin(th)

    def inside(X, Y, Z):
        dx, dy = X - cx, Y - cy
        u, v = cos * dx + sin * dy, -sin * dx + cos * dy
        m = (u / a) ** 2 + (v / b) ** 2 + ((Z - cz) / c) ** 2 <= 1.0
        return m & where(X, Y, Z) if where is not None else m

    return ((cx - r, cx + r), (cy - r, cy + r), (cz - c, cz + c)), inside


def ellipsoid_shell(centre, semi, thickness_mm: float, rot_deg: float = 0.0, where: Inside | None = None) -> Primitive:
    """Shell between an ellipsoid and the one with every semi-axis smaller by ``thickness_mm``."""
    bounds, outer = ellipsoid(centre, semi, rot_deg)
    _, inner = ellipsoid(centre, tuple(max(s - thickness_mm, 1e-3) for s in semi), rot_deg)

    def inside(X, Y, Z):
        m = outer(X, Y, Z) & ~inner(X, Y, Z)
        return m & where(X, Y, Z) if where is not None else m

    return bounds, inside


def capsule(p0, p1, radius_mm: float) -> Primitive:
    """All points within ``radius_mm`` of the segment p0-p1."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    dd = float(d @ d) or 1e-12
    lo, hi = np.minimum(p0, p1) - radius_mm, np.maximum(p0, p1) + radius_mm

    def inside(X, Y, Z):
        t = np.clip(((X - p0[0]) * d[0] + (Y - p0[1]) * d[1] + (Z - p0[2]) * d[2]) / dd, 0.0, 1.0)
        return (X - p0[0] - t * d[0]) ** 2 + (Y - p0[1] - t * d[1]) ** 2 + (Z - p0[2] - t * d[2]) ** 2 <= radius_mm**2

    return ((lo[0], hi[0]), (lo[1], hi[1]), (lo[2], hi[2])), inside
