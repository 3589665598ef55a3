"""What a training writes and what defines it: the file names and the runtime keys.

Plain names, no imports: :mod:`pvc_core.training.train` writes these files and
:mod:`pvc_core.pipeline.paths` / :mod:`pvc_core.pipeline.models` re-export them (the pipeline
stands on training, never the other way round; see ``docs/architecture.md``).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["MODEL_WEIGHTS", "MODEL_CARD", "HISTORY", "TRAINING_CHECKPOINT", "RUNTIME_KEYS", "model_identity"]

MODEL_WEIGHTS = "model.pt"
MODEL_CARD = "model_card.json"
HISTORY = "history.csv"
#: The training's checkpoint beside the model (not a rule output: Snakemake must not delete it).
TRAINING_CHECKPOINT = "checkpoint.pt"

#: Keys of ``$defs/model`` that choose how fast a training runs, not what it computes (beyond
#: floating-point rounding, as another GPU would): left out of the training's fingerprint and of
#: its checkpoint's resume key, recorded in the model card (``training.runtime``).
RUNTIME_KEYS = ("channels_last", "deterministic", "compile", "device", "num_workers")


def model_identity(spec: Mapping) -> dict:
    """``spec`` without its :data:`RUNTIME_KEYS`: what defines the trained weights and their use."""
    return {k: v for k, v in spec.items() if k not in RUNTIME_KEYS}
