"""DICOM SPECT and CT series: detection (:func:`is_dicom_path`) and reading into an
:class:`~pvc_core.io.nifti.Image` (conventions in :mod:`pvc_core.io.dicom`)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from pvc_core.errors import InputError
from pvc_core.io.dicom.common import DicomSeries, _n_frames
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
    """RAS+ affine (mm) of ``data[c, r, k]`` from LPS geometry (see :mod:`pvc_core.io.dicom`)."""
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
    that turn stored pixel values into that unit (see :mod:`pvc_core.io.dicom` for the sources)."""
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
    unit (Bq/mL, kBq/mL or MBq/mL) to MBq/mL; the affine is RAS+ in mm (:mod:`pvc_core.io.dicom`).

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
