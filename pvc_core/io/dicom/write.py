"""A SPECT series written back as DICOM beside the series it was read from
(:func:`write_spect_series`; conventions in :mod:`pvc_core.io.dicom`)."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds

from pvc_core.io.atomic import atomic_path
from pvc_core.io.dicom.common import DicomSeries, _n_frames

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

        with atomic_path(target, replace=True) as tmp:
            ds.save_as(tmp, enforce_file_format=True)
        written.append(target)
    return written
