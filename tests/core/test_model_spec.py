"""ModelSpec (:mod:`pvc_core.model_spec`): one model's settings, completed once, and the names derived
from it.

``PINNED`` holds every model and training name of config.yaml, config/test.yaml and config/paper.yaml
as :mod:`pvc_core.pipeline.models` computed them before ModelSpec (commit f74d630), when the spec was
completed twice (``pipeline.models.complete_spec`` and ``training.train.complete_model_cfg``). A name
is a results folder (``models/<training>/``, ``predictions/<model>/``), so a changed name would
retrain and repredict everything. A deliberate change of a configuration's model or of the schema's
``$defs/model`` changes them: then update ``PINNED`` and say so in the commit.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
from pathlib import Path

import pytest

from pvc_core.config import load_config, load_schema
from pvc_core.errors import InputError
from pvc_core.model_spec import (INFERENCE_KEYS, NAME_HASH_DIGITS, RUNTIME_KEYS, SELECTION_NORMALISATION,
                                 ModelSpec, model_identity)

REPO = Path(__file__).resolve().parents[2]

#: Model -> its training of every model of each configuration (the report's models first, then the
#: sweep's, as ``model_specs`` orders them), and the sweep's models in order.
PINNED = {
    "config.yaml": {
        "models": {
            "unet_RR_n_sum_full-9634d2b3": "unet_RR_n_full-9634d2b3",
        },
        "sweep": [],
    },
    "config/test.yaml": {
        "models": {
            "unet_RR_n_sum_full-c4e78326": "unet_RR_n_full-c4e78326",
            "unet_RR_nf_sum_full-9fddbe92": "unet_RR_nf_full-9fddbe92",
            "unet_noRR_nf_sum_full-ae807e9a": "unet_noRR_nf_full-ae807e9a",
            "unet_noRR_n_sum_full-7e5bece3": "unet_noRR_n_full-7e5bece3",
        },
        "sweep": [],
    },
    "config/paper.yaml": {
        "models": {
            "r2unet_RR_n_sum_full-71e346c9": "r2unet_RR_n_full-71e346c9",
            "r2unet_RR_nf_sum_full-6821a19b": "r2unet_RR_nf_full-6821a19b",
            "r2unet_noRR_nf_sum_full-2fdfe815": "r2unet_noRR_nf_full-2fdfe815",
            "r2unet_noRR_n_sum_full-2d69744d": "r2unet_noRR_n_full-2d69744d",
            "r2unet_RR_n_max_full-71e346c9": "r2unet_RR_n_full-71e346c9",
            "r2unet_noRR_n_max_full-2d69744d": "r2unet_noRR_n_full-2d69744d",
            "r2unet_RR_n_sum_patch32-d3dfbd38": "r2unet_RR_n_patch32-d3dfbd38",
            "r2unet_noRR_n_sum_patch32-5f30182f": "r2unet_noRR_n_patch32-5f30182f",
            "unet_RR_n_sum_full-588a275a": "unet_RR_n_full-588a275a",
            "attention_unet_RR_n_sum_full-7f5a0126": "attention_unet_RR_n_full-7f5a0126",
            "r2attention_unet_RR_n_sum_full-9782f857": "r2attention_unet_RR_n_full-9782f857",
            "unetpp_RR_n_sum_full-8f2c690d": "unetpp_RR_n_full-8f2c690d",
            "unet_noRR_n_sum_full-dffe22c6": "unet_noRR_n_full-dffe22c6",
            "attention_unet_noRR_n_sum_full-00700c14": "attention_unet_noRR_n_full-00700c14",
            "r2attention_unet_noRR_n_sum_full-c7035bf6": "r2attention_unet_noRR_n_full-c7035bf6",
            "unetpp_noRR_n_sum_full-d5ec5b89": "unetpp_noRR_n_full-d5ec5b89",
        },
        "sweep": ["r2unet_RR_n_sum_full-71e346c9", "r2unet_RR_n_max_full-71e346c9", "r2unet_noRR_n_sum_full-2d69744d", "r2unet_noRR_n_max_full-2d69744d", "r2unet_RR_n_sum_patch32-d3dfbd38", "r2unet_noRR_n_sum_patch32-5f30182f", "unet_RR_n_sum_full-588a275a", "attention_unet_RR_n_sum_full-7f5a0126", "r2attention_unet_RR_n_sum_full-9782f857", "unetpp_RR_n_sum_full-8f2c690d", "unet_noRR_n_sum_full-dffe22c6", "attention_unet_noRR_n_sum_full-00700c14", "r2attention_unet_noRR_n_sum_full-c7035bf6", "unetpp_noRR_n_sum_full-d5ec5b89"],
    },
}

#: The schema's ``$defs/model`` defaults.
DEFAULTS = {k: v["default"] for k, v in load_schema()["$defs"]["model"]["properties"].items() if "default" in v}


# ---- the names of the configurations, unchanged -------------------------------------------------

@pytest.mark.parametrize("config", sorted(PINNED))
def test_model_and_training_names_are_the_pinned_ones(config):
    from pvc_core.pipeline.models import main_models, model_name, model_specs, training_name, trainings

    training = load_config(REPO / config)["training"]
    specs, sweep = model_specs(training)
    pinned = PINNED[config]
    assert {m: training_name(s) for m, s in specs.items()} == pinned["models"]
    assert list(specs) == list(pinned["models"]) and sweep == pinned["sweep"]
    assert all(s.model_name == m for m, s in specs.items())
    assert set(trainings(specs)) == set(pinned["models"].values())
    assert model_name(training["default"]) == next(iter(pinned["models"])) == next(iter(main_models(training)))


def test_a_sweep_with_extras_and_runtime_keys_keeps_its_pinned_names():
    from pvc_core.pipeline.models import model_specs, sweep_stages

    training = load_config(REPO / "config/test.yaml")["training"]
    training["default"].update({"device": "cpu", "num_workers": 0, "compile": False})  # runtime: no new name
    training["sweep"] = {"normalisations": ["sum", "max"], "inputs": ["full", "patch32"],
                         "extras": {"ct": {"attenuation_channel": True}, "tta": {"tta": True},
                                    "masked": {"loss": "masked"}}}
    stages = {stage: [v["model"] for v in variants] for stage, variants in sweep_stages(training).items()}
    assert stages == {
        "normalisation": ["unet_RR_n_sum_full-c4e78326", "unet_RR_n_max_full-c4e78326"],
        "input": ["unet_RR_n_sum_full-c4e78326", "unet_RR_n_sum_patch32-a31b99e6"],
        "extras": ["unet_RR_n_sum_full-c4e78326", "unet_RR_n_sum_full-80a20b0d", "unet_RR_n_sum_full_tta-c4e78326",
                   "unet_RR_n_sum_full-6da72d9d"],
    }
    specs, _ = model_specs(training)
    assert {s.training_name for s in specs.values()} == {
        "unet_RR_n_full-c4e78326", "unet_RR_nf_full-9fddbe92", "unet_noRR_nf_full-ae807e9a", "unet_noRR_n_full-7e5bece3",
        "unet_RR_n_patch32-a31b99e6", "unet_RR_n_full-80a20b0d", "unet_RR_n_full-6da72d9d"}


# ---- completing ---------------------------------------------------------------------------------

def test_complete_fills_every_default_and_keeps_what_is_given():
    spec = ModelSpec.complete({"architecture": "r2unet", "channels": [4, 8]}, "test")
    assert set(spec) == set(DEFAULTS)
    assert spec["architecture"] == "r2unet" and spec["channels"] == [4, 8]
    assert {k: v for k, v in spec.items() if k not in ("architecture", "channels")} == {
        k: v for k, v in DEFAULTS.items() if k not in ("architecture", "channels")}
    assert ModelSpec.complete({}, "test") == DEFAULTS


def test_complete_refuses_an_unknown_key_or_a_bad_value_naming_it_and_the_source():
    with pytest.raises(InputError, match=r"^training.default: key 'depth': unknown model key") as err:
        ModelSpec.complete({"architecture": "unet", "depth": 3}, "training.default")
    assert err.value.source == "training.default" and "\n" not in str(err.value)
    with pytest.raises(InputError, match="key 'epochs': 0 is less than the minimum of 1"):
        ModelSpec.complete({"epochs": 0}, "job.json")
    with pytest.raises(InputError, match="key 'architecture'"):
        ModelSpec.complete({"architecture": "resnet"}, "job.json")
    with pytest.raises(InputError, match="key 'dataset'"):
        ModelSpec.complete({}, "test").with_changes("training.datasets", dataset="RR_x")
    with pytest.raises(InputError, match="mapping"):
        ModelSpec.complete(None, "test")


def test_complete_happens_once():
    spec = ModelSpec.complete({"architecture": "unet"}, "test")
    assert ModelSpec.complete(spec, "again") is spec
    assert ModelSpec.complete(spec.as_dict(), "again") == spec  # completing a completed spec changes nothing
    with pytest.raises(ValueError, match="ModelSpec.complete"):
        ModelSpec({"architecture": "unet"})  # not completed: refused


def test_the_old_completions_are_the_spec():
    from pvc_core.training.train import complete_model_cfg

    cfg = complete_model_cfg({"architecture": "unet", "tta": True})
    assert type(cfg) is dict and cfg == ModelSpec.complete({"architecture": "unet", "tta": True}, "test")


# ---- immutable ----------------------------------------------------------------------------------

def test_a_spec_cannot_be_changed():
    spec = ModelSpec.complete({"channels": [4, 8]}, "test")
    spec["channels"].append(16)  # a copy
    plain = spec.as_dict()
    plain["channels"].append(32)
    plain["epochs"] = 1
    assert spec["channels"] == [4, 8] and spec["epochs"] == DEFAULTS["epochs"]
    with pytest.raises(TypeError):
        spec["epochs"] = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec._values = {}
    with pytest.raises(TypeError):
        spec._values["epochs"] = 1  # a read-only mapping
    changed = spec.with_changes(epochs=3)
    assert changed["epochs"] == 3 and spec["epochs"] == DEFAULTS["epochs"] and changed != spec


def test_a_spec_pickles_copies_and_hashes_by_its_values():
    spec = ModelSpec.complete({"architecture": "unetpp"}, "test")
    for other in (pickle.loads(pickle.dumps(spec)), copy.deepcopy(spec), ModelSpec.complete(spec.as_dict(), "x")):
        assert isinstance(other, ModelSpec) and other == spec and hash(other) == hash(spec)
    assert dict(spec) == spec.as_dict() and spec.get("nothing", 1) == 1


# ---- what is derived from it --------------------------------------------------------------------

def test_runtime_keys_are_left_out_of_the_identity_and_the_names():
    spec = ModelSpec.complete({"architecture": "unet"}, "test")
    fast = spec.with_changes(channels_last=True, deterministic=False, compile=True, device="cpu", num_workers=3)
    assert set(RUNTIME_KEYS) <= set(spec) and not set(RUNTIME_KEYS) & set(spec.identity)
    assert spec.identity == fast.identity == model_identity(spec.as_dict())
    assert (fast.training_name, fast.model_name, fast.training_hash) == (
        spec.training_name, spec.model_name, spec.training_hash)
    assert len(spec.training_hash) == NAME_HASH_DIGITS
    # precision is not a runtime key: other weights, another training
    assert spec.with_changes(precision="bf16").training_name != spec.training_name


def test_tta_and_normalisation_name_the_model_not_the_training():
    spec = ModelSpec.complete({"architecture": "unet", "dataset": "noRR_n"}, "test")
    h = spec.training_hash
    assert spec.training_name == f"unet_noRR_n_full-{h}" and spec.model_name == f"unet_noRR_n_sum_full-{h}"
    tta, peak = spec.with_changes(tta=True), spec.with_changes(normalisation="max")
    assert tta.model_name == f"unet_noRR_n_sum_full_tta-{h}" and peak.model_name == f"unet_noRR_n_max_full-{h}"
    assert tta.training_name == peak.training_name == spec.training_name
    assert tta.inference == {"normalisation": "sum", "tta": True} and set(tta.inference) == set(INFERENCE_KEYS)
    training = peak.with_changes(tta=True).training_spec()
    assert isinstance(training, ModelSpec)
    assert training["normalisation"] == SELECTION_NORMALISATION and training["tta"] is False
    assert training.training_name == spec.training_name
    patches = spec.with_changes(input="patch32")
    assert patches.training_name == f"unet_noRR_n_patch32-{patches.training_hash}" and patches.training_hash != h
    assert spec.with_changes(loss="masked").training_hash != h


def test_the_old_places_reexport_the_same_keys():
    from pvc_core.pipeline import models
    from pvc_core.training import files

    assert models.INFERENCE_KEYS is INFERENCE_KEYS and models.RUNTIME_KEYS is files.RUNTIME_KEYS is RUNTIME_KEYS
    assert models.SELECTION_NORMALISATION == SELECTION_NORMALISATION and models.NAME_HASH_DIGITS == NAME_HASH_DIGITS
    assert models.model_identity is files.model_identity is model_identity
