"""Training cases on disk, normalised once, as memory-mappable ``.npy`` arrays.

Training at the paper's scale (9,000 training cases of 128^3) cannot hold the cases in memory
(144 GiB as float32), and decompressing a NIfTI file for every sample would keep a GPU waiting.
So the first time a training uses a case, :func:`prepare_cases` reads its (SPECT, truth) NIfTI
pair once and writes, into a cache folder:

* ``<stem>.input.npy``: SPECT / max(SPECT), float32, uncompressed (``np.load(mmap_mode='r')``
  then reads only what a sample needs);
* ``<stem>.target.npy``: truth / max(SPECT), float32 (the same scale; see
  :mod:`pvc_core.training.normalisation`);
* ``<stem>.mu.npy`` (only for a pair with an attenuation map, the CT channel): mu / mu of water
  at 208 keV, float32 (:func:`~pvc_core.training.normalisation.attenuation_input`);
* ``<stem>.foreground.npy``: the voxel indices ``(N, 3)`` where the normalised input exceeds
  :data:`FOREGROUND_THRESHOLD`, for drawing patches around activity without reading the case;
* ``<stem>.json``, written last: what the arrays depend on (both source paths with their size and
  modification time in ns, the normalisation, the threshold, the cache format) and the case's
  shape and scale.

``<stem>`` is ``<case id>-<hash of both source paths>``, so that cases of different datasets or
runs may share one folder. A later training reuses an entry whose record matches the sources
now on disk and whose arrays have the recorded shape; anything else (a rewritten NIfTI file, a
changed normalisation, a missing or truncated array) is written again. Every file is written
under a unique temporary name and renamed into place, so trainings that share the folder never
see a half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pvc_core.errors import InputError
from pvc_core.io import load_image
from pvc_core.io.atomic import atomic_path
from pvc_core.training.normalisation import attenuation_input, input_scale

#: Identifies a cache record; bump ``CACHE_VERSION`` when the layout or the arrays change.
CACHE_FORMAT = "dlpvc-training-cache"
CACHE_VERSION = 1
#: What the arrays are divided by (recorded; a different rule would be a different cache).
NORMALISATION = "input and truth divided by the input maximum"
#: Normalised input value above which a voxel counts as foreground for patch sampling.
FOREGROUND_THRESHOLD = 0.05

Pair = (tuple[str | os.PathLike, str | os.PathLike] | tuple[str, str | os.PathLike, str | os.PathLike]
        | tuple[str, str | os.PathLike, str | os.PathLike, str | os.PathLike])

__all__ = ["CACHE_FORMAT", "CACHE_VERSION", "FOREGROUND_THRESHOLD", "NORMALISATION", "CachedCase", "Pair",
           "case_id_of", "prepare_cases", "source_record"]


@dataclass(frozen=True)
class CachedCase:
    """One normalised case in the cache: where its arrays are and what they hold.

    ``shape`` is the volume's shape (voxels, unpadded); ``scale`` the input maximum (MBq/mL)
    that both arrays were divided by; ``sources`` the ``(input, truth)`` NIfTI paths;
    ``fingerprint`` a hash of what the arrays depend on (sources with size and modification
    time, normalisation, cache format), which changes whenever the entry would be rewritten;
    ``mu_file`` the attenuation channel's array, ``None`` for a pair without an attenuation map.
    """

    case_id: str
    input_file: Path
    target_file: Path
    foreground_file: Path
    shape: tuple[int, int, int]
    scale: float
    sources: tuple[str, str]
    fingerprint: str
    mu_file: Path | None = None

    def load(self, mmap: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``(input, target)`` arrays, memory-mapped read-only by default.

        Raises :class:`InputError` naming the file when an array cannot be read.
        """
        return _load_npy(self.input_file, mmap), _load_npy(self.target_file, mmap)

    def load_mu(self, mmap: bool = True) -> np.ndarray | None:
        """The attenuation channel (mu / mu of water), memory-mapped; ``None`` without one."""
        return None if self.mu_file is None else _load_npy(self.mu_file, mmap)

    def foreground(self) -> np.ndarray:
        """The ``(N, 3)`` foreground voxel indices (memory-mapped)."""
        return _load_npy(self.foreground_file, True)


def case_id_of(path: str | os.PathLike) -> str:
    """A readable case identifier from a file path.

    From the file upwards, the first path component that matches ``case[_-]?<digits>`` gives it
    (``.../case_0007/spect.nii.gz`` -> ``case_0007``); failing that, the first all-digit
    component (the pipeline's ``cases/00017/spect_RR_n.nii.gz`` -> ``00017``); failing that, the
    file name without ``.nii``/``.nii.gz``.
    """
    p = Path(path)
    stem = re.sub(r"\.nii(\.gz)?$", "", p.name)
    parts = (stem, *(q.name for q in p.parents))
    for part in parts:
        m = re.search(r"case[_-]?\d+", part, re.IGNORECASE)
        if m:
            return m.group(0)
    for part in parts:
        if part.isdigit():
            return part
    return stem


def source_record(path: str | os.PathLike) -> dict:
    """``{'path', 'size', 'mtime_ns'}`` of a source file; :class:`InputError` when it is missing."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as err:
        raise InputError(f"training image not found ({err.strerror})", path) from None
    return {"path": str(path.resolve()), "size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def prepare_cases(pairs: Sequence[Pair], cache_dir: str | os.PathLike,
                  log: Callable[[str], object] | None = None) -> list[CachedCase]:
    """The cache entries of ``(input, truth)`` or ``(case_id, input, truth)`` NIfTI pairs, or of
    ``(case_id, input, truth, mu)`` with the attenuation map (1/cm at 208 keV) for the CT channel.

    Entries that are current are reused; the others are written (each case read once, so memory
    holds one case at a time). ``log`` gets one line with the counts. Raises :class:`InputError`
    naming the file when a pair is malformed, a file is missing or unreadable, the shapes differ
    or an input holds no positive value (it cannot be normalised).
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cases, written = [], 0
    for pair in pairs:
        cid, in_path, truth_path, mu_path = _unpack(pair)
        sources = {"input": source_record(in_path), "truth": source_record(truth_path)}
        if mu_path is not None:
            sources["attenuation"] = source_record(mu_path)
        stem = f"{_safe(cid)}-{_digest(*(s['path'] for s in sources.values()))}"
        case = _current_entry(cache_dir, stem, cid, sources)
        if case is None:
            case = _write_entry(cache_dir, stem, cid, sources, in_path, truth_path, mu_path)
            written += 1
        cases.append(case)
    if log is not None:
        log(f"training cache {cache_dir}: {len(cases) - written} cases reused, {written} written")
    return cases


def _unpack(pair: Pair) -> tuple[str, str, str, str | None]:
    mu_path = None
    if len(pair) == 4:
        cid, in_path, truth_path, mu_path = pair
        mu_path = str(mu_path)
    elif len(pair) == 3:
        cid, in_path, truth_path = pair
    elif len(pair) == 2:
        in_path, truth_path = pair
        cid = case_id_of(in_path)
    else:
        raise InputError(f"a training pair must be (input, truth), (case_id, input, truth) or "
                         f"(case_id, input, truth, mu), got {pair!r}")
    return str(cid), str(in_path), str(truth_path), mu_path


def _safe(case_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", case_id)[:64] or "case"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def _files(cache_dir: Path, stem: str) -> dict[str, Path]:
    return {k: cache_dir / f"{stem}.{k}.npy" for k in ("input", "target", "foreground", "mu")} | {
        "record": cache_dir / f"{stem}.json"}


def _dependencies(sources: dict) -> dict:
    return {"format": CACHE_FORMAT, "format_version": CACHE_VERSION, "normalisation": NORMALISATION,
            "foreground_threshold": FOREGROUND_THRESHOLD, "sources": sources}


def _case(cache_dir: Path, stem: str, cid: str, sources: dict, shape: Sequence[int], scale: float) -> CachedCase:
    f = _files(cache_dir, stem)
    digest = hashlib.sha256(json.dumps(_dependencies(sources), sort_keys=True).encode()).hexdigest()[:16]
    return CachedCase(cid, f["input"], f["target"], f["foreground"], tuple(int(n) for n in shape), float(scale),
                      (sources["input"]["path"], sources["truth"]["path"]), digest,
                      f["mu"] if "attenuation" in sources else None)


def _current_entry(cache_dir: Path, stem: str, cid: str, sources: dict) -> CachedCase | None:
    """The entry if its record matches ``sources`` and its arrays have the recorded shapes, else None."""
    f = _files(cache_dir, stem)
    try:
        record = json.loads(f["record"].read_text())
        shape = tuple(int(n) for n in record["shape"])
        scale = float(record["scale"])
        if {k: record.get(k) for k in _dependencies(sources)} != _dependencies(sources):
            return None
        n_fg = int(record["n_foreground"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no entry yet, or an unreadable record: write it again
    expected = {"input": (shape, np.float32), "target": (shape, np.float32), "foreground": ((n_fg, 3), None)}
    if "attenuation" in sources:
        expected["mu"] = (shape, np.float32)
    for key, (want_shape, want_dtype) in expected.items():
        try:
            arr = np.load(f[key], mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return None
        if arr.shape != want_shape or (want_dtype is not None and arr.dtype != want_dtype):
            return None
        if arr.nbytes and f[key].stat().st_size < arr.nbytes:
            return None  # truncated
        del arr
    return _case(cache_dir, stem, cid, sources, shape, scale)


def _write_entry(cache_dir: Path, stem: str, cid: str, sources: dict, in_path: str, truth_path: str,
                 mu_path: str | None) -> CachedCase:
    spect = load_image(in_path, name="SPECT input").data
    truth = load_image(truth_path, name="true activity").data
    if spect.shape != truth.shape:
        raise InputError(f"shape {truth.shape} differs from its input {in_path} {spect.shape}", truth_path)
    scale = input_scale(spect)
    if scale <= 0:
        raise InputError("input holds no positive value; it cannot be normalised by its maximum", in_path)
    x = (spect / np.float32(scale)).astype(np.float32, copy=False)
    del spect
    y = (truth / np.float32(scale)).astype(np.float32, copy=False)
    del truth
    index_dtype = np.int16 if max(x.shape) < 2 ** 15 else np.int32
    fg = np.argwhere(x > FOREGROUND_THRESHOLD).astype(index_dtype)
    arrays = {"input": x, "target": y, "foreground": fg}
    if mu_path is not None:
        mu = load_image(mu_path, name="attenuation map").data
        if mu.shape != x.shape:
            raise InputError(f"shape {mu.shape} differs from its input {in_path} {x.shape}", mu_path)
        try:
            arrays["mu"] = attenuation_input(mu)
        except InputError as err:
            raise InputError(err.problem, mu_path) from None
    f = _files(cache_dir, stem)
    for key, arr in arrays.items():
        _atomic_write(f[key], lambda fh, a=arr: np.save(fh, a, allow_pickle=False))
    record = {**_dependencies(sources), "case_id": cid, "shape": list(x.shape), "scale": scale,
              "n_foreground": int(len(fg)), "arrays": {k: f[k].name for k in arrays}}
    _atomic_write(f["record"], lambda fh: fh.write((json.dumps(record, indent=2) + "\n").encode()))
    return _case(cache_dir, stem, cid, sources, x.shape, scale)


def _atomic_write(path: Path, write: Callable) -> None:
    """Write through ``write(binary file)`` to a new temporary file (:func:`pvc_core.io.atomic.atomic_path`),
    then rename it to ``path``."""
    with atomic_path(path, replace=True) as tmp, open(tmp, "xb") as fh:
        write(fh)


def _load_npy(path: Path, mmap: bool) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read cached training array ({type(err).__name__}: {err}); delete the "
                         f"cache folder's entry to have it written again".splitlines()[0], path) from None
