"""Fine-tuning (``init_from``): the initial weights, the refusal of another network, the card and
the identity (:mod:`pvc_core.training.init_from`, :func:`pvc_core.model_spec.init_identity`)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import pytest
import torch

from helpers.tiny_cases import tiny_pairs  # noqa: F401 (the fixture)
from pvc_core.errors import InputError
from pvc_core.model_files import MODEL_CARD, MODEL_WEIGHTS, shipped_models_dir
from pvc_core.model_spec import ModelSpec, init_weights_file
from pvc_core.networks import build_network
from pvc_core.training import train_model
from pvc_core.training.init_from import initial_weights, load_initial_weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: A fastMRI U-Net small enough to train a few epochs in seconds on one thread.
TINY_CFG = {"architecture": "unet", "channels": [4, 8, 16], "epochs": 2, "batch_size": 2,
            "learning_rate": 0.01, "input": "full", "normalisation": "sum"}
QUIET = dict(seed=4, log=lambda s: None, device="cpu")


@pytest.fixture(scope="module")
def base_model(tiny_pairs, tmp_path_factory):
    """A tiny model trained from scratch (its folder)."""
    out = tmp_path_factory.mktemp("base") / "base"
    train_model(tiny_pairs[:2], tiny_pairs[2:3], {**TINY_CFG, "epochs": 1}, out, cache_dir=out.parent / "cache",
                **QUIET)
    return out


def _weights(folder):
    return torch.load(folder / MODEL_WEIGHTS, weights_only=True)["state_dict"]


def test_a_zero_learning_rate_gives_the_initial_weights_back_exactly(tiny_pairs, base_model, tmp_path):
    """lr 1e-300 is 0 in float32: Adam moves no weight, so the kept weights are the initial ones, bit
    for bit (the schema's learning_rate is > 0; this is its smallest step); with lr 0.01 they move."""
    cfg = {**TINY_CFG, "init_from": str(base_model)}
    still = train_model(tiny_pairs[:2], tiny_pairs[2:3], {**cfg, "learning_rate": 1e-300}, tmp_path / "still",
                        cache_dir=tmp_path / "cache", **QUIET)
    init, got = _weights(base_model), _weights(tmp_path / "still")
    assert set(got) == set(init) and all(torch.equal(got[k], init[k]) for k in init)
    assert still["training"]["epochs"] == 2
    train_model(tiny_pairs[:2], tiny_pairs[2:3], cfg, tmp_path / "moved", cache_dir=tmp_path / "cache", **QUIET)
    moved = _weights(tmp_path / "moved")
    assert not all(torch.equal(moved[k], init[k]) for k in init)


def test_the_initial_weights_replace_the_random_ones_and_fit_only_their_network(base_model):
    initial = initial_weights(ModelSpec.complete({**TINY_CFG, "init_from": str(base_model / MODEL_WEIGHTS)}, "t"))
    torch.manual_seed(0)
    net = build_network("unet", TINY_CFG["channels"])
    load_initial_weights(net, initial)
    init = _weights(base_model)
    assert all(torch.equal(v, init[k]) for k, v in net.state_dict().items())
    assert initial_weights(ModelSpec.complete(TINY_CFG, "t")) is None
    with pytest.raises(InputError, match=r"^training.default.init_from: .*its weights do not fit this network"):
        load_initial_weights(build_network("unet", [4, 8]), initial)


@pytest.mark.parametrize("change, words", [({"channels": [4, 8]}, "channels [4, 8, 16] there, [4, 8] here"),
                                           ({"architecture": "resunet"}, "architecture 'unet' there, 'resunet' here"),
                                           ({"attenuation_channel": True}, "attenuation_channel False there")])
def test_another_network_is_refused_in_one_line_naming_the_key(tiny_pairs, base_model, tmp_path, change, words):
    cfg = {**TINY_CFG, **change, "init_from": str(base_model)}
    with pytest.raises(InputError, match=r"^training.default.init_from: .*the initial model's network differs") as err:
        train_model(tiny_pairs[:2], [], cfg, tmp_path / "out", cache_dir=tmp_path / "cache", **QUIET)
    assert words in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()  # refused before any work
    with pytest.raises(InputError, match=r"^training.default.init_from: .*network differs"):
        ModelSpec.complete(cfg, "t").training_name  # the pipeline refuses it when it names the training
    card = base_model / MODEL_CARD
    (tmp_path / "nocard").mkdir()
    shutil.copy(base_model / MODEL_WEIGHTS, tmp_path / "nocard")  # no card: the checkpoint's own spec decides
    with pytest.raises(InputError, match=r"network differs"):
        train_model(tiny_pairs[:2], [], {**cfg, "init_from": str(tmp_path / "nocard")}, tmp_path / "o",
                    cache_dir=tmp_path / "cache", **QUIET)
    assert card.is_file()


def test_a_refused_init_from_exits_2_with_one_line(tiny_pairs, base_model, tmp_path):
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"train_model": {
        "train_pairs": [list(map(str, p)) for p in tiny_pairs[:2]], "val_pairs": [], "seed": 1,
        "model_cfg": {**TINY_CFG, "channels": [4, 8], "init_from": str(base_model)}, "out_dir": str(tmp_path / "o")}}))
    run = subprocess.run([sys.executable, "-m", "pvc_core.training", str(job)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "training.default.init_from" in run.stderr and "channels" in run.stderr


def test_a_missing_or_foreign_init_model_is_refused_naming_the_key(tiny_pairs, tmp_path):
    with pytest.raises(InputError, match=r"^training.default.init_from: .*nowhere: no model file there"):
        ModelSpec.complete({**TINY_CFG, "init_from": str(tmp_path / "nowhere")}, "t").identity
    (tmp_path / "foreign").mkdir()
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign" / MODEL_WEIGHTS)
    with pytest.raises(InputError, match=r"^training.default.init_from: .*not a dlpvc model file"):
        train_model(tiny_pairs[:2], [], {**TINY_CFG, "init_from": str(tmp_path / "foreign")}, tmp_path / "o",
                    cache_dir=tmp_path / "cache", **QUIET)


def test_the_card_records_the_initial_model_and_its_digest(tiny_pairs, base_model, tmp_path):
    card = train_model(tiny_pairs[:2], [], {**TINY_CFG, "epochs": 1, "init_from": str(base_model)}, tmp_path / "ft",
                       cache_dir=tmp_path / "cache", **QUIET)
    record = card["training"]["init_from"]
    digest = hashlib.sha256((base_model / MODEL_WEIGHTS).read_bytes()).hexdigest()
    assert record["weights_sha256"] == digest and record["weights"] == str((base_model / MODEL_WEIGHTS).resolve())
    assert record["model"] == base_model.name and record["architecture"] == "unet" and record["channels"] == [4, 8, 16]
    assert card["model_cfg"]["init_from"] == str(base_model)
    assert json.loads((tmp_path / "ft" / MODEL_CARD).read_text())["training"]["init_from"] == record
    scratch = train_model(tiny_pairs[:2], [], {**TINY_CFG, "epochs": 1}, tmp_path / "s", cache_dir=tmp_path / "cache",
                          **QUIET)
    assert scratch["training"]["init_from"] is None


def test_the_identity_holds_the_weights_digest_not_the_path(base_model, tmp_path):
    scratch = ModelSpec.complete(TINY_CFG, "t")
    tuned = scratch.with_changes(init_from=str(base_model))
    assert "init_from" not in scratch.identity  # absent: the names of scratch models are those from before the key
    assert tuned.identity["init_from"] == {
        "weights_sha256": hashlib.sha256((base_model / MODEL_WEIGHTS).read_bytes()).hexdigest()}
    assert tuned.training_name != scratch.training_name
    moved = tmp_path / "moved"
    shutil.copytree(base_model, moved, ignore=shutil.ignore_patterns("checkpoint.pt", "cache"))
    assert scratch.with_changes(init_from=str(moved / MODEL_WEIGHTS)).training_name == tuned.training_name
    state = _weights(moved)
    state = {k: v + 1 if k.endswith("gain") else v for k, v in state.items()}
    ckpt = torch.load(moved / MODEL_WEIGHTS, weights_only=True)
    torch.save({**ckpt, "state_dict": state}, moved / MODEL_WEIGHTS)  # a changed file: another model
    assert scratch.with_changes(init_from=str(moved)).training_name not in (tuned.training_name,
                                                                            scratch.training_name)


def test_the_shipped_model_is_found_by_name_and_fits_its_own_network():
    shipped = shipped_models_dir() / "dlpvc_shipped" / MODEL_WEIGHTS
    assert init_weights_file("dlpvc_shipped") == shipped.resolve()
    assert init_weights_file(str(shipped.parent)) == init_weights_file(str(shipped)) == shipped.resolve()
    cfg = json.loads((shipped.parent / MODEL_CARD).read_text())["model_cfg"]
    spec = ModelSpec.complete({**cfg, "init_from": "dlpvc_shipped", "dataset": "noRR_n"}, "t")
    assert spec.identity["init_from"]["weights_sha256"] == hashlib.sha256(shipped.read_bytes()).hexdigest()
    initial = initial_weights(spec)
    assert initial.record["model"] == "dlpvc_shipped" and "shipped_as" in initial.record
    with pytest.raises(InputError, match="channels"):
        ModelSpec.complete({**cfg, "channels": [4, 8], "init_from": "dlpvc_shipped"}, "t").identity
