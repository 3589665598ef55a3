"""Checks of output paths, made before any computation so that a bad path costs no time.

Each check raises :class:`InputError` whose source is the option the user typed (``--output``),
so the message reads ``"--output: out.txt: ..."``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from pvc_core.errors import InputError

#: File names :func:`pvc_core.io.save_image` writes (nibabel picks the format from the name).
NIFTI_SUFFIXES = (".nii.gz", ".nii")
#: The spellings nibabel writes (a mixed-case ``.Nii`` is refused by it).
NIFTI_WRITABLE_SUFFIXES = (".nii.gz", ".nii", ".NII.GZ", ".NII")


def is_nifti_name(path: str | os.PathLike) -> bool:
    """Whether a path's name ends in ``.nii`` or ``.nii.gz`` (any case): what nibabel writes as NIfTI."""
    return Path(path).name.lower().endswith(NIFTI_SUFFIXES)


def nifti_stem(path: str | os.PathLike) -> str:
    """A NIfTI file's name without ``.nii.gz`` or ``.nii`` (any case); other names without their suffix."""
    name = Path(path).name
    return name[: -len(".nii.gz")] if name.lower().endswith(".nii.gz") else Path(name).stem


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def require_nifti_output(path: str | os.PathLike, option: str = "--output",
                         inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Check that a NIfTI image can be written at ``path``; return it as a :class:`Path`.

    Refused: a name that does not end in ``.nii`` or ``.nii.gz`` (any case), an existing folder,
    a parent folder that does not exist or is not writable, and a path that is one of
    ``inputs`` (writing would replace an input). An existing file is replaced (atomically).
    """
    if not os.fspath(path):
        raise InputError("no file name given (empty path)", option)
    out = Path(path)
    if out.is_dir():
        raise InputError(f"{out} is an existing folder; give a file name inside it (e.g. {out / 'out.nii.gz'})", option)
    if not out.name.lower().endswith(NIFTI_SUFFIXES) or out.name.lower() in NIFTI_SUFFIXES:
        raise InputError(f"{out}: name the output file *.nii.gz or *.nii (NIfTI), "
                         f"not {out.name!r}", option)
    if not out.name.endswith(NIFTI_WRITABLE_SUFFIXES):
        raise InputError(f"{out}: write the suffix .nii.gz or .nii (all lower or all upper case): nibabel writes no "
                         "other", option)
    parent = out.parent
    if not parent.exists():
        raise InputError(f"{out}: folder {parent} does not exist; create it first", option)
    if not parent.is_dir():
        raise InputError(f"{out}: {parent} is a file, not a folder", option)
    if not _writable(parent):
        raise InputError(f"{out}: folder {parent} is not writable", option)
    for src in inputs:
        src_path = Path(src)
        if out.exists() and src_path.exists() and os.path.samefile(out, src_path):
            raise InputError(f"{out} is also an input ({src}); writing would replace it, give another name", option)
    return out


def require_output_folder(path: str | os.PathLike, option: str = "--output") -> Path:
    """Check that a new output folder can be created at ``path`` (or is empty); return it.

    Refused: an existing file, an existing folder that is not empty, and a path whose nearest
    existing ancestor is a file or not writable. Missing parent folders are created later by the
    writer, so they are accepted.
    """
    if not os.fspath(path):
        raise InputError("no folder name given (empty path)", option)
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is an existing file; the output is a folder, give a new folder name", option)
    if out.is_dir():
        if any(out.iterdir()):
            raise InputError(f"{out}: folder exists and is not empty; give a new or empty folder", option)
        if not _writable(out.parent):
            raise InputError(f"{out}: folder {out.parent} is not writable", option)
        return out
    ancestor = out.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"{out}: {ancestor} is a file, not a folder", option)
    if not _writable(ancestor):
        raise InputError(f"{out}: folder {ancestor} is not writable", option)
    return out
