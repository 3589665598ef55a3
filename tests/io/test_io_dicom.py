"""DICOM SPECT/CT reading and SPECT writing: geometry (LPS -> RAS affine), units, bad inputs.

The series are built from scratch with pydicom from a numpy volume ``vol[c, r, k]`` (column,
row, slice) in Bq/mL, so every expected affine and value is known by hand (the writers and their
default geometry: tests/helpers/dicom_series.py, shared with tests/apply/).
"""

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import (CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                         PositronEmissionTomographyImageStorage)

from helpers.dicom_series import (AXIAL, CORONAL, FRAME_UID, IPP0, SERIES_UID, SPACING, STUDY_UID, _dataset,
                                  write_nm, write_slices)
from pvc_core.errors import InputError
from pvc_core.io.dicom import DicomSeries, is_dicom_path, read_ct_dicom, read_spect_dicom, write_spect_series

# headers of other software spell units such as "Bq/ml" in the CS-typed Units; pydicom warns about them
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR CS:UserWarning")

SHAPE = (8, 10, 6)  # columns, rows, slices


def _volume(seed: int = 0, shape=SHAPE) -> np.ndarray:
    """Bq/mL, 0..500 kBq/mL, one clear maximum."""
    vol = np.random.default_rng(seed).uniform(0.0, 4e5, shape)
    if shape == SHAPE:
        vol[5, 3, 2] = 5e5
    return vol


def _ras(lps: np.ndarray) -> np.ndarray:
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def _lps(col0, col1, col2, origin) -> np.ndarray:
    out = np.eye(4)
    out[:3, 0], out[:3, 1], out[:3, 2], out[:3, 3] = col0, col1, col2, origin
    return out


def _tolerance_mbq(vol) -> float:
    """Half a uint16 step of the largest slope, in MBq/mL, plus float32 rounding."""
    return float(vol.max()) / 65535 * 1e-6 + 1e-6 * float(vol.max()) * 1e-6


# ----------------------------------------------------------------------------------------- reading

@pytest.mark.parametrize("iop, expected_lps", [
    # LPS columns: rowdir * 3 mm, coldir * 2 mm, normal * 4 mm; translation IPP0
    (AXIAL, _lps([3, 0, 0], [0, 2, 0], [0, 0, 4], IPP0)),
    (CORONAL, _lps([3, 0, 0], [0, 0, -2], [0, 4, 0], IPP0)),  # normal (1,0,0) x (0,0,-1) = (0,1,0)
])
def test_pt_series_affine_and_values(tmp_path, iop, expected_lps):
    vol = _volume()
    folder = write_slices(tmp_path / "pt", vol, iop=iop)
    series = read_spect_dicom(folder)
    assert isinstance(series, DicomSeries)
    assert series.modality == "PT" and series.unit == "BQML" and not series.multiframe
    assert series.image.data.dtype == np.float32 and series.image.data.shape == SHAPE
    np.testing.assert_allclose(series.image.affine, _ras(expected_lps), atol=1e-9)
    assert series.image.voxel_size_mm == pytest.approx((3.0, 2.0, 4.0))
    np.testing.assert_allclose(series.image.data, vol * 1e-6, atol=_tolerance_mbq(vol))
    # shuffled names on disk, slices in position order after reading
    assert [int(ds.InstanceNumber) for ds in series.datasets] == list(range(1, SHAPE[2] + 1))
    assert sorted(series.files) != series.files and len(series.files) == SHAPE[2]


def test_hand_computed_ras_affine_of_the_axial_series(tmp_path):
    series = read_spect_dicom(write_slices(tmp_path / "pt", _volume()))
    expected = np.array([[-3.0, 0.0, 0.0, 10.0],
                         [0.0, -2.0, 0.0, 20.0],
                         [0.0, 0.0, 4.0, 30.0],
                         [0.0, 0.0, 0.0, 1.0]])
    np.testing.assert_allclose(series.image.affine, expected, atol=1e-9)
    # pixel (row 3, column 5) of slice 2: LPS IPP0 + 5*3*x + 3*2*y + 2*4*z = (5, -14, 38) -> RAS (-5, 14, 38)
    np.testing.assert_allclose(series.image.affine @ [5, 3, 2, 1], [-5.0, 14.0, 38.0, 1.0])


@pytest.mark.parametrize("unit, factor", [("BQML", 1e-6), ("Bq/ml", 1e-6), ("Bq/mL", 1e-6), ("kBq/ml", 1e-3),
                                          ("MBq/ml", 1.0)])
def test_activity_units_are_converted_to_mbq_per_ml(tmp_path, unit, factor):
    vol = _volume(shape=(4, 5, 3))
    series = read_spect_dicom(write_slices(tmp_path / "pt", vol, units=unit))
    assert series.unit == unit
    np.testing.assert_allclose(series.image.data, vol * factor, rtol=1e-4, atol=float(vol.max()) * factor / 65535)


def test_rescale_intercept_is_applied(tmp_path):
    vol = _volume(shape=(4, 5, 3)) + 1000.0
    series = read_spect_dicom(write_slices(tmp_path / "pt", vol, intercept=1000.0))
    np.testing.assert_allclose(series.image.data, vol * 1e-6, atol=_tolerance_mbq(vol))


def _world_consistent(a, b) -> None:
    """Every voxel of image ``a`` lands on a voxel centre of ``b`` holding the same value."""
    idx = np.indices(a.data.shape).reshape(3, -1)
    world = a.affine @ np.vstack([idx, np.ones(idx.shape[1])])
    idx_b = (np.linalg.inv(b.affine) @ world)[:3]
    rounded = np.rint(idx_b).astype(int)
    np.testing.assert_allclose(idx_b, rounded, atol=1e-6)
    assert np.all((rounded >= 0) & (rounded < np.asarray(b.data.shape)[:, None]))
    np.testing.assert_array_equal(b.data[tuple(rounded)], a.data[tuple(idx)])


@pytest.mark.parametrize("flip_cols, flip_rows, reverse_slices", [
    (True, False, False), (False, True, False), (True, True, False), (False, False, True), (True, False, True)])
def test_same_object_stored_in_another_order_lands_at_the_same_place(tmp_path, flip_cols, flip_rows,
                                                                     reverse_slices):
    vol = _volume()
    n_cols, n_rows, n_slices = vol.shape
    rowdir, coldir = np.array(AXIAL[:3]), np.array(AXIAL[3:])
    step = np.cross(rowdir, coldir) * 4.0
    ipp0 = np.array(IPP0)
    other = vol
    if flip_cols:  # column index runs the other way: row direction flipped, first column at the old last one
        other = other[::-1]
        ipp0 = ipp0 + (n_cols - 1) * SPACING[1] * rowdir
        rowdir = -rowdir
    if flip_rows:
        other = other[:, ::-1]
        ipp0 = ipp0 + (n_rows - 1) * SPACING[0] * coldir
        coldir = -coldir
    if reverse_slices:  # files numbered from the other end
        other = other[:, :, ::-1]
        ipp0 = ipp0 + (n_slices - 1) * step
        step = -step
    a = read_spect_dicom(write_slices(tmp_path / "a", vol)).image
    b = read_spect_dicom(write_slices(tmp_path / "b", other, iop=tuple(rowdir) + tuple(coldir), ipp0=ipp0,
                                      step=step)).image
    _world_consistent(a, b)
    _world_consistent(b, a)
    top_a = a.affine @ [*np.unravel_index(np.argmax(a.data), a.data.shape), 1]
    top_b = b.affine @ [*np.unravel_index(np.argmax(b.data), b.data.shape), 1]
    np.testing.assert_allclose(top_a, top_b, atol=1e-9)
    np.testing.assert_allclose(top_a[:3], [-5.0, 14.0, 38.0])  # RAS of vol[5, 3, 2]


@pytest.mark.parametrize("spacing_between, top_level", [(4.0, False), (-4.0, False), (4.0, True)])
def test_nm_multiframe_affine_and_values(tmp_path, spacing_between, top_level):
    vol = _volume()
    path = write_nm(tmp_path / "nm.dcm", vol, spacing_between=spacing_between, top_level_geometry=top_level)
    series = read_spect_dicom(path)
    assert series.modality == "NM" and series.multiframe and series.unit == "Bq/ml"
    assert series.files == [path] and len(series.datasets) == 1
    expected = _ras(_lps([3, 0, 0], [0, 2, 0], [0, 0, spacing_between], IPP0))
    np.testing.assert_allclose(series.image.affine, expected, atol=1e-9)
    np.testing.assert_allclose(series.image.data, vol * 1e-6, atol=_tolerance_mbq(vol))
    # a folder holding just this file reads the same
    folder_series = read_spect_dicom(tmp_path)
    np.testing.assert_array_equal(folder_series.image.data, series.image.data)


def test_nm_per_frame_positions_win_over_the_spacing(tmp_path):
    vol = _volume()
    positions = [np.array(IPP0) - [0, 0, 4.0 * k] for k in range(SHAPE[2])]  # frames run towards the feet
    series = read_spect_dicom(write_nm(tmp_path / "nm.dcm", vol, frame_positions=positions))
    np.testing.assert_allclose(series.image.affine, _ras(_lps([3, 0, 0], [0, 2, 0], [0, 0, -4.0], IPP0)),
                               atol=1e-9)


def test_nm_with_units_and_rescale_slope(tmp_path):
    vol = _volume()
    series = read_spect_dicom(write_nm(tmp_path / "nm.dcm", vol, rwvm_unit=None, units="BQML"))
    assert series.unit == "BQML"
    np.testing.assert_allclose(series.image.data, vol * 1e-6, atol=_tolerance_mbq(vol))


def test_ct_values_in_hounsfield_units_and_affine(tmp_path):
    hu = np.random.default_rng(3).integers(-1000, 1500, SHAPE).astype(float)
    folder = write_slices(tmp_path / "ct", hu, units=None, modality="CT", sop_class=CTImageStorage,
                          intercept=-1024.0, slope="1", step=(0, 0, 2.5))
    series = read_ct_dicom(folder)
    assert series.modality == "CT" and series.unit == "HU" and not series.multiframe
    np.testing.assert_allclose(series.image.affine, _ras(_lps([3, 0, 0], [0, 2, 0], [0, 0, 2.5], IPP0)),
                               atol=1e-9)
    np.testing.assert_array_equal(series.image.data, hu)  # pixel * 1 - 1024, exact
    raw = np.stack([pydicom.dcmread(f).pixel_array.T for f in series.files], axis=2).astype(float)
    np.testing.assert_array_equal(raw, hu + 1024.0)


def test_compressed_input_is_read(tmp_path):
    vol = _volume(shape=(4, 5, 3))
    series = read_spect_dicom(write_slices(tmp_path / "pt", vol, compress=True))
    np.testing.assert_allclose(series.image.data, vol * 1e-6, atol=_tolerance_mbq(vol))


# ----------------------------------------------------------------------------------------- writing

def test_round_trip_of_a_pt_series(tmp_path):
    vol = _volume()
    series = read_spect_dicom(write_slices(tmp_path / "pt", vol))
    corrected = series.image.data * 2.0
    paths = write_spect_series(series, corrected, tmp_path / "out", "PVC (dlpvc)")
    assert [p.name for p in paths] == [f"slice_{k:04d}.dcm" for k in range(1, SHAPE[2] + 1)]
    back = read_spect_dicom(tmp_path / "out")
    np.testing.assert_allclose(back.image.affine, series.image.affine, atol=1e-9)
    np.testing.assert_allclose(back.image.data, corrected, atol=1e-4 * float(corrected.max()))
    assert back.unit == "BQML"
    written = [pydicom.dcmread(p) for p in paths]
    new_series = {str(ds.SeriesInstanceUID) for ds in written}
    assert len(new_series) == 1 and SERIES_UID not in new_series
    assert len({str(ds.SOPInstanceUID) for ds in written}) == len(written)
    for ds, source in zip(written, series.datasets):
        assert ds.StudyInstanceUID == STUDY_UID and ds.FrameOfReferenceUID == FRAME_UID
        assert ds.SOPInstanceUID != source.SOPInstanceUID
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.SeriesDescription == "PVC (dlpvc)" and ds.SeriesNumber == 1007 and ds.Units == "BQML"
        assert list(ds.ImageType)[:2] == ["DERIVED", "SECONDARY"]
        assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (16, 16, 15, 0)
        assert float(ds.RescaleIntercept) == 0.0
        assert int(ds.pixel_array.max()) == 65535  # slope = max / 65535 per slice
    # writing again gives the same UIDs
    again = [pydicom.dcmread(p) for p in write_spect_series(series, corrected, tmp_path / "again", "PVC (dlpvc)")]
    assert [ds.SOPInstanceUID for ds in again] == [ds.SOPInstanceUID for ds in written]
    assert again[0].SeriesInstanceUID == written[0].SeriesInstanceUID
    # another description, another series
    other = write_spect_series(series, corrected, tmp_path / "other", "another")
    assert pydicom.dcmread(other[0]).SeriesInstanceUID != written[0].SeriesInstanceUID


def test_round_trip_of_an_nm_multiframe_file(tmp_path):
    vol = _volume()
    series = read_spect_dicom(write_nm(tmp_path / "nm.dcm", vol, spacing_between=-4.0))
    corrected = np.clip(series.image.data * 1.5 - 0.01, 0.0, None)
    paths = write_spect_series(series, corrected, tmp_path / "out", "PVC")
    assert [p.name for p in paths] == ["image.dcm"]
    back = read_spect_dicom(paths[0])
    assert back.multiframe and back.modality == "NM" and back.unit == "BQML"
    np.testing.assert_allclose(back.image.affine, series.image.affine, atol=1e-9)
    np.testing.assert_allclose(back.image.data, corrected, atol=1e-4 * float(corrected.max()))
    ds = back.datasets[0]
    assert ds.StudyInstanceUID == STUDY_UID and ds.FrameOfReferenceUID == FRAME_UID
    assert ds.SeriesInstanceUID != SERIES_UID and int(ds.NumberOfFrames) == SHAPE[2]
    mapping = ds.RealWorldValueMappingSequence[0]  # rewritten consistent with the stored values
    assert mapping.MeasurementUnitsCodeSequence[0].CodeValue == "Bq/ml"
    assert float(mapping.RealWorldValueSlope) == pytest.approx(float(ds.RescaleSlope))


def test_round_trip_from_implicit_vr_and_compressed_inputs(tmp_path):
    vol = _volume(shape=(4, 5, 3))
    for name, kwargs in [("implicit", {"transfer_syntax": ImplicitVRLittleEndian}), ("rle", {"compress": True})]:
        series = read_spect_dicom(write_slices(tmp_path / name, vol, **kwargs))
        paths = write_spect_series(series, series.image.data, tmp_path / f"{name}_out", "PVC")
        assert all(pydicom.dcmread(p).file_meta.TransferSyntaxUID == ExplicitVRLittleEndian for p in paths)
        back = read_spect_dicom(tmp_path / f"{name}_out")
        np.testing.assert_allclose(back.image.data, series.image.data, atol=1e-4 * float(series.image.data.max()))


def test_writing_checks_the_shape_and_clips_negatives(tmp_path):
    vol = _volume(shape=(4, 5, 3))
    series = read_spect_dicom(write_slices(tmp_path / "pt", vol))
    with pytest.raises(ValueError, match="shape"):
        write_spect_series(series, series.image.data[:, :, :2], tmp_path / "out", "PVC")
    data = series.image.data.copy()
    data[0, 0, 0] = -1.0
    write_spect_series(series, data, tmp_path / "neg", "PVC")
    back = read_spect_dicom(tmp_path / "neg")
    assert float(back.image.data[0, 0, 0]) == 0.0 and float(back.image.data.min()) >= 0.0


# ------------------------------------------------------------------------------------- bad inputs

def test_folder_without_dicom(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="no DICOM files") as err:
        read_spect_dicom(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_text_file_is_not_dicom(tmp_path):
    (tmp_path / "a.dcm").write_text("not an image\n" * 20)
    with pytest.raises(InputError, match="not a DICOM file"):
        read_spect_dicom(tmp_path / "a.dcm")


def test_missing_path(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_spect_dicom(tmp_path / "nothing")
    with pytest.raises(InputError, match="not found"):
        read_ct_dicom(tmp_path / "nothing")


@pytest.mark.parametrize("unit", ["CNTS", "counts"])
def test_counts_are_refused_with_the_calibration_hint(tmp_path, unit):
    with pytest.raises(InputError, match="counts") as err:
        read_spect_dicom(write_slices(tmp_path / "pt", _volume(shape=(4, 5, 3)), units=unit))
    assert "calibrat" in str(err.value) and "MBq/mL" in str(err.value) and "\n" not in str(err.value)


def test_nm_counts_in_the_real_world_value_mapping_are_refused(tmp_path):
    with pytest.raises(InputError, match="calibrat"):
        read_spect_dicom(write_nm(tmp_path / "nm.dcm", _volume(), rwvm_unit="{counts}"))


def test_missing_unit_is_refused(tmp_path):
    with pytest.raises(InputError, match="no activity unit") as err:
        read_spect_dicom(write_slices(tmp_path / "pt", _volume(shape=(4, 5, 3)), units=None))
    assert "calibrat" in str(err.value)


def test_other_unit_is_named(tmp_path):
    with pytest.raises(InputError, match="'GML'"):
        read_spect_dicom(write_slices(tmp_path / "pt", _volume(shape=(4, 5, 3)), units="GML"))


def test_inconsistent_slice_spacing(tmp_path):
    z = [0.0, 4.0, 8.0, 13.0, 17.0, 21.0]
    positions = [(IPP0[0], IPP0[1], v) for v in z]
    with pytest.raises(InputError, match="inconsistent slice spacing"):
        read_spect_dicom(write_slices(tmp_path / "pt", _volume(), positions=positions))


def test_duplicate_slice_positions(tmp_path):
    positions = [(IPP0[0], IPP0[1], v) for v in [0.0, 4.0, 4.0]]
    with pytest.raises(InputError, match="same position"):
        read_spect_dicom(write_slices(tmp_path / "pt", _volume(shape=(4, 5, 3)), positions=positions))


def test_inconsistent_orientation(tmp_path):
    def tilt(ds, k):
        if k == 2:
            ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, float(np.cos(0.02)), float(np.sin(0.02))]

    with pytest.raises(InputError, match="inconsistent orientation"):
        read_spect_dicom(write_slices(tmp_path / "pt", _volume(), edit=tilt))


def test_slices_offset_across_the_normal(tmp_path):
    positions = [(IPP0[0] + 1.0 * k, IPP0[1], 4.0 * k) for k in range(3)]  # sheared stack
    with pytest.raises(InputError, match="across the slice normal"):
        read_spect_dicom(write_slices(tmp_path / "pt", _volume(shape=(4, 5, 3)), positions=positions))


def test_two_series_in_one_folder(tmp_path):
    vol = _volume(shape=(4, 5, 3))
    write_slices(tmp_path / "pt", vol)
    write_slices(tmp_path / "pt", vol, series_uid=SERIES_UID + ".2", prefix="b")
    with pytest.raises(InputError, match="2 DICOM series"):
        read_spect_dicom(tmp_path / "pt")


def test_ct_given_as_spect_and_spect_given_as_ct(tmp_path):
    vol = _volume(shape=(4, 5, 3))
    ct = write_slices(tmp_path / "ct", vol, units=None, modality="CT", sop_class=CTImageStorage)
    with pytest.raises(InputError, match="CT series"):
        read_spect_dicom(ct)
    with pytest.raises(InputError, match="Modality 'PT'"):
        read_ct_dicom(write_slices(tmp_path / "pt", vol))


def test_a_single_slice_is_refused(tmp_path):
    folder = write_slices(tmp_path / "pt", _volume(shape=(4, 5, 1)))
    with pytest.raises(InputError, match="single 2-D slice"):
        read_spect_dicom(next(folder.iterdir()))
    with pytest.raises(InputError, match="single 2-D slice"):
        read_spect_dicom(folder)


def test_dicom_without_pixel_data(tmp_path):
    ds = _dataset(PositronEmissionTomographyImageStorage, "PT", SERIES_UID)
    ds.save_as(tmp_path / "x.dcm", enforce_file_format=True)
    with pytest.raises(InputError, match="without pixel data"):
        read_spect_dicom(tmp_path / "x.dcm")
    with pytest.raises(InputError, match="no pixel data"):
        read_spect_dicom(tmp_path)


def test_bad_pixel_spacing(tmp_path):
    def zero(ds, k):
        ds.PixelSpacing = [0.0, 3.0]

    def missing(ds, k):
        del ds.PixelSpacing

    with pytest.raises(InputError, match="PixelSpacing"):
        read_spect_dicom(write_slices(tmp_path / "zero", _volume(shape=(4, 5, 3)), edit=zero))
    with pytest.raises(InputError, match="PixelSpacing"):
        read_spect_dicom(write_slices(tmp_path / "missing", _volume(shape=(4, 5, 3)), edit=missing))


def test_nm_projections_are_refused(tmp_path):
    path = write_nm(tmp_path / "proj.dcm", _volume(), image_type=["ORIGINAL", "PRIMARY", "TOMO", "EMISSION"])
    with pytest.raises(InputError, match="projections"):
        read_spect_dicom(path)


# ------------------------------------------------------------------------------------- detection

def test_is_dicom_path(tmp_path):
    folder = write_slices(tmp_path / "pt", _volume(shape=(4, 5, 3)))
    assert is_dicom_path(folder)
    assert is_dicom_path(next(folder.iterdir()))
    assert is_dicom_path(str(folder))
    nifti = tmp_path / "spect.nii.gz"
    nifti.write_bytes(b"\0" * 400)
    assert not is_dicom_path(nifti)
    assert not is_dicom_path(tmp_path / "missing.nii.gz")
    assert not is_dicom_path(tmp_path / "missing")
    assert not is_dicom_path("")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hello")
    assert not is_dicom_path(tmp_path / "empty")
    assert not is_dicom_path(tmp_path / "empty" / "notes.txt")


def test_is_dicom_path_accepts_a_file_without_preamble(tmp_path):
    folder = write_slices(tmp_path / "pt", _volume(shape=(4, 5, 2)))
    source = next(folder.iterdir())
    raw = pydicom.dcmread(source)
    raw.preamble = None
    raw.file_meta = FileMetaDataset()
    bare = tmp_path / "bare"
    bare.mkdir()
    pydicom.dcmwrite(bare / "x", raw, enforce_file_format=False, implicit_vr=True, little_endian=True)
    assert (bare / "x").read_bytes()[128:132] != b"DICM"
    assert is_dicom_path(bare / "x") and is_dicom_path(bare)
