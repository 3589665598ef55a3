"""DICOM series built from scratch with pydicom, for the tests of several folders.

``write_slices`` (one single-slice file per ``vol[:, :, k]``: PT, CT, ...) and ``write_nm`` (one NM
Image Storage multi-frame file) write a numpy volume ``vol[c, r, k]`` (column, row, slice) in Bq/mL,
so every expected affine and value is known by hand. tests/io/test_io_dicom.py tests the reader with
them; the tests in tests/apply/ write their DICOM inputs with them. Import them with
``from helpers.dicom_series import ...`` (``tests/`` is on sys.path: ``pythonpath`` in pyproject.toml).
"""

import numpy as np
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (ExplicitVRLittleEndian, NuclearMedicineImageStorage, PositronEmissionTomographyImageStorage,
                         RLELossless, generate_uid)
from pydicom.valuerep import format_number_as_ds

STUDY_UID = "1.2.826.0.1.3680043.8.498.1001"
FRAME_UID = "1.2.826.0.1.3680043.8.498.1002"
SERIES_UID = "1.2.826.0.1.3680043.8.498.1003"
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
SPACING = (2.0, 3.0)  # mm between rows, mm between columns
IPP0 = (-10.0, -20.0, 30.0)


def _dataset(sop_class: str, modality: str, series_uid: str, sop_uid: str | None = None,
             transfer_syntax: str = ExplicitVRLittleEndian) -> FileDataset:
    meta = FileMetaDataset()
    sop_uid = sop_uid or generate_uid()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = transfer_syntax
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.Modality = modality
    ds.PatientID = "PHANTOM"
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = FRAME_UID
    ds.SeriesNumber = 7
    ds.SeriesDescription = "test series"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    return ds


def _quantise(values: np.ndarray, intercept: float = 0.0, slope: str | None = None) -> tuple[np.ndarray, str]:
    """uint16 pixels and the rescale slope (DS text); slope = max / 65535 unless given."""
    if slope is None:
        slope = format_number_as_ds(max(float(values.max() - intercept), 1.0) / 65535)
    return np.clip(np.rint((values - intercept) / float(slope)), 0, 65535).astype("<u2"), slope


def write_slices(folder, vol, *, iop=AXIAL, spacing=SPACING, ipp0=IPP0, step=None, positions=None,
                 units="BQML", modality="PT", sop_class=PositronEmissionTomographyImageStorage,
                 series_uid=SERIES_UID, prefix="", intercept=0.0, slope=None, transfer_syntax=ExplicitVRLittleEndian,
                 compress=False, edit=None, seed=1):
    """One single-slice file per ``vol[:, :, k]``, file names in shuffled order. ``step`` (LPS, mm)
    defaults to 4 mm along the normal; ``positions`` overrides every slice's IPP; ``edit(ds, k)``
    changes a dataset before it is saved. Returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    iop = np.asarray(iop, float)
    normal = np.cross(iop[:3], iop[3:])
    step = normal * 4.0 if step is None else np.asarray(step, float)
    n_cols, n_rows, n_slices = vol.shape
    names = np.random.default_rng(seed).permutation(n_slices)
    for k in range(n_slices):
        pixels, slope_text = _quantise(vol[:, :, k].T, intercept, slope)
        ds = _dataset(sop_class, modality, series_uid, transfer_syntax=transfer_syntax)
        ds.InstanceNumber = k + 1
        ds.ImageOrientationPatient = [float(v) for v in iop]
        pos = np.asarray(ipp0, float) + k * step if positions is None else np.asarray(positions[k], float)
        ds.ImagePositionPatient = [float(v) for v in pos]
        ds.PixelSpacing = list(spacing)
        ds.SliceThickness = 4.0
        ds.Rows, ds.Columns = n_rows, n_cols
        ds.RescaleSlope = slope_text
        ds.RescaleIntercept = format_number_as_ds(intercept)
        if units is not None:
            ds.Units = units
        ds.PixelData = pixels.tobytes()
        if compress:
            ds.compress(RLELossless)
        if edit is not None:
            edit(ds, k)
        ds.save_as(folder / f"{prefix}{int(names[k]):03d}.dcm", enforce_file_format=True)
    return folder


def write_nm(path, vol, *, iop=AXIAL, spacing=SPACING, ipp0=IPP0, spacing_between=4.0, rwvm_unit="Bq/ml",
             units=None, frame_positions=None, top_level_geometry=False, image_type=None, edit=None):
    """One NM Image Storage multi-frame file (frame k = vol[:, :, k].T), geometry in
    DetectorInformationSequence, unit in RealWorldValueMappingSequence (slope there). Returns path."""
    n_cols, n_rows, n_slices = vol.shape
    pixels, slope = _quantise(vol.transpose(2, 1, 0))
    ds = _dataset(NuclearMedicineImageStorage, "NM", SERIES_UID)
    ds.ImageType = image_type or ["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"]
    ds.NumberOfFrames = n_slices
    ds.NumberOfSlices = n_slices
    ds.FrameIncrementPointer = 0x00540080
    ds.SliceVector = list(range(1, n_slices + 1))
    ds.Rows, ds.Columns = n_rows, n_cols
    ds.PixelSpacing = list(spacing)
    ds.SpacingBetweenSlices = spacing_between
    ds.SliceThickness = abs(spacing_between)
    detector = Dataset()
    detector.ImagePositionPatient = list(ipp0)
    detector.ImageOrientationPatient = list(iop)
    ds.DetectorInformationSequence = Sequence([detector])
    if top_level_geometry:
        ds.ImagePositionPatient = list(ipp0)
        ds.ImageOrientationPatient = list(iop)
    if frame_positions is not None:
        items = []
        for pos in frame_positions:
            plane = Dataset()
            plane.ImagePositionPatient = [float(v) for v in pos]
            item = Dataset()
            item.PlanePositionSequence = Sequence([plane])
            items.append(item)
        ds.PerFrameFunctionalGroupsSequence = Sequence(items)
    if rwvm_unit is not None:
        code = Dataset()
        code.CodeValue = rwvm_unit
        code.CodingSchemeDesignator = "UCUM"
        code.CodeMeaning = rwvm_unit
        mapping = Dataset()
        mapping.RealWorldValueSlope = float(slope)
        mapping.RealWorldValueIntercept = 0.0
        mapping.MeasurementUnitsCodeSequence = Sequence([code])
        ds.RealWorldValueMappingSequence = Sequence([mapping])
    if units is not None:
        ds.Units = units
        ds.RescaleSlope = slope
    ds.PixelData = pixels.tobytes()
    if edit is not None:
        edit(ds)
    ds.save_as(path, enforce_file_format=True)
    return path
