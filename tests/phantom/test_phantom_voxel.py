"""Labelled voxel phantoms: Interfile and NIfTI round trips, bad headers and tables, XCAT."""

import copy
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from pvc_core.config import load_config
from pvc_core.errors import InputError
from pvc_core.phantom import check_phantom_source, generate_case
from pvc_core.phantom.materials import mu_208kev
from pvc_core.phantom.voxel_phantom import load_label_volume, read_interfile_header, write_interfile_labels
from pvc_core.specs import phantom_specs

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config" / "test.yaml"
XCAT = REPO.parent / "shared" / "phantoms" / "mesh50_xcat" / "Voxelized_mesh50XCAT_WholeBody.zip"
TABLE = {0: "outside", 1: "soft_tissue", 2: "lung", 3: "cortical_bone"}


def _label_map() -> np.ndarray:
    """A 10 mm elliptic-cylinder 'patient' (x, y, slice) with lungs and a spine; asymmetric on purpose."""
    shape = (40, 30, 60)
    x, y, z = np.meshgrid(*(np.arange(n) - (n - 1) / 2 for n in shape), indexing="ij")
    lab = np.zeros(shape, np.uint8)
    lab[(x / 15) ** 2 + (y / 11) ** 2 <= 1] = 1
    lab[(((x - 6) / 4) ** 2 + (y / 6) ** 2 <= 1) & (z > 0)] = 2  # one lung on the file's +x side, upper half
    lab[(x ** 2 + (y - 7) ** 2 <= 4)] = 3  # spine towards the file's +y (posterior in LPS)
    return lab


def _config(path, labels=TABLE, **voxel):
    cfg = copy.deepcopy(load_config(CONFIG))
    v = {"path": str(path), "labels": dict(labels), "orientation": "LPS",
         "bed_centres_mm": {"head": 400.0, "thorax": 300.0, "abdomen": 200.0}}
    v.update(voxel)
    cfg["phantom"].update(source="voxel", voxel=v,
                          active_volume_ml={"distribution": "uniform", "min": 200.0, "max": 200.0})
    return cfg


def test_interfile_round_trip_and_orientation(tmp_path):
    lab = _label_map()
    hdr = write_interfile_labels(tmp_path / "p.h33", lab, (10.0, 10.0, 10.0))
    h = read_interfile_header(hdr)
    assert h.shape == (40, 30, 60) and h.voxel_mm == (10.0, 10.0, 10.0)
    assert np.array_equal(load_label_volume(hdr, "RAS").data, lab)
    ras = load_label_volume(hdr, "LPS")
    assert np.array_equal(ras.data, lab[::-1, ::-1, :])  # L -> R and P -> A flip, S stays
    assert ras.counts[: 4].tolist() == np.bincount(lab.ravel()).tolist()
    sub = load_label_volume(hdr, "RAS", (2, 3, 4))
    assert np.array_equal(sub.data, lab[1::2, 1::3, 2::4])
    assert sub.voxel_mm == (20.0, 30.0, 40.0) and sub.origin_mm == (10.0, 10.0, 20.0)


def test_big_endian_and_exponent_without_e(tmp_path):
    lab = _label_map()
    hdr = write_interfile_labels(tmp_path / "b.h33", lab, 10.0, dtype=">u2")
    text = hdr.read_text().replace("10.000000", "+1.000000+01")  # as the XCAT header writes numbers
    hdr.write_text(text)
    assert read_interfile_header(hdr).voxel_mm == (10.0, 10.0, 10.0)
    assert np.array_equal(load_label_volume(hdr, "RAS").data, lab)


def test_nifti_round_trip(tmp_path):
    lab = _label_map()
    path = tmp_path / "p.nii.gz"
    nib.save(nib.Nifti1Image(lab, np.diag([10.0, 10.0, 10.0, 1.0])), path)
    vol = load_label_volume(path)
    assert np.array_equal(vol.data, lab) and vol.voxel_mm == (10.0, 10.0, 10.0)


def test_generate_from_voxel_phantom(tmp_path):
    hdr = write_interfile_labels(tmp_path / "p.h33", _label_map(), 10.0)
    cfg = _config(hdr)
    pc = generate_case(0, 3, *phantom_specs(cfg))
    assert pc.meta["source"] == "voxel" and pc.meta["lateral_fit_scale"] == 1.0
    for label, material in TABLE.items():
        sel = pc.labels == label
        assert sel.any(), f"label {label} missing"
        assert np.all(pc.mu_per_cm[sel] == np.float32(mu_208kev(material)))
    assert np.array_equal(pc.body_mask, pc.labels > 0)
    assert not pc.activity_mbq_ml[~pc.body_mask].any()
    assert pc.activity_mbq_ml.sum(dtype=np.float64) * pc.sim_voxel_mm**3 / 1000 == pytest.approx(
        pc.meta["total_activity_mbq_target"], rel=1e-5)
    # the spine is posterior: in RAS it lies at lower axis-1 coordinates than the body's centre
    y = np.nonzero(pc.labels == 3)[1].mean()
    assert y < np.nonzero(pc.body_mask)[1].mean()


def test_label_missing_from_the_table(tmp_path):
    hdr = write_interfile_labels(tmp_path / "p.h33", _label_map(), 10.0)
    table = {k: v for k, v in TABLE.items() if k != 2}
    msg = r"p\.h33: label\(s\) \[2\] of the map have no material in phantom\.voxel\.labels"
    with pytest.raises(InputError, match=msg):
        generate_case(0, 3, *phantom_specs(_config(hdr, table)))


def test_header_not_matching_the_data(tmp_path):
    hdr = write_interfile_labels(tmp_path / "p.h33", _label_map(), 10.0)
    data = tmp_path / "p.i33"
    data.write_bytes(data.read_bytes()[:-100])
    with pytest.raises(InputError, match=r"p\.h33: header says 40x30x60 voxels of 2 bytes .* holds \d+ bytes"):
        load_label_volume(hdr)


def test_header_missing_a_key(tmp_path):
    hdr = write_interfile_labels(tmp_path / "p.h33", _label_map(), 10.0)
    hdr.write_text("\n".join(l for l in hdr.read_text().splitlines() if "number format" not in l))
    with pytest.raises(InputError, match=r"p\.h33: header key 'number format' is missing"):
        read_interfile_header(hdr)


def test_empty_body_in_the_field_of_view(tmp_path):
    hdr = write_interfile_labels(tmp_path / "p.h33", _label_map(), 10.0)
    cfg = _config(hdr, bed_centres_mm={"head": 5000.0, "thorax": 5000.0, "abdomen": 5000.0})
    with pytest.raises(InputError, match=r"phantom\.voxel\.bed_centres_mm\.\w+: no body voxel"):
        generate_case(0, 3, *phantom_specs(cfg))


def test_body_wider_than_the_field_of_view(tmp_path):
    hdr = write_interfile_labels(tmp_path / "p.h33", _label_map(), 10.0)
    with pytest.raises(InputError, match=r"phantom\.voxel\.fit: the body is \d+ mm wide"):
        generate_case(0, 3, *phantom_specs(_config(hdr, scale_range=[2.0, 2.0], fit="error")))
    pc = generate_case(0, 3, *phantom_specs(_config(hdr, scale_range=[2.0, 2.0], fit="scale")))
    assert pc.meta["lateral_fit_scale"] < 1.0
    assert not (pc.body_mask[0].any() or pc.body_mask[-1].any())


@pytest.mark.skipif(not XCAT.is_file(), reason=f"mesh50 XCAT phantom not found at {XCAT} (development data only)")
def test_mesh50_xcat_thorax():
    """The 650 MB label map is inflated as a stream from its zip and sampled every 19th voxel."""
    table = {0: "outside", 1: "soft_tissue", 2: "air", 3: "brain", 4: "air", 5: "soft_tissue", 6: "lung",
             7: "cortical_bone"}
    cfg = _config(XCAT, table, bed_centres_mm={"head": 1613.0, "thorax": 1333.0, "abdomen": 1063.0})
    cfg["phantom"]["bed_positions"] = {"head": 0.0, "thorax": 1.0, "abdomen": 0.0}
    t0 = time.perf_counter()
    pc = generate_case(0, 1, *phantom_specs(cfg))
    assert time.perf_counter() - t0 < 20
    present = set(np.unique(pc.labels).tolist())
    assert {1, 5, 6, 7} <= present  # soft tissue, liver, lungs, skeleton
    assert pc.meta["label_voxel_counts"]["6"] > 1e6  # lungs, counted at full resolution
    for label in present:
        assert np.all(pc.mu_per_cm[pc.labels == label] == np.float32(mu_208kev(table[label])))
    assert not pc.activity_mbq_ml[~pc.body_mask].any()
    m = pc.body_mask
    assert not (m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any())
    # anatomy is RAS: the liver (5) lies on the patient's right (+axis 0) of the body's centre
    assert np.nonzero(pc.labels == 5)[0].mean() > np.nonzero(m)[0].mean()


def test_start_up_check_passes_a_good_voxel_phantom(tmp_path):
    hdr = write_interfile_labels(tmp_path / "p.h33", _label_map(), 10.0)
    check_phantom_source(*phantom_specs(_config(hdr)))


@pytest.mark.parametrize("breakage, message", [
    ("missing", r"nowhere\.h33: voxel phantom file not found"),
    ("label", r"p\.h33: label\(s\) \[2\] of the map have no material"),
    ("truncated", r"p\.h33: header says 40x30x60 voxels"),
    ("volume", r"phantom\.active_volume_ml: the smallest target active volume 90000 mL exceeds the body's \d+ mL"),
])
def test_start_up_check_refuses_what_would_fail_every_case(tmp_path, breakage, message):
    hdr = write_interfile_labels(tmp_path / "p.h33", _label_map(), 10.0)
    cfg = _config(hdr, {k: v for k, v in TABLE.items() if k != 2} if breakage == "label" else TABLE)
    if breakage == "missing":
        cfg["phantom"]["voxel"]["path"] = str(tmp_path / "nowhere.h33")
    if breakage == "truncated":
        data = tmp_path / "p.i33"
        data.write_bytes(data.read_bytes()[:-100])
    if breakage == "volume":
        cfg["phantom"]["active_volume_ml"] = {"distribution": "uniform", "min": 90000.0, "max": 90000.0}
    with pytest.raises(InputError, match=message):
        check_phantom_source(*phantom_specs(cfg))


def test_procedural_target_beyond_the_field_of_view_is_refused():
    cfg = copy.deepcopy(load_config(CONFIG))
    cfg["phantom"]["active_volume_ml"] = {"distribution": "uniform", "min": 1e9, "max": 1e9}
    with pytest.raises(InputError, match=r"phantom\.active_volume_ml: .* exceeds the field of view"):
        check_phantom_source(*phantom_specs(cfg))
    check_phantom_source(*phantom_specs(load_config(CONFIG)))
