"""The model ``dlpvc apply`` uses: a checkpoint with its model card, or the shipped model.

The shipped models live in the repository under ``models/<name>/`` (``model.pt`` and its
``model_card.json``, trained by the DAG, e.g. from ``config/shipped.yaml``); ``models/registry.json``
names the default model for each reconstruction kind (RR today; noRR from [3.4]). ``--model``
takes another ``model.pt`` (its card is read from the same folder when present). Finding a model
and reading its card needs no torch (:func:`find_model`), so a call is checked before any
network loads.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pvc_core.apply.domain import card_domain
from pvc_core.domain import RECONSTRUCTIONS
from pvc_core.errors import InputError

#: Folder of the models dlpvc ships (one folder each: model.pt, model_card.json) and their registry.
MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
#: The default model for each reconstruction kind: ``{"default": {"RR": "<folder>"}}``.
REGISTRY_FILE = MODELS_DIR / "registry.json"
#: Folder of the shipped RR model.
SHIPPED_MODEL_DIR = MODELS_DIR / "dlpvc_shipped"

__all__ = ["MODELS_DIR", "REGISTRY_FILE", "SHIPPED_MODEL_DIR", "ModelRef", "ApplyModel", "registry", "shipped_models",
           "find_model", "load_apply_model"]


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

    @property
    def reconstruction(self) -> str | None:
        """The reconstruction kind the model is for (its domain), or None when its card does not say."""
        return (self.domain.get("reconstruction") or {}).get("kind")


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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _card(model_path: Path) -> dict | None:
    card_path = model_path.parent / "model_card.json"
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) else None


def registry() -> dict[str, str]:
    """Reconstruction kind -> folder (under :data:`MODELS_DIR`) of the default model for it."""
    try:
        data = json.loads(REGISTRY_FILE.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in (data.get("default") or {}).items() if k in RECONSTRUCTIONS}


def shipped_models() -> list[ModelRef]:
    """Every model folder under :data:`MODELS_DIR` (with its card), sorted by name."""
    if not MODELS_DIR.is_dir():
        return []
    return [ModelRef(p / "model.pt", _card(p / "model.pt"), _sha256(p / "model.pt"))
            for p in sorted(MODELS_DIR.iterdir()) if (p / "model.pt").is_file()]


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
        return ModelRef(model_path, _card(model_path), _sha256(model_path))
    defaults = registry()
    kind = reconstruction or "RR"
    if kind not in defaults:
        have = ", ".join(f"{k} ({v})" for k, v in sorted(defaults.items())) or "none"
        raise InputError(f"no shipped model for {kind} reconstructions (models exist for: {have}); "
                         "give --model with one trained for them, or see dlpvc models", "--reconstruction")
    model_path = MODELS_DIR / defaults[kind] / "model.pt"
    if not model_path.is_file():
        raise InputError(f"the shipped model {model_path} is missing from this installation; give --model", "--model")
    return ModelRef(model_path, _card(model_path), _sha256(model_path))


def load_apply_model(path: str | ModelRef | None, device: str = "auto") -> ApplyModel:
    """Load a model (a :class:`ModelRef`, a ``model.pt`` path, or None: the default RR model) onto ``device``.

    Raises :class:`InputError` naming ``--model`` or ``--device`` for a missing file, a file that
    is not a dlpvc checkpoint or of an incompatible version, and ``cuda`` without a GPU.
    """
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
