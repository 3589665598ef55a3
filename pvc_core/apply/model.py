"""The model ``dlpvc apply`` uses: a checkpoint with its model card, or the shipped model.

The shipped models are package data, in ``pvc_core/models/<name>/`` (a model folder,
:class:`pvc_core.model_files.ModelFolder`: ``model.pt`` and its ``model_card.json``, trained by the
DAG, e.g. from ``config/shipped.yaml``, and put there by ``scripts/ship_model.py``), found with
:mod:`importlib.resources` (:func:`pvc_core.model_files.shipped_models_dir`), so a plain
``pip install .`` finds them from any folder. ``pvc_core/models/registry.json`` names the
default model for each reconstruction kind (RR today; noRR from [3.4]). ``--model`` takes another
``model.pt`` (its card is read from the same folder when present).

``DLPVC_MODEL_DIR``: when this environment variable is set (and not empty), the folder it names
replaces the shipped models: the same layout (``registry.json`` and one folder per model), read at
each call (:func:`models_dir`). ``dlpvc models`` lists that folder's models and ``dlpvc apply``
without ``--model`` takes the default of its registry; a value that is not a folder is refused
(exit 2) rather than falling back to the shipped models.

Finding a model and reading its card needs no torch (:func:`find_model`), so a call is checked
before any network loads.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from pvc_core.apply.domain import card_domain
from pvc_core.apply.plan import content_digest
from pvc_core.domain import RECONSTRUCTIONS
from pvc_core.errors import InputError
from pvc_core.model_files import ModelFolder, model_folders, registry_file, shipped_models_dir

#: Folder of the models dlpvc ships, inside the package (one folder each: model.pt, model_card.json)
#: with their registry.
MODELS_DIR = shipped_models_dir()
#: The shipped registry, the default model for each reconstruction kind: ``{"default": {"RR": "<folder>"}}``.
REGISTRY_FILE = registry_file(MODELS_DIR)
#: Folder of the shipped RR model.
SHIPPED_MODEL_DIR = MODELS_DIR / "dlpvc_shipped"
#: Environment variable naming a folder (registry.json + model folders) that replaces :data:`MODELS_DIR`.
MODEL_DIR_ENV = "DLPVC_MODEL_DIR"

__all__ = ["MODELS_DIR", "REGISTRY_FILE", "SHIPPED_MODEL_DIR", "MODEL_DIR_ENV", "ModelRef", "ApplyModel",
           "models_dir", "registry", "shipped_models", "find_model", "load_apply_model"]


@dataclass(frozen=True)
class ModelRef:
    """A model file with its card, found without loading the network (no torch)."""

    path: Path
    card: dict | None
    sha256: str

    @property
    def name(self) -> str:
        """The folder name of the model (e.g. ``dlpvc_shipped``)."""
        return self.path.parent.name

    @property
    def domain(self) -> dict:
        return card_domain(self.card)


@dataclass
class ApplyModel:
    """A loaded network with what ``apply`` reports of it."""

    module: object
    cfg: dict
    card: dict | None
    path: Path
    sha256: str
    device: object

    @property
    def name(self) -> str:
        """The folder name of the model (e.g. ``dlpvc_shipped``)."""
        return self.path.parent.name

    @property
    def trained_for(self) -> dict:
        return dict((self.card or {}).get("trained_for") or {})

    @property
    def domain(self) -> dict:
        return card_domain(self.card)

    @property
    def takes_ct(self) -> bool:
        return bool(self.cfg.get("attenuation_channel", False))

    def summary(self) -> dict:
        """The card's summary for the sidecar: model settings, what it was trained for, test metrics."""
        card = self.card or {}
        keys = ("architecture", "dataset", "normalisation", "input", "channels", "epochs", "attenuation_channel", "tta")
        return {"model_cfg": {k: self.cfg.get(k) for k in keys}, "trained_for": self.trained_for,
                "domain": self.domain, "test_metrics": card.get("test_metrics"),
                "best_epoch": (card.get("training") or {}).get("best_epoch")}


def _card(model_path: Path) -> dict | None:
    """The card beside a model file, or None when it is missing or not a JSON object."""
    try:
        card = json.loads(ModelFolder.of(model_path).card.read_text())
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) else None


def models_dir() -> Path:
    """The folder of the installed models: ``$DLPVC_MODEL_DIR`` when set and not empty, else the
    shipped :data:`MODELS_DIR`. Raises :class:`InputError` naming ``DLPVC_MODEL_DIR`` when it is set
    to something that is not a folder."""
    value = os.environ.get(MODEL_DIR_ENV, "")
    if not value.strip():
        return MODELS_DIR
    folder = Path(value).expanduser()
    if not folder.is_dir():
        why = "no such folder" if not folder.exists() else "not a folder"
        raise InputError(f"{value}: {why} (it replaces the shipped models: a folder with registry.json and "
                         "one folder per model; unset it to use the shipped ones)", MODEL_DIR_ENV)
    return folder


def registry() -> dict[str, str]:
    """Reconstruction kind -> folder (under :func:`models_dir`) of the default model for it."""
    try:
        data = json.loads(registry_file(models_dir()).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("default") or {}, dict):
        return {}
    return {k: v for k, v in (data.get("default") or {}).items() if k in RECONSTRUCTIONS and isinstance(v, str)}


def shipped_models() -> list[ModelRef]:
    """Every model folder under :func:`models_dir` (with its card), sorted by name."""
    # an installation without its package data has no models folder: no models
    return [ModelRef(m.weights, _card(m.weights), content_digest(m.weights)) for m in model_folders(models_dir())]


def find_model(path: str | None, reconstruction: str | None) -> ModelRef:
    """The model to run: ``path`` (``--model``), else the registry's default for ``reconstruction``
    (RR when not stated). Raises :class:`InputError` for a missing file and for a reconstruction
    kind without a model, naming the models that exist."""
    if path is not None:
        model_path = Path(path)
        if not str(path).strip():
            raise InputError("empty path; give a model.pt file", "--model")
        if not model_path.is_file():
            raise InputError(f"{model_path}: model file not found" if not model_path.exists()
                             else f"{model_path}: not a file; give the model.pt file", "--model")
        return ModelRef(model_path, _card(model_path), content_digest(model_path))
    folder = models_dir()
    shipped = folder == MODELS_DIR
    defaults = registry()
    kind = reconstruction or "RR"
    if kind not in defaults:
        have = ", ".join(f"{k} ({v})" for k, v in sorted(defaults.items())) or "none"
        whose = "no shipped model" if shipped else f"no model in {MODEL_DIR_ENV}={folder}"
        raise InputError(f"{whose} for {kind} reconstructions (models exist for: {have}); "
                         "give --model with one trained for them, or see dlpvc models", "--reconstruction")
    model_path = ModelFolder(folder / defaults[kind]).weights
    if not model_path.is_file():
        whose = "the shipped model" if shipped else f"{MODEL_DIR_ENV}: the registry's model"
        raise InputError(f"{whose} {model_path} is missing from this installation; give --model", "--model")
    return ModelRef(model_path, _card(model_path), content_digest(model_path))


def load_apply_model(path: str | ModelRef | None, device: str = "auto") -> ApplyModel:
    """Load a model (a :class:`ModelRef`, a ``model.pt`` path, or None: the default RR model) onto ``device``.

    Raises :class:`InputError` naming ``--model`` or ``--device`` for a missing file, a file that
    is not a dlpvc checkpoint or of an incompatible version, and ``cuda`` without a GPU.
    """
    # lazy: torch and the network (~1.2 s) load to run a model; `dlpvc models` and a refused call need neither
    import torch

    from pvc_core.training.predict import load_model, resolve_device

    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f"{device!r}: use auto, cpu or cuda", "--device")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("cuda: torch sees no CUDA GPU on this machine; use --device auto or cpu", "--device")
    ref = path if isinstance(path, ModelRef) else find_model(None if path is None else str(path), None)
    try:
        module, cfg = load_model(ref.path, device=resolve_device(device))
    except InputError as err:
        raise InputError(str(err), "--model") from None
    return ApplyModel(module, cfg, ref.card, ref.path, ref.sha256, next(module.parameters()).device)
