"""DICOM SPECT and CT series read into an :class:`~pvc_core.io.nifti.Image`, and SPECT written back.

Conventions
-----------
*Array layout.* ``data[c, r, k]`` is the pixel at column ``c``, row ``r`` of slice ``k``: the
pixel array of each slice is transposed and the slices are stacked on axis 2. For a multi-frame
file, frame ``k`` is slice ``k`` (the file's frame order is kept).

*Geometry.* DICOM patient coordinates are LPS (x to the patient's left, y posterior, z head). The
centre of pixel (row ``r``, column ``c``) of slice ``k`` lies at
``IPP_k + c * PixelSpacing[1] * rowdir + r * PixelSpacing[0] * coldir``, where
``ImageOrientationPatient = rowdir + coldir`` (``rowdir``: direction of increasing column index).
The LPS affine has columns ``rowdir * PixelSpacing[1]``, ``coldir * PixelSpacing[0]`` and the
slice step vector, and translation ``IPP_0``; :class:`Image` gets it in NIfTI RAS+ (mm), i.e.
left-multiplied by ``diag(-1, -1, 1, 1)``. Single-slice files are sorted along the slice normal
``rowdir x coldir`` and the step is ``(IPP_last - IPP_first) / (n - 1)``. A multi-frame file uses
per-frame ``PlanePositionSequence`` positions where present, else
``normal * SpacingBetweenSlices`` (``SliceThickness`` when absent; a negative spacing runs against
the normal). ``ImagePositionPatient`` / ``ImageOrientationPatient`` are looked up at the top level,
in the functional groups, then in ``DetectorInformationSequence`` (NM).

*Values.* Stored pixel value x ``RescaleSlope`` + ``RescaleIntercept`` (defaults 1 and 0), in
float64, then float32. SPECT (modality NM or PT) is returned in MBq/mL: the unit comes from
``Units`` (0054,1001), else from ``RealWorldValueMappingSequence`` (whose slope and intercept are
then used instead of the rescale ones), else from ``RescaleType`` (0028,1054). Bq/mL (``BQML``),
kBq/mL and MBq/mL are accepted; counts, no unit or any other unit are refused. CT is returned in
Hounsfield units.

*Writing.* :func:`write_spect_series` mirrors the input: one file per input dataset, each a copy
of the input with new, deterministic series and instance UIDs (same study and frame of
reference), values in Bq/mL stored as uint16 with a linear rescale slope, uncompressed Explicit VR
Little Endian.

Every problem with a user's file is an :class:`~pvc_core.errors.InputError` naming the path.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds

from pvc_core.errors import InputError
from pvc_core.io.outputs import is_nifti_name
from pvc_core.io.nifti import Image

#: Largest difference between direction cosines of two slices still read as the same orientation.
ORIENTATION_TOLERANCE = 1e-4

#: Largest relative difference between gaps of consecutive slices (1 %).
SPACING_TOLERANCE = 0.01

#: Largest component of a slice offset perpendicular to the slice normal, relative to the offset.
OBLIQUE_TOLERANCE = 1e-3

#: Activity-concentration units (as spelled in the header) -> factor to MBq/mL.
ACTIVITY_UNITS_TO_MBQ_ML = {
    "BQML": 1e-6, "Bq/ml": 1e-6, "Bq/mL": 1e-6, "BQ/ML": 1e-6,
    "kBq/ml": 1e-3, "kBq/mL": 1e-3, "KBQ/ML": 1e-3,
    "MBq/ml": 1.0, "MBq/mL": 1.0,
}

#: How many entries of a folder :func:`is_dicom_path` looks at before giving up.
_DICOM_PROBE_FILES = 32

#: SOP classes that tell the modality when the header has no ``Modality``.
_SOP_CLASS_MODALITY = {
    "1.2.840.10008.5.1.4.1.1.20": "NM",
    "1.2.840.10008.5.1.4.1.1.128": "PT",
    "1.2.840.10008.5.1.4.1.1.130": "PT",  # Enhanced PET
    "1.2.840.10008.5.1.4.1.1.2": "CT",
    "1.2.840.10008.5.1.4.1.1.2.1": "CT",  # Enhanced CT
}

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")

_HOW_TO_CALIBRATE = ("reconstruct with a camera calibration (sensitivity in cps/MBq, e.g. from a cylinder of "
                     "known activity, MIRD Pamphlet 26) so that the series stores Bq/mL, or convert it and give "
                     "a NIfTI in MBq/mL")

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

#: (unit as spelled in the header or None, slope, intercept) turning stored pixels into that unit.
_Scaling = tuple[str | None, float, float]


@dataclass
class DicomSeries:
    """A DICOM image series read as one 3-D :class:`Image`, with what is needed to write it back.

    Attributes
    ----------
    image:
        float32 values (SPECT: MBq/mL; CT: Hounsfield units) and the affine in mm, NIfTI RAS+.
    datasets:
        The pydicom datasets with pixel data, in slice order (one per file), or the one
        multi-frame dataset.
    files:
        The files the datasets were read from, in the same order.
    modality:
        ``"NM"``, ``"PT"`` or ``"CT"``.
    multiframe:
        Whether the series is one multi-frame file.
    unit:
        The unit as found in the header, e.g. ``"BQML"``, ``"Bq/ml"``, ``"HU"``.
    """

    image: Image
    datasets: list
    files: list[Path]
    modality: str
    multiframe: bool
    unit: str


# --------------------------------------------------------------------------------------- detection

def _has_dicom_preamble(path: Path) -> bool:
    """Whether bytes 128..131 of the file are ``b"DICM"`` (False when it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _is_uid(value) -> bool:
    text = str(value or "")
    return bool(text) and len(text) <= 64 and all(ch.isdigit() or ch == "." for ch in text)


def _looks_like_dicom(path: Path) -> bool:
    """A file with the DICOM preamble, or one pydicom reads (forced) as a dataset with a SOPClassUID."""
    if _has_dicom_preamble(path):
        return True
    try:
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except Exception:  # noqa: BLE001 - pydicom raises many types for foreign files
        return False
    return _is_uid(ds.get("SOPClassUID"))


def is_dicom_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a DICOM file or a folder holding at least one DICOM file.

    Cheap: NIfTI names (``.nii``, ``.nii.gz``) and missing paths are False without opening
    anything; a folder is probed through its first few files (preamble ``b"DICM"`` at byte 128,
    or a dataset with a ``SOPClassUID`` as pydicom reads it).
    """
    if not os.fspath(path):
        return False
    path = Path(path)
    if is_nifti_name(path) or not path.exists():
        return False
    if path.is_file():
        return _looks_like_dicom(path)
    if not path.is_dir():
        return False
    try:
        with os.scandir(path) as entries:
            probed = 0
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_file():
                    continue
                if is_nifti_name(Path(entry.name)):
                    continue
                if _looks_like_dicom(Path(entry.path)):
                    return True
                probed += 1
                if probed >= _DICOM_PROBE_FILES:
                    return False
    except OSError:
        return False
    return False


# ---------------------------------------------------------------------------------------- reading

def _dcmread(path: Path) -> Dataset | None:
    """The full dataset of a DICOM file, or None when pydicom cannot read it as DICOM.

    Files without the 128-byte preamble are accepted when pydicom (forced) finds a SOPClassUID;
    a missing transfer syntax is then taken from the encoding the file was read with.
    """
    try:
        return pydicom.dcmread(path)
    except InvalidDicomError:
        pass
    except Exception:  # noqa: BLE001 - pydicom raises many types for corrupt files
        return None
    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception:  # noqa: BLE001 - as above
        return None
    if not _is_uid(ds.get("SOPClassUID")):
        return None
    if "TransferSyntaxUID" not in ds.file_meta:
        implicit, _little = ds.original_encoding
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    return ds


def _has_pixels(ds: Dataset) -> bool:
    return any(keyword in ds for keyword in _PIXEL_KEYWORDS)


def _n_frames(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames") or 1))
    except (TypeError, ValueError):
        return 1


def _modality(ds: Dataset) -> str:
    modality = str(ds.get("Modality") or "").strip().upper()
    return modality or _SOP_CLASS_MODALITY.get(str(ds.get("SOPClassUID") or ""), "")


def _collect(path: str | os.PathLike, name: str) -> list[tuple[Path, Dataset]]:
    """The (file, dataset) pairs with pixel data at ``path`` (a file or a folder), unsorted.

    Raises :class:`InputError` for an empty or missing path, a file that is not DICOM or holds no
    pixel data, a folder without DICOM files or with several series.
    """
    if not os.fspath(path):
        raise InputError(f"no {name} given (empty path)")
    path = Path(path)
    if not path.exists():
        raise InputError(f"{name} not found", path)
    if path.is_file():
        ds = _dcmread(path)
        if ds is None:
            raise InputError(f"{name} is not a DICOM file (pydicom cannot read it)", path)
        if not _has_pixels(ds):
            raise InputError(f"{name} is a DICOM file without pixel data (not an image)", path)
        return [(path, ds)]
    if not path.is_dir():
        raise InputError(f"{name} is neither a file nor a folder", path)
    try:
        entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    except OSError as err:
        raise InputError(f"cannot list the {name} folder ({type(err).__name__}: {err})", path) from None
    files = [p for p in entries if p.is_file() and not is_nifti_name(p)]
    found: list[tuple[Path, Dataset]] = []
    n_dicom = 0
    for file in files:
        ds = _dcmread(file)
        if ds is None:
            continue
        n_dicom += 1
        if _has_pixels(ds):
            found.append((file, ds))
    if n_dicom == 0:
        n_sub = sum(1 for p in entries if p.is_dir())
        hint = (f" (it has {n_sub} sub-folder{'s' if n_sub != 1 else ''}; give the folder that holds the "
                "series' files)") if n_sub else ""
        raise InputError(f"no DICOM files in the {name} folder{hint}", path)
    if not found:
        raise InputError(f"the {n_dicom} DICOM file(s) in the {name} folder hold no pixel data (no image)", path)
    series: dict[str, list[Dataset]] = {}
    for _file, ds in found:
        series.setdefault(str(ds.get("SeriesInstanceUID") or ""), []).append(ds)
    if len(series) > 1:
        described = "; ".join(_describe_series(group) for group in list(series.values())[:5])
        more = ", ..." if len(series) > 5 else ""
        raise InputError(f"the {name} folder holds {len(series)} DICOM series ({described}{more}); "
                         "give a folder with one series", path)
    return found


def _describe_series(group: list[Dataset]) -> str:
    """``#7 SPECT recon (NM, 120 files)`` for the datasets of one series."""
    first = group[0]
    description = str(first.get("SeriesDescription") or "(no description)").strip()
    n = len(group)
    files = f"{n} file{'s' if n != 1 else ''}"
    return f"#{first.get('SeriesNumber', '?')} {description} ({_modality(first) or '?'}, {files})"


def _floats(value, n: int) -> np.ndarray | None:
    """``value`` as ``n`` finite floats, or None."""
    if value is None:
        return None
    try:
        seq = list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]
        out = np.asarray([float(v) for v in seq], dtype=float)
    except (TypeError, ValueError):
        return None
    if out.shape != (n,) or not np.all(np.isfinite(out)):
        return None
    return out


def _first_item(ds: Dataset, keyword: str) -> Dataset | None:
    seq = ds.get(keyword)
    if seq is None:
        return None
    try:
        return seq[0] if len(seq) else None
    except (TypeError, IndexError):
        return None


def _lookup(ds: Dataset, keyword: str, group: str | None) -> object | None:
    """A non-empty attribute at the top level, else in the shared, else the first per-frame functional
    group item's ``group`` sequence, else in ``DetectorInformationSequence`` (NM); None if absent."""
    places: list[Dataset | None] = [ds]
    if group is not None:
        for fg_keyword in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
            fg = _first_item(ds, fg_keyword)
            if fg is not None:
                places.append(_first_item(fg, group))
    places.append(_first_item(ds, "DetectorInformationSequence"))
    for place in places:
        value = place.get(keyword) if place is not None else None
        if value is not None and value != "" and not (isinstance(value, MultiValue) and len(value) == 0):
            return value
    return None


def _orientation(ds: Dataset, path: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Unit row and column direction cosines (LPS) of ``ImageOrientationPatient``."""
    iop = _floats(_lookup(ds, "ImageOrientationPatient", "PlaneOrientationSequence"), 6)
    if iop is None:
        raise InputError(f"{name} has no valid ImageOrientationPatient (6 direction cosines)", path)
    rowdir, coldir = iop[:3], iop[3:]
    n_row, n_col = np.linalg.norm(rowdir), np.linalg.norm(coldir)
    if n_row < 0.5 or n_col < 0.5 or abs(float(np.dot(rowdir, coldir))) > 1e-3 * n_row * n_col:
        raise InputError(f"{name} has an invalid ImageOrientationPatient {[round(float(v), 6) for v in iop]} "
                         "(row and column directions must be orthogonal unit vectors)", path)
    return rowdir / n_row, coldir / n_col


def _pixel_spacing(ds: Dataset, path: Path, name: str) -> np.ndarray:
    """``PixelSpacing`` (mm between rows, mm between columns), both > 0."""
    spacing = _floats(_lookup(ds, "PixelSpacing", "PixelMeasuresSequence"), 2)
    if spacing is None:
        raise InputError(f"{name} has no valid PixelSpacing", path)
    if np.any(spacing <= 0):
        raise InputError(f"{name} has PixelSpacing {spacing.tolist()} mm; both values must be > 0", path)
    return spacing


def _position(ds: Dataset, path: Path, name: str) -> np.ndarray:
    ipp = _floats(_lookup(ds, "ImagePositionPatient", "PlanePositionSequence"), 3)
    if ipp is None:
        raise InputError(f"{name} has no valid ImagePositionPatient", path)
    return ipp


def _slice_spacing(ds: Dataset, path: Path, name: str) -> float:
    """``SpacingBetweenSlices`` (sign kept), else ``SliceThickness``, in mm; non-zero."""
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        value = _floats(_lookup(ds, keyword, "PixelMeasuresSequence"), 1)
        if value is not None and value[0] != 0:
            return float(value[0])
    raise InputError(f"{name} has neither SpacingBetweenSlices nor SliceThickness; the slice spacing is unknown",
                     path)


def _stack_step(positions: np.ndarray, normal: np.ndarray, path: Path, name: str) -> np.ndarray:
    """The step vector between consecutive slice positions (n >= 2), after checking that the slices
    are distinct, monotonic and equally spaced along ``normal`` and not offset across it."""
    proj = positions @ normal
    gaps = np.diff(proj)
    if np.any(gaps == 0) or not (np.all(gaps > 0) or np.all(gaps < 0)):
        raise InputError(f"{name} has slices at the same position or out of order along the slice normal "
                         "(duplicate files, or several acquisitions in one folder)", path)
    size = np.abs(gaps)
    mean = float(size.mean())
    if float(np.max(np.abs(size - mean))) > SPACING_TOLERANCE * mean:
        raise InputError(f"inconsistent slice spacing in {name}: gaps between consecutive slices range from "
                         f"{float(size.min()):.4g} to {float(size.max()):.4g} mm (more than "
                         f"{SPACING_TOLERANCE:.0%} apart; a slice may be missing)", path)
    offsets = positions - positions[0]
    across = offsets - np.outer(offsets @ normal, normal)
    if np.any(np.linalg.norm(across, axis=1) > OBLIQUE_TOLERANCE * np.linalg.norm(offsets, axis=1) + 1e-9):
        raise InputError(f"{name} has slices offset across the slice normal (gantry tilt or an oblique stack); "
                         "resample it to an orthogonal grid first", path)
    return (positions[-1] - positions[0]) / (len(positions) - 1)


def _affine(rowdir: np.ndarray, coldir: np.ndarray, spacing: np.ndarray, step: np.ndarray,
            ipp0: np.ndarray) -> np.ndarray:
    """RAS+ affine (mm) of ``data[c, r, k]`` from LPS geometry (see the module docstring)."""
    lps = np.eye(4)
    lps[:3, 0] = rowdir * spacing[1]
    lps[:3, 1] = coldir * spacing[0]
    lps[:3, 2] = step
    lps[:3, 3] = ipp0
    return _LPS_TO_RAS @ lps


def _rescale(ds: Dataset) -> tuple[float, float]:
    """``RescaleSlope`` and ``RescaleIntercept`` (top level, else shared or first per-frame functional
    group), defaults 1 and 0; a slope of 0 (invalid) is read as 1."""
    slope = _floats(_lookup(ds, "RescaleSlope", "PixelValueTransformationSequence"), 1)
    intercept = _floats(_lookup(ds, "RescaleIntercept", "PixelValueTransformationSequence"), 1)
    slope_v = float(slope[0]) if slope is not None and slope[0] != 0 else 1.0
    return slope_v, float(intercept[0]) if intercept is not None else 0.0


def _rwvm_items(ds: Dataset) -> list[Dataset]:
    items = list(ds.get("RealWorldValueMappingSequence") or [])
    if not items:
        shared = _first_item(ds, "SharedFunctionalGroupsSequence")
        if shared is not None:
            items = list(shared.get("RealWorldValueMappingSequence") or [])
    return items


def _unit_and_scaling(ds: Dataset) -> _Scaling:
    """The value unit as spelled in the header (None if there is none) and the slope and intercept
    that turn stored pixel values into that unit (see the module docstring for the sources)."""
    slope, intercept = _rescale(ds)
    units = str(ds.get("Units") or "").strip()
    if units:
        return units, slope, intercept
    found: list[tuple[str, float, float]] = []
    for item in _rwvm_items(ds):
        code = _first_item(item, "MeasurementUnitsCodeSequence")
        unit = str(code.get("CodeValue") or "").strip() if code is not None else ""
        if not unit:
            continue
        s = _floats(item.get("RealWorldValueSlope"), 1)
        i = _floats(item.get("RealWorldValueIntercept"), 1)
        found.append((unit, float(s[0]) if s is not None else slope, float(i[0]) if i is not None else intercept))
    for entry in found:
        if entry[0] in ACTIVITY_UNITS_TO_MBQ_ML:
            return entry
    if found:
        return found[0]
    rescale_type = str(ds.get("RescaleType") or "").strip()
    if rescale_type and rescale_type.upper() != "US":
        return rescale_type, slope, intercept
    return None, slope, intercept


def _to_mbq_ml(unit: str | None, path: Path, name: str) -> float:
    """Factor from ``unit`` to MBq/mL, or :class:`InputError` for counts, no unit or another unit."""
    if unit is None:
        raise InputError(f"{name} has no activity unit (no Units (0054,1001), RealWorldValueMappingSequence or "
                         f"RescaleType); {_HOW_TO_CALIBRATE}", path)
    if unit in ACTIVITY_UNITS_TO_MBQ_ML:
        return ACTIVITY_UNITS_TO_MBQ_ML[unit]
    lowered = unit.lower()
    if "count" in lowered or "cnts" in lowered or lowered in ("cts", "cps"):
        raise InputError(f"{name} values are in counts ({unit!r}), not activity concentration; {_HOW_TO_CALIBRATE}",
                         path)
    raise InputError(f"{name} has values in {unit!r}; expected an activity concentration (Bq/mL as BQML, "
                     "kBq/mL or MBq/mL)", path)


def _pixels(ds: Dataset, path: Path, name: str) -> np.ndarray:
    """The pixel array as float64 (rows, cols) or (frames, rows, cols)."""
    try:
        arr = ds.pixel_array
    except Exception as err:  # noqa: BLE001 - pydicom and its decoders raise many types
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        text = " ".join(str(err).split())
        raise InputError(f"cannot decode the pixel data of {name} (transfer syntax {syntax}; "
                         f"{type(err).__name__}: {text})", path) from None
    arr = np.asarray(arr)
    if arr.ndim not in (2, 3) or np.iscomplexobj(arr):
        raise InputError(f"{name} has pixel data of shape {arr.shape}; expected one grey value per pixel", path)
    return arr.astype(np.float64)


def _read_single_slices(found: list[tuple[Path, Dataset]], path: Path, name: str
                        ) -> tuple[np.ndarray, np.ndarray, list[Path], list[Dataset], list[_Scaling]]:
    """Stack single-slice files: (pixels as data[c, r, k], RAS affine, files, datasets, per-slice
    (unit, slope, intercept)), sorted along the slice normal."""
    ref_file, ref = found[0]
    rowdir, coldir = _orientation(ref, ref_file, name)
    spacing = _pixel_spacing(ref, ref_file, name)
    shape = (int(ref.get("Rows") or 0), int(ref.get("Columns") or 0))
    normal = np.cross(rowdir, coldir)
    positions = []
    for file, ds in found:
        r, c = _orientation(ds, file, name)
        if np.max(np.abs(np.concatenate([r - rowdir, c - coldir]))) > ORIENTATION_TOLERANCE:
            raise InputError(f"inconsistent orientation in {name}: ImageOrientationPatient of {file.name} differs "
                             f"from that of {ref_file.name}", path)
        if not np.allclose(_pixel_spacing(ds, file, name), spacing, rtol=1e-4, atol=1e-6):
            raise InputError(f"inconsistent PixelSpacing in {name}: {file.name} differs from {ref_file.name}", path)
        if (int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)) != shape:
            raise InputError(f"inconsistent image size in {name}: {file.name} is not {shape[0]} x {shape[1]} "
                             "(Rows x Columns)", path)
        positions.append(_position(ds, file, name))
    positions_arr = np.asarray(positions)
    order = np.argsort(positions_arr @ normal, kind="stable")
    positions_arr = positions_arr[order]
    found = [found[i] for i in order]
    step = _stack_step(positions_arr, normal, path, name)
    columns = []
    scalings = []
    for file, ds in found:
        arr = _pixels(ds, file, name)
        if arr.shape != shape:
            raise InputError(f"{file.name} in {name} has pixel data of shape {arr.shape}, expected {shape}", path)
        columns.append(arr.T)
        scalings.append(_unit_and_scaling(ds))
    data = np.stack(columns, axis=2)
    affine = _affine(rowdir, coldir, spacing, step, positions_arr[0])
    return data, affine, [f for f, _ in found], [ds for _, ds in found], scalings


def _frame_positions(ds: Dataset, n: int) -> np.ndarray | None:
    """Per-frame ``PlanePositionSequence`` positions (n x 3, LPS), or None when not all frames have one."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if not per_frame or len(per_frame) != n:
        return None
    out = []
    for item in per_frame:
        plane = _first_item(item, "PlanePositionSequence")
        ipp = _floats(plane.get("ImagePositionPatient"), 3) if plane is not None else None
        if ipp is None:
            return None
        out.append(ipp)
    return np.asarray(out)


def _read_multiframe(file: Path, ds: Dataset, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Pixels as data[c, r, k] and the RAS affine of one multi-frame file (frames = slices)."""
    n = _n_frames(ds)
    image_type = [str(v).upper() for v in (ds.get("ImageType") or [])]
    if any("TOMO" in v for v in image_type) and not any("RECON" in v for v in image_type):
        raise InputError(f"{name} holds projections ({'/'.join(image_type)}), not a reconstructed volume; "
                         "give the reconstructed SPECT series", file)
    n_slices = _floats(ds.get("NumberOfSlices"), 1)
    if n_slices is not None and int(n_slices[0]) not in (0, n):
        raise InputError(f"{name} holds {n} frames but NumberOfSlices {int(n_slices[0])} (several volumes in one "
                         "file, e.g. energy windows or gates); give a file with one reconstructed volume", file)
    rowdir, coldir = _orientation(ds, file, name)
    spacing = _pixel_spacing(ds, file, name)
    normal = np.cross(rowdir, coldir)
    positions = _frame_positions(ds, n)
    if positions is not None:
        step = _stack_step(positions, normal, file, name)
        ipp0 = positions[0]
    else:
        step = normal * _slice_spacing(ds, file, name)
        ipp0 = _position(ds, file, name)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    transforms = [_first_item(item, "PixelValueTransformationSequence") for item in per_frame]
    rescales = {(str(t.get("RescaleSlope")), str(t.get("RescaleIntercept"))) for t in transforms if t is not None}
    if len(rescales) > 1:
        raise InputError(f"{name} has a different rescale slope or intercept per frame, which is not supported; "
                         "export it as one file per slice", file)
    arr = _pixels(ds, file, name)
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.shape[0] != n:
        raise InputError(f"{name} declares {n} frames but its pixel data holds {arr.shape[0]}", file)
    return arr.transpose(2, 1, 0), _affine(rowdir, coldir, spacing, step, ipp0)


def _read_series(path: str | os.PathLike, name: str, modalities: tuple[str, ...], allow_multiframe: bool
                 ) -> tuple[np.ndarray, np.ndarray, list[Path], list[Dataset], bool, str, list[_Scaling]]:
    """Collect the files, check the modality and read geometry and stored pixels of a series:
    (data[c, r, k] as stored, RAS affine, files, datasets, multi-frame?, modality, per-dataset
    (unit, slope, intercept))."""
    found = _collect(path, name)
    path = Path(path)
    for file, ds in found:
        modality = _modality(ds)
        if modality not in modalities:
            if modality == "CT":
                raise InputError("this is a CT series (Modality CT), not SPECT; give the SPECT (NM or PT) series",
                                 file)
            raise InputError(f"{name} has Modality {modality or '(none)'!r}; expected "
                             f"{' or '.join(modalities)}", file)
    modality = _modality(found[0][1])
    if any(_modality(ds) != modality for _, ds in found):
        raise InputError(f"{name} mixes modalities {sorted({_modality(ds) for _, ds in found})}", path)
    multi = [f for f, ds in found if _n_frames(ds) > 1]
    if multi and not allow_multiframe:
        raise InputError(f"{name} is a multi-frame (enhanced) file, which is not supported; export the series as "
                         "one file per slice", multi[0])
    if len(found) == 1:
        file, ds = found[0]
        if not multi:
            raise InputError(f"{name} is a single 2-D slice; give the whole series (a folder)", file)
        data, affine = _read_multiframe(file, ds, name)
        return data, affine, [file], [ds], True, modality, [_unit_and_scaling(ds)]
    if multi:
        raise InputError(f"{name} holds {len(found)} files of one series, {len(multi)} of them multi-frame; "
                         "give the multi-frame file alone or a folder of single-slice files", path)
    data, affine, files, datasets, scalings = _read_single_slices(found, path, name)
    return data, affine, files, datasets, False, modality, scalings


def read_spect_dicom(path: str | os.PathLike) -> DicomSeries:
    """Read a SPECT (or PET-stored) activity image from DICOM, in MBq/mL.

    ``path`` is a multi-frame NM file, or a folder holding one series: single-slice NM/PT files or
    one multi-frame file. Values are stored pixel x slope + intercept converted from the header's
    unit (Bq/mL, kBq/mL or MBq/mL) to MBq/mL; the affine is RAS+ in mm (module docstring).

    Raises :class:`InputError` naming the path for a missing path, a folder without DICOM files
    or with several series, a file that is not DICOM or holds no pixel data, a modality other than
    NM or PT, a single 2-D slice, inconsistent orientation, pixel size or slice spacing, missing
    geometry, and values in counts or without an activity unit (say how to calibrate).
    """
    name = "SPECT DICOM"
    data, affine, files, datasets, multiframe, modality, scalings = _read_series(path, name, ("NM", "PT"), True)
    units = {unit for unit, _, _ in scalings}
    if len(units) > 1:
        raise InputError(f"inconsistent units in {name}: {sorted(str(u) for u in units)}", path)
    unit = scalings[0][0]
    factor = _to_mbq_ml(unit, files[0] if multiframe else Path(path), name)
    if multiframe:
        _, slope, intercept = scalings[0]
        values = data * slope + intercept
    else:
        slopes = np.asarray([s for _, s, _ in scalings])
        intercepts = np.asarray([i for _, _, i in scalings])
        values = data * slopes + intercepts
    values *= factor
    if not np.all(np.isfinite(values)):
        raise InputError(f"{name} holds {int((~np.isfinite(values)).sum())} NaN or infinite voxels", path)
    image = Image(data=values.astype(np.float32), affine=affine)
    return DicomSeries(image=image, datasets=datasets, files=files, modality=modality, multiframe=multiframe,
                       unit=str(unit))


def read_ct_dicom(path: str | os.PathLike) -> DicomSeries:
    """Read a CT series (a folder of one file per slice) in Hounsfield units.

    Values are stored pixel x ``RescaleSlope`` + ``RescaleIntercept``; the affine is RAS+ in mm.
    Raises :class:`InputError` naming the path as :func:`read_spect_dicom` does, and for a modality
    other than CT or a multi-frame (enhanced) CT file.
    """
    name = "CT DICOM"
    data, affine, files, datasets, multiframe, modality, _ = _read_series(path, name, ("CT",), False)
    slopes = np.asarray([_rescale(ds)[0] for ds in datasets])
    intercepts = np.asarray([_rescale(ds)[1] for ds in datasets])
    values = data * slopes + intercepts
    rescale_type = str(datasets[0].get("RescaleType") or "").strip()
    unit = rescale_type if rescale_type and rescale_type.upper() != "US" else "HU"
    return DicomSeries(image=Image(data=values.astype(np.float32), affine=affine), datasets=datasets, files=files,
                       modality=modality, multiframe=multiframe, unit=unit)


# ---------------------------------------------------------------------------------------- writing

#: Attributes dropped from written datasets: they describe the old pixel values or encoding.
_STALE_KEYWORDS = (
    "SmallestImagePixelValue", "LargestImagePixelValue", "SmallestPixelValueInSeries",
    "LargestPixelValueInSeries", "PixelPaddingValue", "PixelPaddingRangeLimit", "WindowCenter", "WindowWidth",
    "WindowCenterWidthExplanation", "VOILUTSequence", "FloatPixelData", "DoubleFloatPixelData",
    "ExtendedOffsetTable", "ExtendedOffsetTableLengths", "PixelDataProviderURL",
)

_UINT16_MAX = 65535


def _ds_number(value: float) -> tuple[str, float]:
    """``value`` as a DICOM decimal string (at most 16 characters) and the float it encodes."""
    text = format_number_as_ds(float(value))
    return text, float(text)


def _bqml_mapping(slope_text: str) -> Sequence:
    """A RealWorldValueMappingSequence mapping uint16 pixels 0..65535 to Bq/mL with ``slope``."""
    code = Dataset()
    code.CodeValue = "Bq/ml"
    code.CodingSchemeDesignator = "UCUM"
    code.CodeMeaning = "becquerels/milliliter"
    item = Dataset()
    item.add_new(0x00409216, "US", 0)            # RealWorldValueFirstValueMapped
    item.add_new(0x00409211, "US", _UINT16_MAX)  # RealWorldValueLastValueMapped
    item.RealWorldValueIntercept = 0.0
    item.RealWorldValueSlope = float(slope_text)
    item.LUTExplanation = "Bq/ml"
    item.LUTLabel = "BQML"
    item.MeasurementUnitsCodeSequence = Sequence([code])
    return Sequence([item])


def _set_scaling(ds: Dataset, slope_text: str) -> None:
    """Rescale slope/intercept, unit and real-world mapping of ``ds`` (and its functional groups)."""
    ds.RescaleSlope = slope_text
    ds.RescaleIntercept = "0"
    ds.Units = "BQML"
    if "RescaleType" in ds:
        ds.RescaleType = "BQML"
    if "RealWorldValueMappingSequence" in ds:
        ds.RealWorldValueMappingSequence = _bqml_mapping(slope_text)
    for fg_keyword in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for item in ds.get(fg_keyword) or []:
            for transform in item.get("PixelValueTransformationSequence") or []:
                transform.RescaleSlope = slope_text
                transform.RescaleIntercept = "0"
                if "RescaleType" in transform:
                    transform.RescaleType = "BQML"
            if "RealWorldValueMappingSequence" in item:
                item.RealWorldValueMappingSequence = _bqml_mapping(slope_text)


def _quantise(values_bq_ml: np.ndarray) -> tuple[np.ndarray, str]:
    """uint16 pixels and the slope (as a decimal string) with pixels x slope ~ values (Bq/mL >= 0)."""
    top = float(values_bq_ml.max()) if values_bq_ml.size else 0.0
    slope_text, slope = _ds_number(top / _UINT16_MAX) if top > 0 else ("1", 1.0)
    pixels = np.clip(np.rint(values_bq_ml / slope), 0, _UINT16_MAX).astype("<u2")
    return pixels, slope_text


def write_spect_series(series: DicomSeries, data_mbq_ml: np.ndarray, out_dir: str | os.PathLike,
                       series_description: str, comment: str | None = None) -> list[Path]:
    """Write ``data_mbq_ml`` (MBq/mL, laid out ``data[c, r, k]`` as read) as a new DICOM series.

    One file per dataset of ``series`` (``slice_0001.dcm`` ... in slice order, or ``image.dcm`` for a
    multi-frame input) in ``out_dir`` (created). Each is a copy of the input dataset with a new
    SeriesInstanceUID derived from the input's and ``series_description`` and new SOPInstanceUIDs
    derived from the input's and the new series UID (so writing twice gives the same UIDs), the
    same StudyInstanceUID and FrameOfReferenceUID, SeriesNumber + 1000, ImageType
    DERIVED/SECONDARY (the input's further values kept; DERIVED/SECONDARY alone when it had none),
    ``comment`` in ImageComments, every other attribute of the input (acquisition and
    radiopharmaceutical timing, decay correction) kept, Units BQML and values in Bq/mL as uint16 with RescaleSlope = max / 65535
    (per file; one for a multi-frame file) and RescaleIntercept 0, uncompressed Explicit VR Little
    Endian. Negative values are clipped to 0.

    Raises ``ValueError`` when ``data_mbq_ml`` does not have the shape of ``series.image.data``
    or holds NaN or infinity. Returns the written paths.
    """
    values = np.asarray(data_mbq_ml, dtype=np.float64)
    if values.shape != series.image.data.shape:
        raise ValueError(f"data of shape {values.shape} does not match the DICOM series' shape "
                         f"{series.image.data.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("data holds NaN or infinite values")
    if series.multiframe != (len(series.datasets) == 1 and _n_frames(series.datasets[0]) > 1) \
            or (not series.multiframe and len(series.datasets) != values.shape[2]):
        raise ValueError("the DicomSeries' datasets do not match its image (multi-frame flag or slice count)")
    bq_ml = np.clip(values, 0.0, None) * 1e6
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    first = series.datasets[0]
    source_series = str(first.get("SeriesInstanceUID") or first.get("SOPInstanceUID") or "")
    series_uid = generate_uid(entropy_srcs=[source_series, "dlpvc", series_description])

    if series.multiframe:
        jobs = [(first, bq_ml.transpose(2, 1, 0), out_dir / "image.dcm")]
    else:
        jobs = [(ds, bq_ml[:, :, k].T, out_dir / f"slice_{k + 1:04d}.dcm") for k, ds in enumerate(series.datasets)]

    written = []
    for index, (source, frames, target) in enumerate(jobs):
        ds = copy.deepcopy(source)
        pixels, slope_text = _quantise(frames)
        source_sop = str(source.get("SOPInstanceUID") or f"{source_series}.{index}")
        sop_uid = generate_uid(entropy_srcs=[source_sop, series_uid])
        ds.SOPInstanceUID = sop_uid
        ds.SeriesInstanceUID = series_uid
        ds.SeriesDescription = series_description[:64]
        if ds.get("SeriesNumber") not in (None, ""):
            ds.SeriesNumber = (int(ds.SeriesNumber) + 1000) % 2**31
        image_type = list(ds.get("ImageType") or [])
        ds.ImageType = ["DERIVED", "SECONDARY"] + image_type[2:]
        if comment:
            ds.ImageComments = comment[:10240]
        ds.DerivationDescription = f"partial-volume correction (dlpvc): {series_description}"[:1024]
        for keyword in _STALE_KEYWORDS:
            if keyword in ds:
                delattr(ds, keyword)
        _set_scaling(ds, slope_text)
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        if "PixelData" in ds:
            del ds.PixelData
        ds.add_new(0x7FE00010, "OW", pixels.tobytes())

        meta = ds.file_meta if getattr(ds, "file_meta", None) is not None else FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta

        tmp = target.with_name(".tmp." + target.name)
        try:
            ds.save_as(tmp, enforce_file_format=True)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        written.append(target)
    return written
