"""NIfTI images that never travel without their geometry.

An :class:`Image` is a 3-D float array plus its 4x4 affine in mm. Values are activity
concentration in MBq/mL, linear attenuation coefficient in 1/cm, or labels, as the file's
``descrip`` field says. Files are written atomically (temporary file, then rename) so that a
killed job never leaves a truncated image that a rerun would mistake for a finished one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from pvc_core.errors import InputError


@dataclass
class Image:
    """A 3-D image with its affine (mm). ``data`` is indexed by array axes 0, 1, 2."""

    data: np.ndarray
    affine: np.ndarray

    @property
    def voxel_size_mm(self) -> tuple[float, float, float]:
        """Voxel edge lengths in mm along array axes 0, 1, 2 (column norms of the affine)."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in mL (1 mL = 1000 mm^3)."""
        x, y, z = self.voxel_size_mm
        return x * y * z / 1000.0


def affine_from_voxel_size(voxel_size_mm: float | tuple[float, float, float], shape: tuple[int, int, int]) -> np.ndarray:
    """Diagonal affine with the given voxel size (mm) and the grid centred on the origin."""
    vs = np.broadcast_to(np.asarray(voxel_size_mm, dtype=float), (3,))
    affine = np.eye(4)
    affine[:3, :3] = np.diag(vs)
    affine[:3, 3] = -0.5 * (np.asarray(shape, dtype=float) - 1.0) * vs
    return affine


def save_image(path: str | os.PathLike, data: np.ndarray, affine_or_voxel_mm, description: str = "",
               dtype=np.float32) -> Path:
    """Write a 3-D array as NIfTI (``.nii.gz``) with spatial units mm.

    ``affine_or_voxel_mm`` is a 4x4 affine or a voxel size in mm (one number or three), in which
    case the grid is centred on the origin. ``description`` (e.g. ``"activity MBq/mL"``) goes to
    the header's ``descrip`` field (80 characters at most).
    """
    path = Path(path)
    arr = np.asarray(data)
    if arr.ndim != 3:
        raise ValueError(f"{path}: expected a 3-D array, got shape {arr.shape}")
    aff = np.asarray(affine_or_voxel_mm, dtype=float)
    if aff.shape != (4, 4):
        aff = affine_from_voxel_size(tuple(np.broadcast_to(aff, (3,))), arr.shape)
    img = nib.Nifti1Image(arr.astype(dtype, copy=False), aff)
    img.header.set_xyzt_units("mm", "sec")
    img.header["descrip"] = description[:79].encode("ascii", "replace")
    img.set_sform(aff, code=1)
    img.set_qform(aff, code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".tmp." + path.name)
    nib.save(img, tmp)
    os.replace(tmp, path)
    return path


def load_image(path: str | os.PathLike, *, allow_negative: bool = True, name: str = "image") -> Image:
    """Read a 3-D NIfTI image as float32 and check it.

    Raises :class:`InputError` naming the file when it is missing, unreadable, not 3-D (a 4-D
    image with one volume is accepted), holds NaN or infinity, or (``allow_negative=False``)
    holds negative values.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{name} file not found", path)
    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj, dtype=np.float32)
    except Exception as err:  # nibabel raises many types for corrupt files
        raise InputError(f"cannot read {name} as NIfTI ({type(err).__name__}: {err})", path) from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(f"{name} must be a 3-D volume, got {data.ndim}-D shape {data.shape}", path)
    if not np.all(np.isfinite(data)):
        n_bad = int((~np.isfinite(data)).sum())
        raise InputError(f"{name} holds {n_bad} NaN or infinite voxels", path)
    if not allow_negative and float(data.min()) < 0:
        raise InputError(f"{name} holds negative values (min {float(data.min()):.4g}); activity cannot be negative", path)
    return Image(data=data, affine=np.asarray(img.affine, dtype=float))
