"""The one way dlpvc writes a file or a folder a user may rely on: whole, or not at all.

:func:`atomic_path` hands out a temporary name in the target's own folder (so the final rename
stays on one file system and is atomic), and on success fsyncs what was written, renames it onto
the target and fsyncs the folder. On any error, and on SIGTERM or SIGINT once the command has
called :func:`remove_pending` from its handler, the temporary is removed: a reader sees the old
state or the new one, never half a file, and a later folder scan never finds a stray temporary.

Temporaries are hidden names that keep the target's suffix (nibabel picks the format from it),
``.dlpvc-tmp-<pid>-<n>-<token>.<name>``: :func:`is_temporary` recognises them so that folder scans
skip them.

Why hand-written: the standard library has ``os.replace`` but no atomic writer, and the usual
third-party ones (``atomicwrites``, unmaintained) neither handle folders (a DICOM series) nor let
a signal handler clean up what is in flight.
"""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["TEMP_MARK", "atomic_path", "is_temporary", "pending", "remove_pending", "remove_path"]

#: Start of every temporary name (``.dlpvc-tmp-<pid>-<n>-<token>.<name>``).
TEMP_MARK = ".dlpvc-tmp-"

_counter = itertools.count()
_pending: dict[Path, None] = {}


def is_temporary(path: str | os.PathLike) -> bool:
    """Whether ``path``'s name is one of :func:`atomic_path`'s temporaries."""
    name = Path(path).name
    return name.startswith(TEMP_MARK)


def _temporary_name(target: Path, tag: str = "") -> Path:
    """A hidden name beside ``target``, unique across processes and hosts sharing a folder (pid,
    counter and a random token)."""
    return target.with_name(f"{TEMP_MARK}{tag}{os.getpid()}-{next(_counter)}-{secrets.token_hex(4)}.{target.name}")


def pending() -> list[Path]:
    """Temporaries in flight (written, not yet renamed or removed)."""
    return list(_pending)


def remove_path(path: Path) -> None:
    """Remove a file, link or folder (and what it holds); nothing happens when it is absent."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def remove_pending() -> None:
    """Remove every temporary in flight; call it from a signal handler before exiting."""
    for path in list(_pending):
        remove_path(path)
        _pending.pop(path, None)


def _fsync(path: Path) -> None:
    """Flush a file, or every file of a folder and the folder itself, to the disk."""
    paths = [path] if not path.is_dir() else [*(p for p in path.rglob("*") if p.is_file()), path]
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(target: str | os.PathLike, *, folder: bool = False, replace: bool = False) -> Iterator[Path]:
    """A temporary path to write instead of ``target``; renamed onto ``target`` when the block ends.

    ``folder=True``: the temporary is an empty folder that is created (a DICOM series); otherwise
    the block creates the file itself. ``target``'s folder must exist. An existing ``target`` is
    replaced only with ``replace=True`` (else :class:`FileExistsError`, and the temporary is
    removed); an existing target folder is moved aside and removed after the rename. An empty
    target folder counts as absent.
    """
    target = Path(target)
    tmp = _temporary_name(target)
    _pending[tmp] = None
    try:
        if folder:
            tmp.mkdir()
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{tmp}: nothing was written for {target}")
        _fsync(tmp)
        _commit(tmp, target, replace)
        _fsync_folder(target.parent)
    finally:
        if tmp.exists() or tmp.is_symlink():
            remove_path(tmp)
        _pending.pop(tmp, None)


def _commit(tmp: Path, target: Path, replace: bool) -> None:
    """Rename ``tmp`` onto ``target`` (see :func:`atomic_path` for when a target may be replaced)."""
    exists = target.exists() or target.is_symlink()
    if exists and target.is_dir() and not target.is_symlink() and not any(target.iterdir()):
        target.rmdir()
        exists = False
    if exists and not replace:
        raise FileExistsError(f"{target} exists")
    if exists and target.is_dir() and not target.is_symlink():
        aside = _temporary_name(target, "old-")
        _pending[aside] = None
        try:
            os.replace(target, aside)
            os.replace(tmp, target)
        finally:
            remove_path(aside)
            _pending.pop(aside, None)
        return
    os.replace(tmp, target)
