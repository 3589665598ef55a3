"""Validity domains and what an input states (:mod:`pvc_core.apply.domain`), and the one atomic
writer (:mod:`pvc_core.io.atomic`): known answers."""

from __future__ import annotations

import json

import pytest
from pydicom.dataset import Dataset

from pvc_core.apply.domain import (INSIDE, OUTSIDE, UNKNOWN, InputFacts, activity_problem, card_domain, check_domain,
                                   domain_from_trained_for, facts_from_dicom, facts_from_sidecar, geometry_problem,
                                   reconstruction_from_text)
from pvc_core.apply.model import SHIPPED_MODEL_DIR
from pvc_core.io.atomic import atomic_path, is_temporary, pending


@pytest.mark.parametrize("total, ok", [(0.99, False), (1.0, True), (50_000.0, True), (50_001.0, False), (0.0, False),
                                       (-5.0, False), (4.6e8, False)])
def test_image_totals_outside_1_mbq_to_50_gbq_are_refused(total, ok):
    assert (activity_problem(total) is None) == ok


def test_the_unit_error_is_named():
    assert "1e6" in activity_problem(4.6e8) and "1e3" in activity_problem(4.6e5)


@pytest.mark.parametrize("shape, voxel, words", [((128,) * 3, (0.0048,) * 3, "metres"), ((128,) * 3, (25.0,) * 3, "20"),
                                                 ((64, 64, 15), (4.8,) * 3, "fewer than 16"),
                                                 ((16, 16, 16), (0.5, 0.5, 20.0), None)])
def test_geometry_limits(shape, voxel, words):
    problem = geometry_problem(shape, voxel)
    assert (problem is None) if words is None else (words in problem)


@pytest.mark.parametrize("text, expected", [
    ("OSEM 6i6s RR", {"reconstruction": "RR", "iterations": 6, "subsets": 6}),
    ("Flash3D 8i4s", {"reconstruction": "RR", "iterations": 8, "subsets": 4}),
    ("OSEM 10 iterations 2 subsets noRR", {"reconstruction": "noRR", "iterations": 10, "subsets": 2}),
    ("OSEM3D 4i8s", {"iterations": 4, "subsets": 8}),
    ("OSEM", {}),
])
def test_reconstruction_text(text, expected):
    assert reconstruction_from_text(text) == expected


def test_facts_from_dicom_and_sidecars():
    ds = Dataset()
    ds.ReconstructionMethod = "Evolution 2i10s"
    ds.CorrectedImage = ["ATTN", "DECY"]
    det, nuc, code = Dataset(), Dataset(), Dataset()
    det.CollimatorGridName = "MEGP"
    code.CodeMeaning = "^177^Lutetium"
    nuc.RadionuclideCodeSequence = [code]
    ds.DetectorInformationSequence = [det]
    ds.RadiopharmaceuticalInformationSequence = [nuc]
    assert facts_from_dicom(ds) == {"reconstruction": "RR", "iterations": 2, "subsets": 10,
                                    "attenuation_correction": True, "scatter_correction": "none",
                                    "collimator": "MEGP", "isotope": "^177^Lutetium"}
    ours = facts_from_sidecar({"reconstruction": {"name": "noRR", "iterations": 10, "subsets": 2,
                                                  "scatter_correction": "tew"}})
    assert ours == {"reconstruction": "noRR", "iterations": 10, "subsets": 2, "scatter_correction": "tew",
                    "attenuation_correction": True, "post_filter_fwhm_mm": 0.0}
    assert facts_from_sidecar({"ReconFilterType": "Gaussian", "ReconFilterSize": 5})["post_filter_fwhm_mm"] == 5.0


def _facts(**kw) -> InputFacts:
    base = dict(voxel_mm=(4.8, 4.8, 4.8), matrix=(128, 128, 128), total_mbq=1000.0, reconstruction="RR", iterations=6,
                subsets=6, scatter_correction="simulated", attenuation_correction=True, post_filter_fwhm_mm=0.0,
                collimator=None, isotope="Lu-177")
    base.update(kw)
    return InputFacts(**base)


def test_the_shipped_domain_inside_outside_unknown():
    card = json.loads((SHIPPED_MODEL_DIR / "model_card.json").read_text())
    domain = card_domain(card)
    assert domain == domain_from_trained_for(card["trained_for"])
    assert check_domain(_facts(), domain) == (INSIDE, [])
    status, reasons = check_domain(_facts(scatter_correction="tew"), domain)
    assert status == OUTSIDE and "no camera has" in reasons[0]
    status, reasons = check_domain(_facts(reconstruction=None), domain)
    assert status == UNKNOWN and "reconstruction kind not stated" in reasons[0]
    for kw, words in [({"reconstruction": "noRR"}, "reconstruction noRR"), ({"iterations": 10}, "10 iterations"),
                      ({"voxel_mm": (3.9, 3.9, 3.9)}, "voxel size"), ({"total_mbq": 50.0}, "total activity 50"),
                      ({"isotope": "^177^Lutetium"}, None), ({"isotope": "Tc-99m"}, "isotope"),
                      ({"post_filter_fwhm_mm": 5.0}, "post-filter 5"), ({"attenuation_correction": False}, "attenuation")]:
        status, reasons = check_domain(_facts(**kw), domain)
        assert (status == INSIDE) if words is None else (status == OUTSIDE and words in reasons[0]), (kw, reasons)
    assert check_domain(_facts(), {})[0] == UNKNOWN


def test_atomic_path_writes_whole_or_nothing(tmp_path):
    target = tmp_path / "x.txt"
    with atomic_path(target) as tmp:
        assert is_temporary(tmp) and tmp.parent == tmp_path and tmp.name.endswith("x.txt")
        tmp.write_text("one")
    assert target.read_text() == "one" and pending() == []
    with pytest.raises(FileExistsError):
        with atomic_path(target) as tmp:
            tmp.write_text("two")
    with pytest.raises(RuntimeError):
        with atomic_path(target, replace=True) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "one" and sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]
    with atomic_path(target, replace=True) as tmp:
        tmp.write_text("three")
    assert target.read_text() == "three"


def test_atomic_folder_replaces_a_folder_only_on_request(tmp_path):
    target = tmp_path / "series"
    with atomic_path(target, folder=True) as tmp:
        (tmp / "a.dcm").write_text("a")
    with pytest.raises(FileExistsError):
        with atomic_path(target, folder=True) as tmp:
            (tmp / "b.dcm").write_text("b")
    with atomic_path(target, folder=True, replace=True) as tmp:
        (tmp / "c.dcm").write_text("c")
    assert sorted(p.name for p in target.iterdir()) == ["c.dcm"] and sorted(p.name for p in tmp_path.iterdir()) == [
        "series"]
