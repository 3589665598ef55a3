"""Where a model's files live: the file names and the layout of a model folder.

A *model folder* (:class:`ModelFolder`) holds one trained network and what describes it, as a
MONAI bundle does::

    <folder>/model.pt          the network (weights, model spec, network keywords; pvc_core.training.predict)
    <folder>/model_card.json   what it is and was trained for (apply reads its validity domain)
    <folder>/history.csv       the training's scores per epoch
    <folder>/checkpoint.pt     the training's state after its last epoch (resume; not shipped)

The pipeline keeps its trainings in ``<results>/models/<training>/`` (:mod:`pvc_core.pipeline.paths`),
the training writes the files of its folder (:mod:`pvc_core.training.train`), and a *models
folder* (the shipped one inside the package, :func:`shipped_models_dir`, or ``DLPVC_MODEL_DIR``;
:mod:`pvc_core.apply.model`) holds ``registry.json`` (the default model per reconstruction kind)
and one model folder per model. Every one of them takes these names from here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pvc_core.model_spec import MODEL_CARD, MODEL_WEIGHTS
from pvc_core.resources import package_path

__all__ = ["MODEL_WEIGHTS", "MODEL_CARD", "HISTORY", "TRAINING_CHECKPOINT", "REGISTRY", "ModelFolder",
           "shipped_models_dir", "registry_file", "model_folders"]

# The trained network of a model folder (MODEL_WEIGHTS) and its card (MODEL_CARD, JSON: model
# spec, training, ``trained_for``, validity ``domain``, test metrics), spelled in model_spec.
#: The training's scores per epoch.
HISTORY = "history.csv"
#: The training's checkpoint beside the model (not a rule output: Snakemake must not delete it).
TRAINING_CHECKPOINT = "checkpoint.pt"
#: The file of a models folder naming the default model folder per reconstruction kind.
REGISTRY = "registry.json"


@dataclass(frozen=True)
class ModelFolder:
    """The folder of one model and the paths of its files (nothing is read or checked here)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @classmethod
    def of(cls, weights: str | os.PathLike) -> ModelFolder:
        """The folder of a model file (``--model my_model/model.pt``: its card lies beside it)."""
        return cls(Path(weights).parent)

    @property
    def name(self) -> str:
        """The folder's name (a training's name, or a shipped model's, e.g. ``dlpvc_shipped``)."""
        return self.path.name

    @property
    def weights(self) -> Path:
        return self.path / MODEL_WEIGHTS

    @property
    def card(self) -> Path:
        return self.path / MODEL_CARD

    @property
    def history(self) -> Path:
        return self.path / HISTORY

    @property
    def checkpoint(self) -> Path:
        return self.path / TRAINING_CHECKPOINT


def shipped_models_dir() -> Path:
    """The models folder dlpvc ships (package data, ``pvc_core/models/``)."""
    return package_path("models")


def registry_file(models_dir: str | os.PathLike) -> Path:
    """The registry of a models folder (:data:`REGISTRY`)."""
    return Path(models_dir) / REGISTRY


def model_folders(models_dir: str | os.PathLike) -> list[ModelFolder]:
    """The model folders of a models folder (those with a model file), sorted by name."""
    folder = Path(models_dir)
    if not folder.is_dir():
        return []
    return [m for m in map(ModelFolder, sorted(folder.iterdir())) if m.weights.is_file()]
