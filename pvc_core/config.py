"""Load and validate a dlpvc configuration against ``config/schema.yaml``.

Validation fills in the schema's defaults, so every consumer sees a complete configuration.
Errors are :class:`~pvc_core.errors.InputError` with one line naming the key, e.g.
``config.yaml: key 'training.default.architecture': 'resnet' is not one of [...]``.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from pvc_core.errors import InputError
from pvc_core.resources import package_path

#: The schema travels with the package (package data) so that ``dlpvc`` works outside the repository;
#: ``config/schema.yaml`` in the repository links to it.
SCHEMA_PATH = package_path("config_schema.yaml")
#: The demo configuration (a few dozen cases on a 64^3 grid of 9.6 mm), package data too: the default
#: of ``dlpvc simulate --config``; ``config.yaml`` in the repository (Snakemake's default) links to it.
DEMO_CONFIG_PATH = package_path("config_demo.yaml")


def load_schema() -> dict:
    """The configuration's JSON schema (as a dict)."""
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
                elif "$ref" in sub and "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def _key_of(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        parts.append(extra[0] if extra else "?")
        return ".".join(parts)
    if error.validator == "required":
        missing = [r for r in error.validator_value if r not in error.instance]
        parts.append(missing[0] if missing else "?")
    return ".".join(parts) if parts else "(top level)"


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        return "unknown key (not in config/schema.yaml)"
    if error.validator == "required":
        return "required key is missing"
    return error.message


def validate_config(config: dict, source: str = "configuration") -> dict:
    """Validate ``config`` in place (defaults filled in) and return it.

    Raises :class:`InputError` with one line naming the first offending key.
    """
    if not isinstance(config, dict):
        raise InputError("the configuration must be a mapping of keys to values", source)
    errors = sorted(_Validator(load_schema()).iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        err = errors[0]
        raise InputError(f"key '{_key_of(err)}': {_message(err)}", source)
    _check_consistency(config, source)
    return config


def _check_consistency(cfg: dict, source: str) -> None:
    """Cross-key checks that a schema cannot express."""
    n_train = cfg["n_cases"] - cfg["split"]["n_test"] - cfg["split"]["n_validation"]
    if n_train < 1:
        raise InputError(
            f"key 'split': n_test ({cfg['split']['n_test']}) + n_validation ({cfg['split']['n_validation']}) "
            f"leaves no training case out of n_cases={cfg['n_cases']}", source)
    if cfg["resolution"]["calibration_cases"] > n_train:
        raise InputError(f"key 'resolution.calibration_cases': {cfg['resolution']['calibration_cases']} "
                         f"exceeds the {n_train} training cases", source)
    beds = cfg["phantom"].get("bed_positions", {})
    if beds and sum(beds.values()) <= 0:
        raise InputError("key 'phantom.bed_positions': probabilities must not all be zero", source)
    lo, hi = cfg["resolution"]["fwhm_search_mm"]
    if not lo < hi:
        raise InputError("key 'resolution.fwhm_search_mm': the lower bound must be below the upper bound", source)


def load_config(path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> dict:
    """Read a YAML configuration, apply ``overrides`` (top-level keys) and validate it."""
    path = Path(path)
    if not path.is_file():
        raise InputError("configuration file not found", path)
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise InputError(f"not valid YAML ({str(err).splitlines()[0]})", path) from None
    if overrides:
        cfg.update(overrides)
    return validate_config(cfg, str(path))
