"""The training checkpoint: what a killed training needs to go on as if it had never stopped.

:func:`~pvc_core.training.train.train_model` writes ``checkpoint.pt`` next to ``model.pt`` after
every epoch (a temporary file, flushed to disk, then renamed over the old one, so a kill never
leaves half a checkpoint). It holds the network, the Adam state, the learning-rate schedule, the
random states of torch (and CUDA), numpy, python and the DataLoader's generator, the best
weights and their validation loss, the history and the number of finished epochs. The data
order and augmentation of an epoch depend only on (seed, epoch) (:mod:`pvc_core.training.dataset`),
so on the CPU a resumed training ends with the same weights, bit for bit, as an uninterrupted one
(tested).

A checkpoint is resumed only by a training of the same *specification*
(:func:`resume_key`): model configuration, training options, seed, the exact training and
validation cases (with their cache fingerprints, i.e. source files, sizes and modification
times), the dlpvc version and the model-file format (bumped when a network changes). One of another specification is ignored with a log line and
overwritten by the new training. An unreadable file or one that is not a dlpvc training
checkpoint is an :class:`~pvc_core.errors.InputError` naming it.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import pvc_core
from pvc_core.errors import InputError
from pvc_core.io.atomic import atomic_path
from pvc_core.specs import flatten
from pvc_core.training.case_cache import CachedCase
from pvc_core.training.predict import CHECKPOINT_VERSION as MODEL_FORMAT_VERSION

#: Identifies a training checkpoint (a model file, ``model.pt``, has format ``dlpvc-model``).
TRAINING_CHECKPOINT_FORMAT = "dlpvc-training-checkpoint"
TRAINING_CHECKPOINT_VERSION = 1

#: Entries every training checkpoint holds.
_REQUIRED = ("resume_key", "epoch", "model", "optimiser", "scheduler", "rng", "best", "history", "seconds")

__all__ = ["TRAINING_CHECKPOINT_FORMAT", "TRAINING_CHECKPOINT_VERSION", "resume_key", "rng_states",
           "restore_rng_states", "save_training_checkpoint", "load_training_checkpoint"]


def _cases_digest(cases: Sequence[CachedCase]) -> str:
    text = "\n".join(f"{c.case_id}\t{c.fingerprint}" for c in cases)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def resume_key(model_cfg: Mapping, options: Mapping, seed: int, train: Sequence[CachedCase],
               val: Sequence[CachedCase]) -> dict:
    """What a checkpoint must have been trained with to be resumed (compared for equality)."""
    return {
        "model_cfg": dict(model_cfg),
        "options": dict(options),
        "seed": int(seed),
        "data": {"n_train": len(train), "train": _cases_digest(train), "n_validation": len(val),
                 "validation": _cases_digest(val)},
        "pvc_core": pvc_core.__version__,
        "format_version": TRAINING_CHECKPOINT_VERSION,
        "model_format_version": MODEL_FORMAT_VERSION,  # bumped when a network's definition changes
    }


def _differences(old: Any, new: Mapping) -> list[str]:
    """Dotted keys whose values differ between two resume keys."""
    a, b = flatten(old if isinstance(old, Mapping) else {}), flatten(new)
    return sorted(k for k in set(a) | set(b) if a.get(k, ...) != b.get(k, ...))


def rng_states(loader_generator: torch.Generator) -> dict:
    """Random states of torch, CUDA (when in use), numpy, python and the DataLoader generator."""
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None,
        "numpy": {"name": name, "keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached)},
        "python": random.getstate(),
        "loader": loader_generator.get_state(),
    }


def restore_rng_states(states: Mapping, loader_generator: torch.Generator) -> None:
    """Set every random state saved by :func:`rng_states`."""
    torch.set_rng_state(states["torch"])
    if states.get("cuda") is not None and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    n = states["numpy"]
    np.random.set_state((n["name"], np.asarray(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    loader_generator.set_state(states["loader"])


def save_training_checkpoint(path: str | os.PathLike, checkpoint: Mapping) -> None:
    """Write ``checkpoint`` (the entries of :data:`_REQUIRED`) atomically to ``path``."""
    path = Path(path)
    missing = [k for k in _REQUIRED if k not in checkpoint]
    if missing:
        raise ValueError(f"training checkpoint lacks {', '.join(missing)}")
    payload = {"format": TRAINING_CHECKPOINT_FORMAT, "format_version": TRAINING_CHECKPOINT_VERSION, **checkpoint}
    with atomic_path(path, replace=True) as tmp, open(tmp, "wb") as fh:
        torch.save(payload, fh)


def load_training_checkpoint(path: str | os.PathLike, key: Mapping,
                             log: Callable[[str], object] = print) -> dict | None:
    """The checkpoint at ``path`` if it was written by a training of specification ``key``.

    ``None`` when there is none, or (with a log line naming what differs) when it belongs to
    another specification. Raises :class:`InputError` naming the file when it cannot be read or
    is not a dlpvc training checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated or foreign files
        raise InputError(f"cannot read training checkpoint ({type(err).__name__}: {err}); delete it to train "
                         f"from the first epoch".splitlines()[0], path) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != TRAINING_CHECKPOINT_FORMAT:
        raise InputError(f"not a dlpvc training checkpoint (no 'format: {TRAINING_CHECKPOINT_FORMAT}' entry); "
                         "move it away to train here", path)
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        raise InputError(f"training checkpoint lacks {', '.join(missing)}; delete it to train from the first "
                         "epoch", path)
    differ = _differences(ckpt["resume_key"], key)
    if differ:
        shown = ", ".join(differ[:5]) + (f" and {len(differ) - 5} more" if len(differ) > 5 else "")
        log(f"{path}: checkpoint of another specification (differs in {shown}); ignored, training from the "
            f"first epoch and overwriting it")
        return None
    return ckpt
