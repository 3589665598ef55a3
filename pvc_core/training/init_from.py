"""Fine-tuning: the weights a training starts from when its model sets ``init_from``.

``init_from`` names a trained model (a ``model.pt``, its folder, or a shipped model's name;
:func:`pvc_core.model_spec.init_weights_file`). The training builds its network as always (same
seed, same random draws) and then replaces every weight by the initial model's, before the first
epoch; a resumed training takes the checkpoint's weights instead, as without ``init_from``. The
optimiser (Adam) and the learning-rate schedule start afresh: only the weights are carried over.

The initial model must describe the same network: the :data:`~pvc_core.model_spec.INIT_KEYS`
(architecture, channels, attenuation channel, residual output, deep supervision) of its
checkpoint must equal the training's, and its weights must fit; anything else is an
:class:`~pvc_core.errors.InputError` in one line naming ``init_from`` and what differs. The SHA-256
of the bytes read is recorded in the model card (``training.init_from``) beside the file and the
initial model's card entries that say what it is.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from pvc_core.errors import InputError
from pvc_core.model_files import ModelFolder
from pvc_core.model_spec import INIT_SOURCE, init_mismatch, init_weights_file
from pvc_core.training.predict import CHECKPOINT_FORMAT

__all__ = ["InitialWeights", "initial_weights", "load_initial_weights"]

@dataclass(frozen=True)
class InitialWeights:
    """The state dict a fine-tuning starts from and what the model card records of it."""

    state_dict: Mapping[str, torch.Tensor]
    record: dict


def initial_weights(model_cfg: Mapping) -> InitialWeights | None:
    """The initial weights of a completed model configuration with ``init_from`` (None without).

    Raises :class:`InputError` naming ``training.default.init_from`` for a missing or unreadable
    file, a file that is not a dlpvc model, and a network whose
    :data:`~pvc_core.model_spec.INIT_KEYS` differ from ``model_cfg``'s.
    """
    if model_cfg.get("init_from") is None:
        return None
    path = init_weights_file(model_cfg["init_from"])
    data = path.read_bytes()
    try:
        ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt or foreign files
        raise InputError(f"{path}: cannot read it as a dlpvc model ({type(err).__name__}: {err})".splitlines()[0],
                         INIT_SOURCE) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT or "state_dict" not in ckpt:
        raise InputError(f"{path}: not a dlpvc model file (no 'format: {CHECKPOINT_FORMAT}' entry)", INIT_SOURCE)
    init_cfg = dict(ckpt.get("model_cfg") or {})
    mismatch = init_mismatch(model_cfg, init_cfg)
    if mismatch:
        raise InputError(f"{path}: the initial model's network differs ({mismatch}); the architecture and its "
                         "channels must match", INIT_SOURCE)
    folder = ModelFolder.of(path)
    record = {"weights": str(path), "weights_sha256": hashlib.sha256(data).hexdigest(), "model": folder.name,
              **{k: init_cfg.get(k) for k in ("architecture", "channels", "dataset", "precision")}}
    card = _card(folder)
    if card is not None and "shipped_as" in card:
        record["shipped_as"] = card["shipped_as"]
    return InitialWeights(ckpt["state_dict"], record)


def load_initial_weights(module: torch.nn.Module, initial: InitialWeights) -> None:
    """Put the initial weights into ``module`` (every parameter and buffer; :class:`InputError`
    naming ``init_from`` when they do not fit)."""
    try:
        module.load_state_dict(initial.state_dict)
    except RuntimeError as err:
        raise InputError(f"{initial.record['weights']}: its weights do not fit this network "
                         f"({str(err).splitlines()[0]})", INIT_SOURCE) from None


def _card(folder: ModelFolder) -> dict | None:
    """The initial model's card, or None when it has none that reads as a JSON object."""
    try:
        card = json.loads(folder.card.read_text())
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) else None
