"""Shipping a model: a trained-only run's model with test metrics from a separate test set, and the
registry that makes it `dlpvc apply`'s default for its reconstruction kind."""

from __future__ import annotations

import json
import shutil

import pytest

from pvc_core.apply.model import MODELS_DIR
from pvc_core.apply.ship import set_default, ship
from pvc_core.model_files import ModelFolder
from pvc_core.pipeline.paths import RunLayout

SHIPPED = ModelFolder(MODELS_DIR / "dlpvc_shipped")


def _run_with_a_model(tmp_path, training="unet_noRR_n_full-0123abcd"):
    folder = RunLayout(tmp_path / "run").model_folder(training)
    folder.path.mkdir(parents=True)
    shutil.copyfile(SHIPPED.weights, folder.weights)
    card = json.loads(SHIPPED.card.read_text())
    for key in ("domain", "test_metrics", "shipped_as"):
        card.pop(key, None)
    card["trained_for"]["reconstruction"]["name"] = "noRR"
    folder.card.write_text(json.dumps(card))
    return RunLayout(tmp_path / "run"), training


def test_a_trained_only_model_ships_with_its_test_metrics_and_a_domain(tmp_path):
    layout, training = _run_with_a_model(tmp_path)
    metrics = {"n_cases": 50, "methods": {"none": {"vaa_pct_mean": 10.0}}}
    card = ship(layout, tmp_path / "models" / "dlpvc_norr", training=training, metrics=metrics)
    out = ModelFolder(tmp_path / "models" / "dlpvc_norr")
    assert out.weights.read_bytes() == SHIPPED.weights.read_bytes()
    saved = json.loads(out.card.read_text())
    assert saved == json.loads(json.dumps(card)) and saved["test_metrics"] == metrics
    assert saved["shipped_as"]["training"] == training and saved["domain"]["reconstruction"]["kind"] == "noRR"


def test_shipping_a_named_training_needs_metrics_and_an_existing_model(tmp_path):
    layout, training = _run_with_a_model(tmp_path)
    with pytest.raises(ValueError, match="test metrics"):
        ship(layout, tmp_path / "out", training=training)
    with pytest.raises(ValueError, match="no such model"):
        ship(layout, tmp_path / "out", training="unet_RR_n_full-missing", metrics={})
    assert not (tmp_path / "out").exists()


def test_set_default_changes_one_kind_and_keeps_the_others(tmp_path):
    models = tmp_path / "models"
    for name in ("old_rr", "new_norr"):
        (models / name).mkdir(parents=True)
        shutil.copyfile(SHIPPED.weights, ModelFolder(models / name).weights)
    (models / "registry.json").write_text(json.dumps({"note": "kept", "default": {"RR": "old_rr"}}))
    data = set_default(models, "noRR", "new_norr")
    assert data == json.loads((models / "registry.json").read_text())
    assert data == {"note": "kept", "default": {"RR": "old_rr", "noRR": "new_norr"}}
    with pytest.raises(ValueError, match="reconstruction kind"):
        set_default(models, "PET", "new_norr")
    with pytest.raises(ValueError, match="no model there"):
        set_default(models, "RR", "absent")
