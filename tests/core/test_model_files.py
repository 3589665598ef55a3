"""Where a model's files live (:mod:`pvc_core.model_files`): one model folder's layout, a models
folder (registry and model folders), and every writer and reader using them."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pvc_core.model_files import (HISTORY, MODEL_CARD, MODEL_WEIGHTS, REGISTRY, TRAINING_CHECKPOINT, ModelFolder,
                                  model_folders, registry_file, shipped_models_dir)

REPO = Path(__file__).resolve().parents[2]


def test_a_model_folder_names_its_files(tmp_path):
    folder = ModelFolder(str(tmp_path / "unet_RR_n_full-1a2b3c4d"))
    assert folder.path == tmp_path / "unet_RR_n_full-1a2b3c4d" and folder.name == "unet_RR_n_full-1a2b3c4d"
    assert (folder.weights.name, folder.card.name, folder.history.name, folder.checkpoint.name) == (
        "model.pt", "model_card.json", "history.csv", "checkpoint.pt") == (
        MODEL_WEIGHTS, MODEL_CARD, HISTORY, TRAINING_CHECKPOINT)
    assert {folder.weights.parent, folder.card.parent, folder.history.parent, folder.checkpoint.parent} == {folder.path}
    assert ModelFolder.of(tmp_path / "mine" / "my.pt") == ModelFolder(tmp_path / "mine")


def test_a_models_folder_lists_the_folders_with_a_model_file_sorted(tmp_path):
    for name in ("b", "a", "empty"):
        (tmp_path / name).mkdir()
    for name in ("b", "a"):
        ModelFolder(tmp_path / name).weights.write_bytes(b"x")
    (tmp_path / "stray.pt").write_bytes(b"x")
    assert [m.name for m in model_folders(tmp_path)] == ["a", "b"]
    assert model_folders(tmp_path / "missing") == []
    assert registry_file(tmp_path) == tmp_path / REGISTRY == tmp_path / "registry.json"


def test_the_shipped_models_and_the_package_data_use_these_names():
    from pvc_core.apply.model import MODELS_DIR, REGISTRY_FILE, SHIPPED_MODEL_DIR, shipped_models

    assert MODELS_DIR == shipped_models_dir() and REGISTRY_FILE == registry_file(MODELS_DIR)
    assert [m.path for m in shipped_models()] == [m.weights for m in model_folders(MODELS_DIR)]
    assert ModelFolder(SHIPPED_MODEL_DIR).weights.is_file() and ModelFolder(SHIPPED_MODEL_DIR).card.is_file()
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert {f"models/{REGISTRY}", f"models/*/{MODEL_WEIGHTS}", f"models/*/{MODEL_CARD}"} <= set(package_data["pvc_core"])


def test_the_pipeline_keeps_a_training_in_a_model_folder(tmp_path):
    from pvc_core.pipeline.paths import RunLayout

    folder = RunLayout(tmp_path).model_folder("unet_RR_n_full-1a2b3c4d")
    assert folder.path == tmp_path / "models" / "unet_RR_n_full-1a2b3c4d"
    assert (folder.weights, folder.card, folder.history) == (ModelFolder(folder.path).weights,
                                                              ModelFolder(folder.path).card, ModelFolder(folder.path).history)
