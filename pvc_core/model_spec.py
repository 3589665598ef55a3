"""One model's settings, completed once: :class:`ModelSpec`.

A model (``training.default``, a sweep variant, the settings a training job or ``train_model`` is
given) is described by the keys of the schema's ``$defs/model`` (``pvc_core/config_schema.yaml``).
:meth:`ModelSpec.complete` fills in the schema's defaults and validates the result, raising an
:class:`~pvc_core.errors.InputError` that names the offending key; the spec is then frozen, and
every later step (the pipeline's names and fingerprints, the training, the model card, prediction)
reads the same completed values instead of completing them again, as nnU-Net's plans are written
once and read by every later step.

What is derived from a spec lives here too:

* :attr:`ModelSpec.identity`: the spec without its :data:`RUNTIME_KEYS` (what defines the trained
  weights and their use);
* :meth:`ModelSpec.training_spec`: the spec of the training behind a model (normalisation
  :data:`SELECTION_NORMALISATION`, no test-time augmentation): the sum and max models of one
  network share one training;
* :attr:`ModelSpec.training_hash`, :attr:`ModelSpec.training_name`, :attr:`ModelSpec.model_name`:
  readable names plus :data:`NAME_HASH_DIGITS` hex digits of the SHA-256 of the training's identity
  (runtime and inference keys left out), e.g. ``unet_RR_n_full-1a2b3c4d`` (training) and
  ``unet_RR_n_sum_full-1a2b3c4d`` (model, with ``_tta`` before the hash for test-time augmentation);
* :attr:`ModelSpec.inference`: the :data:`INFERENCE_KEYS`, which act only when a trained network is
  applied;
* the starting point of a fine-tuning (``init_from``, :func:`init_weights_file`): in the identity as
  the SHA-256 of the initial weights file (:func:`init_identity`), so that another or a changed
  file is another model, and absent from it when ``init_from`` is not set, so that the names of
  every model trained from scratch are those from before the key.

Plain data (the settings floor, ``docs/architecture.md``): no torch, no pipeline; it reads the
weights file and card of an ``init_from`` model (bytes and JSON) and nothing else.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jsonschema

from pvc_core.config import load_schema
from pvc_core.errors import InputError
from pvc_core.resources import package_path

__all__ = ["ModelSpec", "RUNTIME_KEYS", "INFERENCE_KEYS", "SELECTION_NORMALISATION", "NAME_HASH_DIGITS",
           "INIT_KEYS", "INIT_SOURCE", "model_identity", "init_weights_file", "init_identity", "init_mismatch"]

#: Keys of ``$defs/model`` that choose how fast a training runs, not what it computes (beyond
#: floating-point rounding, as another GPU would): left out of the training's fingerprint, name and
#: checkpoint resume key, recorded in the model card (``training.runtime``).
RUNTIME_KEYS = ("channels_last", "deterministic", "compile", "device", "num_workers")

#: Keys of ``$defs/model`` that act only when a trained network is applied, not in its training.
INFERENCE_KEYS = ("normalisation", "tta")

#: The normalisation under which a training's validation predictions select its best epoch.
SELECTION_NORMALISATION = "sum"

#: Hex digits of the specification hash in model and training names.
NAME_HASH_DIGITS = 8

#: Keys of ``$defs/model`` that fix a network's weights (their names and shapes): a model starts
#: from another's weights (``init_from``) only when both agree on every one.
INIT_KEYS = ("architecture", "channels", "attenuation_channel", "residual", "deep_supervision")

#: The weights file and the card of a model folder, spelled here, on the lowest floor that needs
#: them (``init_from``); :mod:`pvc_core.model_files` re-exports them.
MODEL_WEIGHTS = "model.pt"
MODEL_CARD = "model_card.json"
#: Where an ``init_from`` problem is named (the key as a configuration spells it).
INIT_SOURCE = "training.default.init_from"


def model_identity(spec: Mapping) -> dict:
    """``spec`` without its :data:`RUNTIME_KEYS`: what defines the trained weights and their use.

    ``init_from`` enters as ``{"weights_sha256": ...}`` of the initial weights file
    (:func:`init_identity`), and not at all when it is absent or null.
    """
    identity = {k: copy.deepcopy(v) for k, v in spec.items() if k not in RUNTIME_KEYS}
    if identity.get("init_from") is None:
        identity.pop("init_from", None)
    else:
        identity["init_from"] = init_identity(spec)
    return identity


def init_weights_file(init_from: str) -> Path:
    """The weights file that ``init_from`` names: a ``model.pt`` file, a model folder (its
    ``model.pt``) or the name of a shipped model folder (``pvc_core/models/<name>``, e.g.
    ``dlpvc_shipped``). A relative path is from the current folder (where Snakemake runs).

    Raises :class:`InputError` naming ``training.default.init_from`` when there is none.
    """
    given = Path(str(init_from)).expanduser()
    candidates = [given, given / MODEL_WEIGHTS]
    if len(given.parts) == 1:
        candidates.append(package_path("models") / given.name / MODEL_WEIGHTS)
    for path in candidates:
        if path.is_file():
            return path.resolve()
    raise InputError(f"{init_from}: no model file there (give a model.pt, a model folder holding one, or the name "
                     "of a shipped model such as dlpvc_shipped)", INIT_SOURCE)


@functools.lru_cache(maxsize=16)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file's bytes (cached per path, size and modification time)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


@functools.lru_cache(maxsize=16)
def _card_model_cfg(path: str, size: int, mtime_ns: int) -> dict | None:
    """The ``model_cfg`` of a model card (None when it holds none)."""
    try:
        cfg = json.loads(Path(path).read_text()).get("model_cfg")
    except (OSError, ValueError, AttributeError):
        return None
    return cfg if isinstance(cfg, dict) else None


def _stat_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path), st.st_size, st.st_mtime_ns


def init_mismatch(spec: Mapping, init_cfg: Mapping) -> str | None:
    """What keeps a model of ``spec`` from starting from the weights of a model of ``init_cfg`` (the
    :data:`INIT_KEYS` on which they differ, in words), or None when they agree."""
    differ = [f"{k} {init_cfg.get(k)!r} there, {spec.get(k)!r} here" for k in INIT_KEYS
              if k in init_cfg and init_cfg.get(k) != spec.get(k)]
    return "; ".join(differ) or None


def init_identity(spec: Mapping) -> dict:
    """``{"weights_sha256": ...}`` of the weights file of ``spec['init_from']``: what the identity
    holds of the starting point. Raises :class:`InputError` naming ``training.default.init_from`` when
    the file is missing or its card (beside it, when there is one) describes a network whose
    :data:`INIT_KEYS` differ from ``spec``'s, so that a pipeline refuses it before any job runs."""
    weights = init_weights_file(spec["init_from"])
    card = weights.with_name(MODEL_CARD)
    init_cfg = _card_model_cfg(*_stat_key(card)) if card.is_file() else None
    mismatch = init_mismatch(spec, init_cfg or {})
    if mismatch:
        raise InputError(f"{spec['init_from']}: the initial model's network differs ({mismatch}); the architecture "
                         "and its channels must match", INIT_SOURCE)
    return {"weights_sha256": _file_sha256(*_stat_key(weights))}


@functools.lru_cache(maxsize=1)
def _schema() -> tuple[str, jsonschema.protocols.Validator, frozenset[str]]:
    """(the defaults of ``$defs/model`` as JSON text, its validator, its keys), read once."""
    schema = load_schema()
    model = schema["$defs"]["model"]
    defaults = json.dumps({k: v["default"] for k, v in model["properties"].items() if "default" in v})
    validator = jsonschema.Draft202012Validator({**model, "$defs": schema["$defs"]})
    return defaults, validator, frozenset(model["properties"])


def _canonical(values: Mapping) -> str:
    return json.dumps(values, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, eq=False, repr=False)
class ModelSpec(Mapping):
    """A model's settings (schema ``$defs/model``), completed with the defaults and validated.

    Build one with :meth:`complete`. It is immutable and reads like a mapping (``spec["dataset"]``,
    ``spec.get("tta")``, ``dict(spec)``; a list value is returned as a copy); :meth:`as_dict` gives
    a plain, deep-copied ``dict`` (for JSON, a checkpoint or a job's parameters). Two specs, or a
    spec and a mapping, are equal when their keys and values are.
    """

    _values: Mapping[str, Any]

    def __post_init__(self) -> None:
        values = copy.deepcopy(dict(self._values))
        missing = _schema()[2] - set(values)
        if missing:
            raise ValueError(f"incomplete model spec (no {', '.join(sorted(missing))}); build it with "
                             "ModelSpec.complete")
        object.__setattr__(self, "_values", MappingProxyType(values))

    @classmethod
    def complete(cls, raw: Mapping, source: str) -> ModelSpec:
        """``raw`` with the schema's defaults (``$defs/model``) filled in, validated against it.

        Raises :class:`InputError` naming ``source`` (a file or configuration key) and the offending
        key. A :class:`ModelSpec` is already complete and is returned as it is.
        """
        if isinstance(raw, ModelSpec):
            return raw
        if not isinstance(raw, Mapping):
            raise InputError(f"a model is a mapping of $defs/model keys to values, got {type(raw).__name__}", source)
        defaults, validator, known = _schema()
        values = {**json.loads(defaults), **copy.deepcopy(dict(raw))}
        errors = sorted(validator.iter_errors(values), key=lambda e: list(map(str, e.absolute_path)))
        if errors:
            err = errors[0]
            if err.validator == "additionalProperties":
                key = ", ".join(sorted(map(str, set(values) - known)))
                raise InputError(f"key '{key}': unknown model key (not in $defs/model of the schema)", source)
            key = ".".join(map(str, err.absolute_path)) or "(model)"
            raise InputError(f"key '{key}': {err.message}", source)
        return cls(values)

    # --- reading -------------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return copy.deepcopy(self._values[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __hash__(self) -> int:
        return hash(_canonical(dict(self._values)))

    def __repr__(self) -> str:
        return f"ModelSpec({dict(self._values)!r})"

    def __reduce__(self):
        return (_restore, (self.as_dict(),))

    def as_dict(self) -> dict:
        """A plain ``dict`` of every key (a deep copy: changing it leaves the spec alone)."""
        return copy.deepcopy(dict(self._values))

    # --- what is derived from it ---------------------------------------------------------------
    @property
    def identity(self) -> dict:
        """The spec without its :data:`RUNTIME_KEYS` (:func:`model_identity`)."""
        return model_identity(self._values)

    @property
    def inference(self) -> dict:
        """The :data:`INFERENCE_KEYS`: how the trained network is applied."""
        return {k: self[k] for k in INFERENCE_KEYS}

    def training_spec(self) -> ModelSpec:
        """The spec of the training behind this model: normalisation :data:`SELECTION_NORMALISATION`
        (what selects the best epoch), no test-time augmentation."""
        return self._replace(normalisation=SELECTION_NORMALISATION, tta=False)

    @property
    def training_hash(self) -> str:
        """:data:`NAME_HASH_DIGITS` hex digits of the SHA-256 of the training's identity (without the
        :data:`RUNTIME_KEYS` and :data:`INFERENCE_KEYS`): shared by the models of one training."""
        identity = {k: v for k, v in self.training_spec().identity.items() if k not in INFERENCE_KEYS}
        return hashlib.sha256(_canonical(identity).encode()).hexdigest()[:NAME_HASH_DIGITS]

    @property
    def training_name(self) -> str:
        """Folder name of the training behind the model, e.g. ``unet_RR_n_full-1a2b3c4d``."""
        v = self._values
        return f"{v['architecture']}_{v['dataset']}_{v['input']}-{self.training_hash}"

    @property
    def model_name(self) -> str:
        """Name of the model (training + how it is applied), e.g. ``unet_RR_n_sum_full-1a2b3c4d``, or
        ``unet_RR_n_sum_full_tta-1a2b3c4d`` with test-time augmentation; the hash is the training's."""
        v = self._values
        tta = "_tta" if v["tta"] else ""
        return f"{v['architecture']}_{v['dataset']}_{v['normalisation']}_{v['input']}{tta}-{self.training_hash}"

    def with_changes(self, source: str = "changed model", /, **changes: Any) -> ModelSpec:
        """A new spec with ``changes`` applied, validated (:class:`InputError` naming ``source`` and
        the key)."""
        return ModelSpec.complete({**self._values, **changes}, source)

    def _replace(self, **changes: Any) -> ModelSpec:
        """:meth:`with_changes` without validation, for changes known to be valid."""
        return ModelSpec({**self._values, **changes})


def _restore(values: dict) -> ModelSpec:
    """Unpickle a :class:`ModelSpec` (its values were complete when it was pickled)."""
    return ModelSpec(values)
