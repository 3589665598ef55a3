"""NIfTI images that never travel without their geometry.

An :class:`Image` is a 3-D array plus its 4x4 affine in mm (a header in metres or microns is
converted to mm on reading). Values are activity concentration in MBq/mL, linear attenuation
coefficient in 1/cm (float32, :func:`load_image`), or labels (integers, :func:`load_labels`), as
the file's ``descrip`` field says. Files are written atomically (temporary file, then rename) so
that a killed job never leaves a truncated image that a rerun would mistake for a finished one.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nibabel as nib
import numpy as np

from pvc_core.errors import InputError
from pvc_core.io.atomic import atomic_path


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
        """Volume of one voxel in mL (1 mL = 1000 mm^3): |det| of the affine's 3x3 part, which is the
        product of the edges for orthogonal axes and stays right for a sheared affine."""
        return abs(float(np.linalg.det(np.asarray(self.affine, dtype=float)[:3, :3]))) / 1000.0


def affine_from_voxel_size(voxel_size_mm: float | tuple[float, float, float], shape: tuple[int, int, int]) -> np.ndarray:
    """Diagonal affine with the given voxel size (mm) and the grid centred on the origin."""
    vs = np.broadcast_to(np.asarray(voxel_size_mm, dtype=float), (3,))
    affine = np.eye(4)
    affine[:3, :3] = np.diag(vs)
    affine[:3, 3] = -0.5 * (np.asarray(shape, dtype=float) - 1.0) * vs
    return affine


#: Spatial units of a NIfTI header (``header.get_xyzt_units()[0]``) -> factor to mm. An
#: ``"unknown"`` unit is read as mm (what scanners and most tools mean when they leave it unset).
_UNIT_TO_MM = {"mm": 1.0, "unknown": 1.0, "meter": 1000.0, "micron": 0.001}

#: Negative values at least this fraction of the image maximum are float noise (resampling,
#: FFT-based filtering) that ``clip_tiny_negatives`` sets to 0.
TINY_NEGATIVE_FRACTION = 1e-6

#: A float label must lie this close to a whole number to be read as that label.
LABEL_TOLERANCE = 1e-3


def save_image(path: str | os.PathLike, data: np.ndarray, affine_or_voxel_mm, description: str = "",
               dtype=np.float32, replace: bool = True) -> Path:
    """Write a 3-D array as NIfTI (``.nii`` or ``.nii.gz``, by the name) with spatial units mm.

    ``affine_or_voxel_mm`` is a 4x4 affine in mm or a voxel size in mm (one number or three), in
    which case the grid is centred on the origin. ``description`` (e.g. ``"activity MBq/mL"``)
    goes to the header's ``descrip`` field (80 characters at most). The file is written through
    :func:`pvc_core.io.atomic.atomic_path`, so ``path`` is either absent or complete and nothing
    is left behind when writing fails; ``replace=False`` refuses an existing ``path``
    (:class:`FileExistsError`).
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
    with atomic_path(path, replace=replace) as tmp:
        nib.save(img, tmp)
    return path


def read_nifti_geometry(path: str | os.PathLike, name: str = "image") -> tuple[tuple[int, ...], np.ndarray]:
    """Shape and affine (mm) of a NIfTI file from its header alone (no voxel data is read).

    Raises :class:`InputError` as :func:`load_image` does for what the header shows: an empty
    path, a missing file, a folder, a file nibabel cannot read, an image that is not 3-D (one 4-D
    volume is accepted), an empty array, an unknown spatial unit or a voxel size that is not
    positive and finite.
    """
    _, shape, affine = _open_nifti(path, name)
    return shape, affine


def _open_nifti(path: str | os.PathLike, name: str):
    """(nibabel image, 3-D shape, affine in mm) of a NIfTI file, checked from its header."""
    if not os.fspath(path):
        raise InputError(f"no {name} file given (empty path)")
    path = Path(path)
    if not path.exists():
        raise InputError(f"{name} file not found", path)
    if path.is_dir():
        raise InputError(f"{name} is a folder, not a NIfTI file", path)
    try:
        img = nib.load(str(path))
        shape = tuple(int(n) for n in img.shape)
        dtype = img.get_data_dtype()
        affine = np.asarray(img.affine, dtype=float)
    except Exception as err:  # nibabel raises many types for corrupt files
        text = " ".join(str(err).split())
        raise InputError(f"cannot read {name} as NIfTI ({type(err).__name__}: {text})", path) from None
    if dtype.fields is not None or not (np.issubdtype(dtype, np.number) or dtype == bool) \
            or np.issubdtype(dtype, np.complexfloating):
        raise InputError(f"{name} holds {dtype} values; give real numbers (one value per voxel)", path)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise InputError(f"{name} must be a 3-D volume, got {len(shape)}-D shape {shape}", path)
    if 0 in shape:
        raise InputError(f"{name} is empty (shape {shape})", path)
    header = img.header
    unit = header.get_xyzt_units()[0] if hasattr(header, "get_xyzt_units") else "unknown"
    if unit not in _UNIT_TO_MM:
        raise InputError(f"{name} has spatial unit {unit!r}; expected mm, meter or micron", path)
    affine[:3, :] *= _UNIT_TO_MM[unit]
    voxel_mm = np.linalg.norm(affine[:3, :3], axis=0)
    if not np.all(np.isfinite(affine)) or np.any(voxel_mm <= 0):
        raise InputError(f"{name} has voxel size {tuple(round(float(v), 4) for v in voxel_mm)} mm in its header; "
                         "every edge must be > 0 and finite", path)
    return img, shape, affine


def _read_nifti(path: str | os.PathLike, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Data as stored (dtype of the file after scaling) and the affine in mm of a 3-D NIfTI file.

    Raises :class:`InputError` as :func:`read_nifti_geometry` does, and when the voxel data
    cannot be read (a truncated file).
    """
    img, shape, affine = _open_nifti(path, name)
    try:
        data = np.asanyarray(img.dataobj)
    except Exception as err:  # nibabel raises many types for corrupt files
        text = " ".join(str(err).split())
        raise InputError(f"cannot read {name} as NIfTI ({type(err).__name__}: {text})", Path(path)) from None
    return data.reshape(shape), affine


def load_image(path: str | os.PathLike, *, allow_negative: bool = True, name: str = "image",
               clip_tiny_negatives: bool = False, note: Callable[[str], None] | None = None) -> Image:
    """Read a 3-D NIfTI image as float32 with its affine in mm, and check it.

    Raises :class:`InputError` naming the file when it is missing, unreadable, not 3-D (a 4-D
    image with one volume is accepted), holds NaN or infinity, or (``allow_negative=False``)
    holds negative values. The header's spatial unit is honoured: ``"meter"`` and ``"micron"``
    affines are converted to mm, ``"unknown"`` is read as mm.

    With ``clip_tiny_negatives``, negative values no further below 0 than
    ``TINY_NEGATIVE_FRACTION`` (1e-6) x the image maximum are set to 0 (they are float noise of
    reconstruction and resampling), and ``note`` is called with one line saying how many voxels
    were clipped (default: a :class:`UserWarning`). Larger negatives are kept, or refused with
    ``allow_negative=False``.
    """
    raw, affine = _read_nifti(path, name)
    path = Path(path)
    data = np.asarray(raw, dtype=np.float32)
    if not np.all(np.isfinite(data)):
        n_bad = int((~np.isfinite(data)).sum())
        raise InputError(f"{name} holds {n_bad} NaN or infinite voxels", path)
    if clip_tiny_negatives:
        data, n_clipped = _clip_tiny_negatives(data)
        if n_clipped:
            message = (f"{path}: set {n_clipped} voxels of {name} with tiny negative values "
                       f"(>= -{TINY_NEGATIVE_FRACTION:g} x max) to 0")
            if note is None:
                warnings.warn(message, UserWarning, stacklevel=2)
            else:
                note(message)
    if not allow_negative and float(data.min()) < 0:
        raise InputError(f"{name} holds negative values (min {float(data.min()):.4g}); activity cannot be negative", path)
    return Image(data=data, affine=affine)


def _clip_tiny_negatives(data: np.ndarray) -> tuple[np.ndarray, int]:
    """``data`` with values in [-1e-6 x max, 0) set to 0, and how many were set (0 when max <= 0)."""
    top = float(data.max())
    if top <= 0:
        return data, 0
    tiny = (data < 0) & (data >= -TINY_NEGATIVE_FRACTION * top)
    n = int(tiny.sum())
    if n:
        data = np.where(tiny, np.float32(0), data)
    return data, n


def load_labels(path: str | os.PathLike, name: str = "label image") -> Image:
    """Read a 3-D NIfTI label image as integers (int32, or int64 when a label needs it).

    Integer-typed files keep their exact values (no float32 round trip, which would merge labels
    above 2^24). Float-typed files must hold whole numbers to within ``LABEL_TOLERANCE`` (1e-3)
    and are rounded (0.999998 -> 1). Raises :class:`InputError` naming the file when it is
    unreadable (see :func:`load_image`), holds NaN, values that are not whole numbers, or
    negative labels (0 is the background region).
    """
    raw, affine = _read_nifti(path, name)
    path = Path(path)
    if raw.dtype == bool:
        raw = raw.astype(np.uint8)
    if np.issubdtype(raw.dtype, np.integer):
        labels = np.asarray(raw)
    else:
        values = np.asarray(raw, dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise InputError(f"{name} holds {int((~np.isfinite(values)).sum())} NaN or infinite voxels", path)
        rounded = np.round(values)
        off = np.abs(values - rounded)
        if float(off.max()) > LABEL_TOLERANCE:
            worst = values.flat[int(np.argmax(off))]
            raise InputError(f"{name} holds {int((off > LABEL_TOLERANCE).sum())} voxels that are not whole numbers "
                             f"(e.g. {worst:.6g}); labels must be integers (0 = background region)", path)
        if float(np.abs(rounded).max()) >= 2.0**63:
            raise InputError(f"{name} holds labels beyond the 64-bit integer range", path)
        labels = rounded.astype(np.int64)
    lo = int(labels.min())
    if lo < 0:
        raise InputError(f"{name} holds negative labels (min {lo}); labels must be >= 0 (0 = background region)", path)
    hi = int(labels.max())
    if hi > np.iinfo(np.int64).max:
        raise InputError(f"{name} holds labels beyond the 64-bit integer range (max {hi})", path)
    out_dtype = np.int32 if hi <= np.iinfo(np.int32).max else np.int64
    return Image(data=labels.astype(out_dtype, copy=False), affine=affine)
