"""Input checks shared by the PVC methods; each raises :class:`InputError` with one clear line."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pvc_core.errors import InputError


def three_numbers(value: float | Sequence[float], name: str, *, allow_zero: bool) -> tuple[float, float, float]:
    """One number or three (array axes 0, 1, 2) as three finite floats, > 0 (or >= 0 with ``allow_zero``)."""
    try:
        arr = np.atleast_1d(np.asarray(value, dtype=np.float64)).ravel()
    except (TypeError, ValueError):
        raise InputError(f"{name} must be one number or three, got {value!r}") from None
    if arr.size == 1:
        arr = np.repeat(arr, 3)
    if arr.size != 3:
        raise InputError(f"{name} must be one number or three (array axes 0, 1, 2), got {arr.size} values")
    bad = np.any(arr < 0) if allow_zero else np.any(arr <= 0)
    if not np.all(np.isfinite(arr)) or bad:
        bound = ">= 0" if allow_zero else "> 0"
        raise InputError(f"{name} must be finite and {bound} mm, got {tuple(float(v) for v in arr)}")
    return tuple(float(v) for v in arr)


def image_3d(image, name: str = "image") -> np.ndarray:
    """A finite 3-D image as a C-contiguous float32 array (a copy only when needed)."""
    arr = np.asarray(image)
    if arr.ndim != 3:
        raise InputError(f"{name} must be a 3-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise InputError(f"{name} is empty (shape {arr.shape})")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
        raise InputError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    finite = np.isfinite(arr)
    if not finite.all():
        raise InputError(f"{name} holds {int((~finite).sum())} NaN or infinite voxels")
    return arr


def iteration_count(iterations, name: str = "iterations", minimum: int = 0) -> int:
    """A whole number of iterations >= ``minimum``."""
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < minimum:
        raise InputError(f"{name} must be a whole number >= {minimum}, got {iterations!r}")
    return int(iterations)
