"""The shipped model (models/dlpvc_shipped): it loads, its card says what it was trained for and
how it scored on its held-out test cases, and `dlpvc apply` uses it when --model is omitted."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from pvc_core.apply.model import SHIPPED_MODEL_DIR, load_apply_model
from pvc_core.cli import main
from pvc_core.io import load_image, save_image

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_shipped_model_is_small_and_its_card_is_complete():
    model = SHIPPED_MODEL_DIR / "model.pt"
    assert model.stat().st_size < 50e6
    card = json.loads((SHIPPED_MODEL_DIR / "model_card.json").read_text())
    tf = card["trained_for"]
    assert tf["voxel_mm"] == [4.8] * 3 and tf["isotope"] == "Lu-177" and tf["dataset"] == "RR_n"
    assert tf["reconstruction"]["method"] == "OSEM" and tf["n_train_cases"] > 100
    metrics = card["test_metrics"]
    assert set(metrics["methods"]) == {"none", "iy_truth", "iy_spect", "dl_pvc"}
    assert set(metrics["dl_pvc_vs"]) == {"none", "iy_truth", "iy_spect"}
    loaded = load_apply_model(None, "cpu")
    assert loaded.cfg["architecture"] == card["model_cfg"]["architecture"] and not loaded.takes_ct


def test_apply_without_model_uses_the_shipped_one(tmp_path, capsys):
    act = np.zeros((24, 24, 24), np.float32)
    act[8:14, 9:15, 10:16] = 1.0
    act[15:17, 5:7, 5:7] = 3.0
    affine = np.diag([4.8, 4.8, 4.8, 1.0])
    src = save_image(tmp_path / "spect.nii.gz", gaussian_filter(act, 2.0), affine)
    code = main(["apply", "--input", str(src), "--output", str(tmp_path / "out.nii.gz")])
    assert code == 0, capsys.readouterr().err
    side = json.loads((tmp_path / "out.json").read_text())
    assert side["model"]["name"] == "dlpvc_shipped" and side["research_use_only"]
    # 27 MBq, no stated reconstruction or scatter correction: outside the card's domain, said so
    assert side["domain"]["status"] == "outside" and len(side["warnings"]) == 1
    assert any("total activity" in r for r in side["domain"]["reasons"])
    out, inp = load_image(tmp_path / "out.nii.gz").data, load_image(src).data
    assert abs(out.sum(dtype=np.float64) / inp.sum(dtype=np.float64) - 1) < 1e-6
