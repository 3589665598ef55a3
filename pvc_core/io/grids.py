"""Do two images share one voxel grid? (shape, orientation, voxel size and origin, in mm).

Two images are on the same grid when voxel (i, j, k) of one covers the same place as voxel
(i, j, k) of the other: same array shape, same axis directions (direction cosines, including
flips), voxel edges equal to within ``VOXEL_TOLERANCE_MM`` and origins (the centre of voxel
(0, 0, 0)) equal to within ``ORIGIN_TOLERANCE_VOXEL`` of a voxel.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np

from pvc_core.errors import InputError
from pvc_core.io.nifti import Image

#: Largest difference of a voxel edge length (mm) that still counts as the same voxel size.
VOXEL_TOLERANCE_MM = 1e-3

#: Largest origin difference, in voxels of the second image along each array axis.
ORIGIN_TOLERANCE_VOXEL = 0.01

#: Largest difference of a direction cosine (unit-vector component) that counts as the same axis
#: direction (1e-3 is a rotation of about 0.06 degrees).
DIRECTION_TOLERANCE = 1e-3


def _fmt(values) -> str:
    return "(" + ", ".join(f"{float(v):.4g}" for v in values) + ")"


def grid_mismatch(a: Image, b: Image) -> str | None:
    """What differs between the grids of ``a`` and ``b``, in words, or None when they match.

    The text describes ``a`` against ``b`` and ends with ``b``'s value, so that a caller can
    append ``" of <b's file>"``, e.g. ``"voxel size (5, 5, 5) mm differs from (4, 4, 4) mm"``.
    Checked in this order: shape, orientation (direction cosines, axis flips), voxel size
    (tolerance ``VOXEL_TOLERANCE_MM`` = 1e-3 mm), origin (tolerance ``ORIGIN_TOLERANCE_VOXEL`` =
    0.01 voxel of ``b``).
    """
    if a.data.shape[:3] != b.data.shape[:3]:
        return f"shape {a.data.shape[:3]} differs from {b.data.shape[:3]}"
    vox_a = np.asarray(a.voxel_size_mm)
    vox_b = np.asarray(b.voxel_size_mm)
    dir_a = a.affine[:3, :3] / vox_a
    dir_b = b.affine[:3, :3] / vox_b
    if np.max(np.abs(dir_a - dir_b)) > DIRECTION_TOLERANCE:
        codes_a = "".join(nib.orientations.aff2axcodes(a.affine))
        codes_b = "".join(nib.orientations.aff2axcodes(b.affine))
        if codes_a != codes_b:
            return f"orientation {codes_a} (array axes 0, 1, 2 point to these directions) differs from {codes_b}"
        cos = np.clip((np.trace(dir_a.T @ dir_b) - 1.0) / 2.0, -1.0, 1.0)
        return (f"orientation is rotated by {np.degrees(np.arccos(cos)):.2g} degrees "
                f"(direction cosines differ) from that")
    if np.max(np.abs(vox_a - vox_b)) > VOXEL_TOLERANCE_MM:
        return f"voxel size {_fmt(vox_a)} mm differs from {_fmt(vox_b)} mm"
    shift_voxel = np.linalg.solve(b.affine[:3, :3], a.affine[:3, 3] - b.affine[:3, 3])
    if np.max(np.abs(shift_voxel)) > ORIGIN_TOLERANCE_VOXEL:
        return (f"origin {_fmt(a.affine[:3, 3])} mm is shifted by {_fmt(shift_voxel)} voxels "
                f"from {_fmt(b.affine[:3, 3])} mm")
    return None


def require_same_grid(a: Image, a_name: str, b: Image, b_name: str) -> None:
    """Raise :class:`InputError` naming ``a_name`` and ``b_name`` (files) when the grids differ.

    The message reads ``"<a_name>: <what differs> of <b_name>; ..."`` (see :func:`grid_mismatch`).
    """
    problem = grid_mismatch(a, b)
    if problem is not None:
        raise InputError(f"{problem} of {b_name}; both images must share one voxel grid "
                         "(resample one onto the other's grid)", a_name)
