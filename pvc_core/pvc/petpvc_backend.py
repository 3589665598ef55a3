"""Run PETPVC's own binaries for iterative Yang (the ``pvc.backend: petpvc`` option).

:func:`pvc_core.pvc.iterative_yang` reproduces PETPVC to the bit and needs nothing but pip; this
backend is for users who want the original program in the loop. It writes the image and the mask
as NIfTI to a temporary folder, runs

    pvc_make4d -i labels.nii.gz -o mask4d.nii.gz            (3-D label maps only)
    petpvc -i input.nii.gz -m mask4d.nii.gz -o iy.nii.gz --pvc IY -x FX -y FY -z FZ -n N

and reads the result back. The binaries come from conda-forge's ``petpvc`` package
(``conda env create -f envs/petpvc.yaml``, or ``snakemake --use-conda``). Unlike the Python
implementation, PETPVC writes huge values or NaN where the blurred pseudo-image is 0 (see
:mod:`pvc_core.pvc.iterative_yang`).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from pvc_core.errors import InputError
from pvc_core.pvc._checks import image_3d, iteration_count, three_numbers

_INSTALL_HINT = ("install PETPVC with `conda env create -f envs/petpvc.yaml` (conda-forge package petpvc) and "
                 "activate that environment, or use pvc.backend: python (pvc_core.pvc.iterative_yang, "
                 "identical results)")


class PetpvcNotFoundError(RuntimeError):
    """A PETPVC binary is not on PATH."""


class PetpvcFailedError(RuntimeError):
    """A PETPVC binary ran but failed (non-zero exit or no output file)."""


def find_petpvc(binary: str = "petpvc") -> str:
    """Full path of a PETPVC binary on PATH; :class:`PetpvcNotFoundError` with the fix if missing."""
    path = shutil.which(binary)
    if path is None:
        raise PetpvcNotFoundError(f"PETPVC binary '{binary}' not found on PATH; {_INSTALL_HINT}")
    return path


def run_petpvc_iy(image: np.ndarray, labels: np.ndarray, fwhm_mm: float | Sequence[float],
                  voxel_size_mm: Sequence[float], iterations: int = 10, *, workdir: str | Path | None = None,
                  timeout_s: float | None = 3600.0) -> np.ndarray:
    """Iterative Yang with PETPVC's ``petpvc --pvc IY``; same arguments as :func:`iterative_yang`.

    Parameters
    ----------
    image, labels, fwhm_mm, voxel_size_mm, iterations:
        As for :func:`pvc_core.pvc.iterative_yang` (3-D label map with 0 = background region, or
        a 4-D mask (x, y, z, regions) with weights in [0, 1]; FWHM in mm per array axis 0, 1, 2).
    workdir:
        Folder to keep PETPVC's input and output files in (default: a temporary folder, deleted).
    timeout_s:
        Wall-clock limit per binary call in seconds.

    Returns
    -------
    PETPVC's output image, float32.

    Raises
    ------
    PetpvcNotFoundError
        ``petpvc`` (or, for 3-D labels, ``pvc_make4d``) is not on PATH; the message says how to
        install it.
    PetpvcFailedError
        A binary failed; the message holds the end of its error output.
    InputError
        Bad image, labels, FWHM, voxel size or iterations.
    """
    lab = np.asarray(labels)
    petpvc = find_petpvc("petpvc")
    make4d = find_petpvc("pvc_make4d") if lab.ndim == 3 else None
    img = image_3d(image)
    fwhm = three_numbers(fwhm_mm, "fwhm_mm", allow_zero=True)
    voxel = three_numbers(voxel_size_mm, "voxel_size_mm", allow_zero=False)
    n_iter = iteration_count(iterations)
    if lab.ndim not in (3, 4) or lab.shape[:3] != img.shape:
        raise InputError(f"labels shape {lab.shape} does not match image shape {img.shape} (3-D, or 4-D + regions)")
    affine = np.diag([*voxel, 1.0])

    with tempfile.TemporaryDirectory(prefix="petpvc_") as tmp:
        folder = Path(workdir) if workdir is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        _save(folder / "input.nii.gz", img.astype(np.float32), affine)
        mask4d = folder / "mask4d.nii.gz"
        if lab.ndim == 3:
            if not np.issubdtype(lab.dtype, np.integer) and np.any(lab != np.round(lab)):
                raise InputError("3-D labels must be whole numbers (one region per value)")
            if lab.min() < 0 or lab.max() > np.iinfo(np.int32).max:
                raise InputError("3-D labels must be >= 0 (0 = background region)")
            _save(folder / "labels.nii.gz", lab.astype(np.int32), affine)
            _run([make4d, "-i", str(folder / "labels.nii.gz"), "-o", str(mask4d)], timeout_s)
        else:
            _save(mask4d, lab.astype(np.float32), affine)
        out = folder / "iy.nii.gz"
        _run([petpvc, "-i", str(folder / "input.nii.gz"), "-m", str(mask4d), "-o", str(out), "--pvc", "IY",
              "-x", repr(fwhm[0]), "-y", repr(fwhm[1]), "-z", repr(fwhm[2]), "-n", str(n_iter)], timeout_s)
        if not out.exists():
            raise PetpvcFailedError(f"petpvc exited without writing {out}")
        return np.asarray(nib.load(str(out)).dataobj, dtype=np.float32)


def _save(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    nib.save(img, str(path))


def _run(cmd: list[str], timeout_s: float | None) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise PetpvcFailedError(f"{Path(cmd[0]).name} did not finish within {timeout_s} s") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
        raise PetpvcFailedError(f"{Path(cmd[0]).name} failed with exit code {proc.returncode}: " + " | ".join(tail))
