"""The model ``dlpvc apply`` uses: a checkpoint with its model card, or the shipped model.

The shipped model lives in the repository at ``models/dlpvc_shipped/`` (``model.pt`` and its
``model_card.json``), trained by the DAG from ``config/shipped.yaml``; ``--model`` takes another
``model.pt`` (its card is read from the same folder when present).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pvc_core.errors import InputError

#: Folder of the shipped model (model.pt, model_card.json), relative to the repository root.
SHIPPED_MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "dlpvc_shipped"

__all__ = ["SHIPPED_MODEL_DIR", "ApplyModel", "load_apply_model"]


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
    def takes_ct(self) -> bool:
        return bool(self.cfg.get("attenuation_channel", False))

    def summary(self) -> dict:
        """The card's summary for the sidecar: model settings, what it was trained for, test metrics."""
        card = self.card or {}
        keys = ("architecture", "dataset", "normalisation", "input", "channels", "epochs", "attenuation_channel", "tta")
        return {"model_cfg": {k: self.cfg.get(k) for k in keys}, "trained_for": self.trained_for,
                "test_metrics": card.get("test_metrics"), "best_epoch": (card.get("training") or {}).get("best_epoch")}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_apply_model(path: str | None, device: str = "auto") -> ApplyModel:
    """Load ``path`` (a dlpvc ``model.pt``; ``None``: the shipped model) onto ``device``.

    Raises :class:`InputError` naming ``--model`` or ``--device`` for a missing file, a file that
    is not a dlpvc checkpoint or of an incompatible version, and ``cuda`` without a GPU.
    """
    import torch

    from pvc_core.io import read_json
    from pvc_core.training.predict import load_model, resolve_device

    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f"{device!r}: use auto, cpu or cuda", "--device")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("cuda: torch sees no CUDA GPU on this machine; use --device auto or cpu", "--device")
    model_path = Path(path) if path else SHIPPED_MODEL_DIR / "model.pt"
    if path is None and not model_path.is_file():
        raise InputError(f"the shipped model {model_path} is missing from this installation; give --model", "--model")
    try:
        module, cfg = load_model(model_path, device=resolve_device(device))
    except InputError as err:
        raise InputError(str(err), "--model") from None
    card_path = model_path.parent / "model_card.json"
    card = None
    if card_path.is_file():
        try:
            card = read_json(card_path)
        except (OSError, ValueError):
            card = None
    return ApplyModel(module, cfg, card, model_path, _sha256(model_path), next(module.parameters()).device)
