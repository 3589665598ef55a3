"""Labelled voxel phantoms (e.g. XCAT): read, map labels to materials, crop to a bed position, resample.

Readers
- Interfile 3.3 label maps: a header (``.h33``, ``.hv``) with ``matrix size [1..3]`` (or
  ``number of slices``), ``scaling factor (mm/pixel) [1..3]`` (or ``slice thickness
  (pixels)``), ``number format``, ``number of bytes per pixel``, ``name of data file``,
  ``imagedata byte order`` (default BIGENDIAN, as the standard says) and ``data offset in bytes``;
  x runs fastest, then y, then slices. The pair may sit inside a ``.zip`` (as the mesh50 XCAT is
  distributed); it is then inflated as a stream, one slice at a time, never whole.
- NIfTI label maps, reoriented to RAS by their affine.

Only every ``step``-th voxel along each axis is kept (nearest-neighbour sampling needs no more
when the simulation voxel is ``step`` times larger), so the 650 MB mesh50 XCAT becomes a few MB.
The histogram of all labels is taken at full resolution, so that a label the table lacks is
found even where it is thin.

Placement on the simulation grid (per case, from the 'anatomy' stream): the bed position's centre
(``phantom.voxel.bed_centres_mm``) plus a uniform jitter gives the axial centre; the body's
transaxial bounding box over the field of view gives the transaxial centre; the phantom is scaled
by a factor drawn in ``scale_range`` and, where the body would not fit (``fit: scale``), shrunk
until it does. Labels are sampled nearest-neighbour, so mu takes exactly the table's values.
"""

from __future__ import annotations

import functools
import math
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from pvc_core.errors import InputError
from pvc_core.io.atomic import atomic_path
from pvc_core.geometry.blocks import sample_nearest
from pvc_core.specs import Grid, PhantomSettings

_NUMBER_FORMATS = {("unsigned integer", 1): "u1", ("unsigned integer", 2): "u2", ("unsigned integer", 4): "u4",
                   ("signed integer", 1): "i1", ("signed integer", 2): "i2", ("signed integer", 4): "i4",
                   ("float", 4): "f4", ("short float", 4): "f4", ("long float", 8): "f8", ("float", 8): "f8"}
_HEADER_SUFFIXES = (".h33", ".hv", ".hdr")
_SLICE_PIXEL_KEYS = ("slice thickness (pixels)", "centre-centre slice separation (pixels)")
_AXIS_OF = {"L": (0, -1), "R": (0, 1), "P": (1, -1), "A": (1, 1), "I": (2, -1), "S": (2, 1)}


# ----------------------------------------------------------------------------- Interfile
@dataclass(frozen=True)
class InterfileHeader:
    """What a label map's Interfile header says. ``shape`` and ``voxel_mm`` are in file order (x, y, slice)."""

    header: str
    data_name: str
    shape: tuple[int, int, int]
    voxel_mm: tuple[float, float, float]
    dtype: np.dtype
    offset: int
    zip_path: str | None = None
    zip_member: str | None = None


def _number(text: str, key: str, source: str) -> float:
    t = text.strip()
    m = re.fullmatch(r"([+-]?(?:\d+\.?\d*|\.\d+))([+-]\d+)", t)  # '+1.000000+00' (exponent without 'e')
    if m:
        t = f"{m.group(1)}e{m.group(2)}"
    try:
        return float(t)
    except ValueError:
        raise InputError(f"header key '{key}' is not a number: {text.strip()!r}", source) from None


def _parse_keys(text: str) -> dict[str, str]:
    keys = {}
    for line in text.splitlines():
        if ":=" not in line:
            continue
        k, v = line.split(":=", 1)
        k = re.sub(r"\s+", " ", k.strip().lstrip("!").strip().lower())
        keys[k] = v.strip()
    return keys


def parse_interfile_header(text: str, source: str, zip_path: str | None = None,
                           zip_member: str | None = None) -> InterfileHeader:
    """Parse an Interfile label-map header (``source`` names it in errors)."""
    keys = _parse_keys(text)

    def need(*names: str) -> tuple[str, str]:
        for n in names:
            if n in keys and keys[n] != "":
                return n, keys[n]
        raise InputError(f"header key '{names[0]}' is missing", source)

    shape = []
    for axis in (1, 2, 3):
        names = (f"matrix size [{axis}]",) + (("number of slices", "number of images") if axis == 3 else ())
        k, v = need(*names)
        n = _number(v, k, source)
        if n < 1 or n != int(n):
            raise InputError(f"header key '{k}' must be a positive integer, got {v!r}", source)
        shape.append(int(n))
    voxel = []
    for axis in (1, 2, 3):
        k = f"scaling factor (mm/pixel) [{axis}]"
        if k in keys:
            voxel.append(_number(keys[k], k, source))
        elif axis == 3 and any(s in keys for s in _SLICE_PIXEL_KEYS):
            k3 = next(s for s in _SLICE_PIXEL_KEYS if s in keys)  # in pixels of axis 1
            voxel.append(_number(keys[k3], k3, source) * voxel[0])
        else:
            raise InputError(f"header key '{k}' is missing", source)
    if min(voxel) <= 0:
        raise InputError(f"voxel sizes must be positive, got {voxel} mm", source)
    kf, fmt = need("number format")
    kb, nbytes_text = need("number of bytes per pixel")
    nbytes = int(_number(nbytes_text, kb, source))
    code = _NUMBER_FORMATS.get((fmt.lower(), nbytes))
    if code is None:
        raise InputError(f"unsupported number format {fmt!r} with {nbytes} bytes per pixel", source)
    order = keys.get("imagedata byte order", "BIGENDIAN").upper()
    if order not in ("LITTLEENDIAN", "BIGENDIAN"):
        raise InputError(f"header key 'imagedata byte order' must be LITTLEENDIAN or BIGENDIAN, got {order!r}", source)
    dtype = np.dtype(("<" if order == "LITTLEENDIAN" else ">") + code)
    _, data_name = need("name of data file")
    offset = int(_number(keys.get("data offset in bytes", "0"), "data offset in bytes", source))
    return InterfileHeader(source, data_name, tuple(shape), tuple(voxel), dtype, offset,  # type: ignore[arg-type]
                           zip_path, zip_member)


def read_interfile_header(path: str | os.PathLike) -> InterfileHeader:
    """Header of an Interfile label map: a header file, or a ``.zip`` holding exactly one."""
    path = Path(path)
    if not path.is_file():
        raise InputError("voxel phantom file not found", path)
    if path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as zf:
                members = [m for m in zf.namelist() if m.lower().endswith(_HEADER_SUFFIXES)
                           and not m.startswith("__MACOSX/") and not Path(m).name.startswith("._")]
                if len(members) != 1:
                    raise InputError(f"expected one Interfile header (.h33/.hv) in the archive, found {members}", path)
                text = zf.read(members[0]).decode("latin-1")
        except zipfile.BadZipFile:
            raise InputError("not a valid zip archive", path) from None
        return parse_interfile_header(text, f"{path}:{members[0]}", zip_path=str(path), zip_member=members[0])
    return parse_interfile_header(path.read_text(encoding="latin-1"), str(path))


def _data_location(h: InterfileHeader) -> tuple[str, int]:
    """(data path or zip member, size in bytes); raises InputError if missing or of the wrong size."""
    expected = h.offset + int(np.prod(h.shape)) * h.dtype.itemsize
    if h.zip_path is not None:
        member_dir = (h.zip_member or "").rpartition("/")[0]
        member = f"{member_dir}/{h.data_name}" if member_dir else h.data_name
        with zipfile.ZipFile(h.zip_path) as zf:
            try:
                size = zf.getinfo(member).file_size
            except KeyError:
                raise InputError(f"data file '{member}' named by the header is not in the archive", h.header) from None
        where = member
    else:
        data = Path(h.header).parent / h.data_name
        if not data.is_file():
            raise InputError(f"data file '{data}' named by the header is missing", h.header)
        size, where = data.stat().st_size, str(data)
    if size != expected:
        nx, ny, nz = h.shape
        raise InputError(f"header says {nx}x{ny}x{nz} voxels of {h.dtype.itemsize} bytes "
                         f"({expected} bytes with offset) but '{Path(where).name}' holds {size} bytes", h.header)
    return where, size


def write_interfile_labels(header_path: str | os.PathLike, labels: np.ndarray, voxel_mm, dtype="<u2") -> Path:
    """Write a label map (indexed x, y, slice) as an Interfile pair ``name.h33`` + ``name.i33``."""
    header_path = Path(header_path)
    arr = np.asarray(labels)
    dt = np.dtype(dtype)
    data_path = header_path.with_suffix(".i33")
    with atomic_path(data_path, replace=True) as tmp:
        np.ascontiguousarray(arr.transpose(2, 1, 0)).astype(dt).tofile(tmp)
    fmt = {"u": "unsigned integer", "i": "signed integer", "f": "float"}[dt.kind]
    big = dt.byteorder == ">" or (dt.byteorder == "=" and not np.little_endian)
    vx = np.broadcast_to(np.asarray(voxel_mm, float), (3,))
    with atomic_path(header_path, replace=True) as tmp:
        tmp.write_text(
            "!INTERFILE :=\n"
            f"!name of data file := {data_path.name}\n"
            f"imagedata byte order := {'BIGENDIAN' if big else 'LITTLEENDIAN'}\n"
            f"!number format := {fmt}\n!number of bytes per pixel := {dt.itemsize}\n"
            + "".join(f"!matrix size [{i + 1}] := {n}\n" for i, n in enumerate(arr.shape))
            + "".join(f"scaling factor (mm/pixel) [{i + 1}] := {v:.6f}\n" for i, v in enumerate(vx))
            + "!data offset in bytes := 0\n!END OF INTERFILE :=\n")
    return header_path


# ----------------------------------------------------------------------------- label volumes
@dataclass(frozen=True)
class LabelVolume:
    """A (sub-sampled) label map in RAS order.

    ``data[i, j, k]`` is the label at ``origin_mm + (i, j, k) * voxel_mm`` (mm, RAS), where the
    origin of the full-resolution map is the centre of its (right-most, anterior-most ...) first
    voxel in RAS order: axis 2 = 0 is the centre of the most inferior slice. ``counts[label]`` is
    the number of full-resolution voxels of each label.
    """

    data: np.ndarray
    voxel_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    full_shape: tuple[int, int, int]
    counts: np.ndarray
    source: str


def _orientation(orientation: str) -> tuple[tuple[int, int], ...]:
    o = orientation.upper()
    if len(o) != 3 or any(c not in _AXIS_OF for c in o) or sorted(_AXIS_OF[c][0] for c in o) != [0, 1, 2]:
        raise InputError(f"orientation {orientation!r} must name one of L/R, A/P, S/I per file axis, e.g. LPS",
                         "phantom.voxel.orientation")
    return tuple(_AXIS_OF[c] for c in o)


def _keep(n: int, sign: int, step: int) -> np.ndarray:
    """File indices kept along an axis of ``n`` voxels: RAS index r = (i or n-1-i) with r % step == step // 2."""
    i = np.arange(n)
    r = i if sign > 0 else n - 1 - i
    return i[(r % step) == step // 2]


def load_label_volume(path: str | os.PathLike, orientation: str = "LPS",
                      step: tuple[int, int, int] = (1, 1, 1)) -> LabelVolume:
    """Read a label map (Interfile, Interfile in a zip, or NIfTI) in RAS order, keeping every ``step``-th voxel.

    ``step`` is per RAS axis. Results are cached per (file, modification time, orientation, step).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError("voxel phantom file not found", p)
    st = p.stat()
    return _load_cached(str(p.resolve()), st.st_mtime_ns, st.st_size, orientation.upper(), tuple(int(s) for s in step))


@functools.lru_cache(maxsize=2)
def _load_cached(path: str, mtime_ns: int, size: int, orientation: str, step: tuple[int, int, int]) -> LabelVolume:
    name = path.lower()
    if name.endswith((".nii", ".nii.gz")):
        return _load_nifti(path, step)
    return _load_interfile(read_interfile_header(path), orientation, step)


def _load_interfile(h: InterfileHeader, orientation: str, step: tuple[int, int, int]) -> LabelVolume:
    axes = _orientation(orientation)
    where, _ = _data_location(h)
    nx, ny, nz = h.shape
    file_step = [step[a] for a, _ in axes]
    keep = [_keep(n, s, st) for n, (_, s), st in zip(h.shape, axes, file_step)]
    keep_slices = set(keep[2].tolist())
    slice_bytes = nx * ny * h.dtype.itemsize
    counts = np.zeros(1, dtype=np.int64)
    planes = []

    def take(raw: bytes) -> np.ndarray:
        nonlocal counts
        plane = np.frombuffer(raw, dtype=h.dtype).reshape(ny, nx)
        if h.dtype.kind == "f":
            if not np.all(plane == np.round(plane)):
                raise InputError("label map holds non-integer values", h.header)
            plane = plane.astype(np.int64)
        if plane.min() < 0:
            raise InputError("label map holds negative labels", h.header)
        c = np.bincount(plane.ravel().astype(np.int64))
        if c.size > counts.size:
            c[: counts.size] += counts
            counts = c
        else:
            counts[: c.size] += c
        return plane

    if h.zip_path is not None:
        with zipfile.ZipFile(h.zip_path) as zf, zf.open(where) as f:
            f.read(h.offset)
            for s in range(nz):
                raw = f.read(slice_bytes)
                plane = take(raw)
                if s in keep_slices:
                    planes.append(plane[np.ix_(keep[1], keep[0])].T.copy())
    else:
        mm = np.memmap(where, dtype=h.dtype, mode="r", offset=h.offset, shape=(nz, ny, nx))
        for s in range(nz):
            plane = take(mm[s].tobytes())
            if s in keep_slices:
                planes.append(plane[np.ix_(keep[1], keep[0])].T.copy())
        del mm
    data = np.stack(planes, axis=2)  # file order (x, y, slice), sub-sampled
    return _to_ras(data, axes, h.voxel_mm, h.shape, file_step, counts, h.header)


def _to_ras(data: np.ndarray, axes, voxel_file, shape_file, step_file, counts, source) -> LabelVolume:
    for a, (_, sign) in enumerate(axes):
        if sign < 0:
            data = np.flip(data, axis=a)
    order = [None, None, None]
    for a, (ras, _) in enumerate(axes):
        order[ras] = a
    data = np.ascontiguousarray(data.transpose(order))
    if counts.size > 256:
        big = np.flatnonzero(counts[256:]) + 256
        raise InputError(f"label map holds labels above 255 ({big[:5].tolist()}); renumber them", source)
    voxel = tuple(float(voxel_file[a] * step_file[a]) for a in order)
    origin = tuple(float(voxel_file[a] * (step_file[a] // 2)) for a in order)
    full = tuple(int(shape_file[a]) for a in order)
    return LabelVolume(data.astype(np.uint8), voxel, origin, full, counts, str(source))  # type: ignore[arg-type]


def _load_nifti(path: str, step: tuple[int, int, int]) -> LabelVolume:
    try:
        img = nib.as_closest_canonical(nib.load(path))
        data = np.asanyarray(img.dataobj)
    except Exception as err:  # nibabel raises many types for corrupt files
        raise InputError(f"cannot read the label map as NIfTI ({type(err).__name__}: {err})", path) from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(f"label map must be 3-D, got shape {data.shape}", path)
    if data.dtype.kind == "f":
        if not np.all(data == np.round(data)):
            raise InputError("label map holds non-integer values", path)
    data = data.astype(np.int64)
    if data.min() < 0:
        raise InputError("label map holds negative labels", path)
    counts = np.bincount(data.ravel())
    voxel = tuple(float(v) for v in img.header.get_zooms()[:3])
    sub = data[step[0] // 2::step[0], step[1] // 2::step[1], step[2] // 2::step[2]]
    axes = ((0, 1), (1, 1), (2, 1))
    return _to_ras(sub, axes, voxel, data.shape, step, counts, path)


# ----------------------------------------------------------------------------- placement on the grid
@dataclass
class VoxelBody:
    """A voxel phantom placed on the simulation grid."""

    labels: np.ndarray  # uint8, the phantom's own labels
    label_materials: dict[int, str]
    meta: dict


def label_map_header(path: str | os.PathLike) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    """(shape, voxel size mm) of a label map in file order, read from its header only."""
    p = str(path).lower()
    if p.endswith((".nii", ".nii.gz")):
        img = nib.load(str(path))
        shape, zooms = img.shape[:3], img.header.get_zooms()[:3]
        return tuple(int(n) for n in shape), tuple(float(v) for v in zooms)  # type: ignore[return-value]
    h = read_interfile_header(path)
    return h.shape, h.voxel_mm


def build_voxel_body(grid: Grid, settings: PhantomSettings, bed: str, offset_mm: float, scale: float) -> VoxelBody:
    """Place the configured voxel phantom for bed position ``bed`` on ``grid``.

    ``offset_mm`` shifts the axial centre (mm on the grid), ``scale`` is the isotropic scale
    factor before any fit. Raises :class:`InputError` for a label the table lacks, an empty body
    in the field of view, or (``fit: error``) a body wider than the field of view.
    """
    vs = settings.voxel
    path = str(vs.path)
    _, src_voxel = label_map_header(path)
    max_scale = max(vs.scale_range[1], scale)
    step = tuple(max(1, int(math.floor(grid.voxel_mm / (min(src_voxel) * max_scale) + 1e-9))) for _ in range(3))
    vol = load_label_volume(path, vs.orientation, step)  # type: ignore[arg-type]
    present = [int(lab) for lab in np.flatnonzero(vol.counts)]
    missing = [lab for lab in present if lab not in vs.labels]
    if missing:
        raise InputError(f"label(s) {missing} of the map have no material in phantom.voxel.labels", path)
    table = {lab: vs.labels[lab] for lab in present}
    outside = np.array([vs.labels.get(i, "outside") == "outside" for i in range(256)])
    body_src = ~outside[vol.data]

    z_centre = vs.bed_centres_mm[bed] + offset_mm / scale
    half = grid.fov_mm / 2.0
    room = half - settings.body_margin_mm
    zc_idx = (np.arange(vol.data.shape[2]) * vol.voxel_mm[2] + vol.origin_mm[2])
    fit_scale = 1.0
    for _ in range(8):
        s = scale * fit_scale
        z_slab = (zc_idx >= z_centre - half / s) & (zc_idx <= z_centre + half / s)
        slab = body_src[:, :, z_slab]
        if not slab.any():
            raise InputError(f"no body voxel within the field of view of bed position '{bed}' "
                             f"(centre {z_centre:.0f} mm)", f"phantom.voxel.bed_centres_mm.{bed}")
        ext = []
        for axis in (0, 1):
            idx = np.flatnonzero(slab.any(axis=tuple(a for a in (0, 1, 2) if a != axis)))
            lo, hi = (vol.origin_mm[axis] + idx[[0, -1]] * vol.voxel_mm[axis])
            ext.append((lo - vol.voxel_mm[axis] / 2.0, hi + vol.voxel_mm[axis] / 2.0))
        width = max((hi - lo) / 2.0 for lo, hi in ext)
        if width * s <= room + 1e-9:
            break
        if vs.fit == "error":
            raise InputError(f"the body is {2 * width * s:.0f} mm wide but the field of view leaves "
                             f"{2 * room:.0f} mm; lower the scale or use fit: scale", "phantom.voxel.fit")
        if vs.fit == "crop":
            break
        fit_scale *= room / (width * s)
    s = scale * fit_scale
    centre = [(lo + hi) / 2.0 for lo, hi in ext] + [z_centre]
    c = grid.centres_mm()
    pts = [centre[a] + c / s for a in range(3)]
    labels = sample_nearest(vol.data, vol.voxel_mm, vol.origin_mm, *pts, fill=_outside_label(vs.labels))
    meta = {"voxel_phantom": path, "scale": float(scale), "lateral_fit_scale": float(fit_scale),
            "phantom_centre_mm": [float(v) for v in centre], "sampling_step": list(step),
            "label_voxel_counts": {str(k): int(vol.counts[k]) for k in present}}
    return VoxelBody(labels.astype(np.uint8), table, meta)


def _outside_label(labels: dict[int, str]) -> int:
    outs = sorted(k for k, m in labels.items() if m == "outside")
    if not outs:
        raise InputError("no label is mapped to 'outside' (the air around the body)", "phantom.voxel.labels")
    return outs[0]
