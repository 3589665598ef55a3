"""Re-exports, so that older imports keep working: the file names of a model folder live in
:mod:`pvc_core.model_files`, the runtime keys and a spec's identity in :mod:`pvc_core.model_spec`."""

from __future__ import annotations

from pvc_core.model_files import HISTORY, MODEL_CARD, MODEL_WEIGHTS, TRAINING_CHECKPOINT
from pvc_core.model_spec import RUNTIME_KEYS, model_identity

__all__ = ["MODEL_WEIGHTS", "MODEL_CARD", "HISTORY", "TRAINING_CHECKPOINT", "RUNTIME_KEYS", "model_identity"]
