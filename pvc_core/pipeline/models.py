"""The models a configuration trains: the default and every combination of ``training.sweep``."""

from __future__ import annotations

from itertools import product
from typing import Mapping

from pvc_core.pipeline.paths import model_name

#: Keys of ``$defs/model`` that choose how fast a training runs, not what it computes (beyond
#: floating-point rounding, as another GPU would): left out of the training's fingerprint and of
#: its checkpoint's resume key, recorded in the model card (``training.runtime``).
RUNTIME_KEYS = ("channels_last", "deterministic", "compile", "device", "num_workers")

_SWEEP_KEYS = {"architectures": "architecture", "datasets": "dataset", "normalisations": "normalisation",
               "inputs": "input"}


def model_identity(spec: Mapping) -> dict:
    """``spec`` without its :data:`RUNTIME_KEYS`: what defines the trained weights."""
    return {k: v for k, v in spec.items() if k not in RUNTIME_KEYS}


def model_specs(training: Mapping) -> tuple[dict[str, dict], list[str]]:
    """(name -> model specification of every model, names of the sweep's models in order).

    A sweep key left out takes the default model's value; the default model comes first.
    """
    base = dict(training["default"])
    specs = {model_name(base): base}
    sweep_names: list[str] = []
    sweep = training.get("sweep")
    if sweep:
        keys = list(_SWEEP_KEYS)
        values = [sweep.get(k, [base[_SWEEP_KEYS[k]]]) for k in keys]
        for combo in product(*values):
            spec = {**base, **{_SWEEP_KEYS[k]: v for k, v in zip(keys, combo)}}
            name = model_name(spec)
            specs[name] = spec
            if name not in sweep_names:
                sweep_names.append(name)
    return specs, sweep_names
