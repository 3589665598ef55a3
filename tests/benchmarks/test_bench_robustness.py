"""The robustness benchmark's rows: protocols, image tags and calibration cache names
(benchmarks/bench_robustness.py). No simulation: each test runs in well under a second."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_robustness as br

OLD_ROWS = ("a_bodies", "b_validation", "c_patient", "d_time_10s", "d_filter_5mm", "d_voxel_3.9mm")


def test_existing_rows_keep_their_cache_names():
    """Protocols, tags and calibration names of the rows cached before the new rows (unchanged)."""
    expected = {"a_bodies": ("base", "cal_64_4.8mm_60v_0pf"), "b_validation": ("base", "cal_64_4.8mm_60v_0pf"),
                "c_patient": ("base", "cal_64_4.8mm_60v_0pf"), "d_filter_5mm": ("base", "cal_64_4.8mm_60v_0pf"),
                "d_time_10s": ("t10", "cal_64_4.8mm_60v_0pf"), "d_voxel_3.9mm": ("v39", "cal_79_3.9mm_60v_0pf")}
    for row in OLD_ROWS:
        protocol, tag = br.row_protocol(row, 64)
        cal_protocol = br.replace(protocol, time_per_view_s=br.ic.Protocol().time_per_view_s)
        assert (tag, br.calibration_key(cal_protocol)) == expected[row], row
    assert br.row_protocol("d_time_10s", 64)[0].time_per_view_s == 20.0
    assert br.row_protocol("d_voxel_3.9mm", 64)[0].matrix == 79


@pytest.mark.parametrize(("row", "field", "value", "tag", "key"), [
    ("d_collimator_megp", "collimator", "ge_megp", "megp", "cal_64_4.8mm_60v_0pf_ge_megp"),
    ("d_intrinsic_5mm", "intrinsic_fwhm_140kev_mm", 5.0, "int50", "cal_64_4.8mm_60v_0pf_int5mm"),
    ("d_iter_12x6", "rr", (12, 6), "rr12x6", "cal_64_4.8mm_60v_0pf_rr12x6"),
    ("d_orbit_far", "orbit_clearance_mm", 100.0, "clr100", "cal_64_4.8mm_60v_0pf_clr100mm"),
    ("d_voxel_5.3mm", "voxel_mm", 5.3, "v53", "cal_58_5.3mm_60v_0pf"),
])
def test_new_rows_change_one_axis_and_calibrate_with_it(row, field, value, tag, key):
    assert row in br.ROWS
    protocol, t = br.row_protocol(row, 64)
    assert getattr(protocol, field) == value and t == tag
    base = br.ic.Protocol(matrix=64)
    changed = [f for f in br.asdict(base) if getattr(protocol, f) != getattr(base, f)]
    assert set(changed) <= {field, "matrix"}
    assert br.calibration_key(protocol) == key


def test_tags_and_calibration_names_are_unique():
    tags = {br.row_protocol(r, 64)[1] for r in br.ROWS if r in br.ROW_PROTOCOLS}
    assert len(tags) == len(br.ROW_PROTOCOLS)
    keys = {br.calibration_key(br.row_protocol(r, 64)[0]) for r in br.ROW_PROTOCOLS if r != "d_time_10s"}
    assert len(keys) == len(br.ROW_PROTOCOLS) - 1
