"""bf16 autocast on the CPU (``precision: bf16``): the network in bfloat16, the loss, the activity
conservation and the validation scores in float32 (or float64) on its output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.tiny_cases import tiny_pairs  # noqa: F401 (the fixture)
from pvc_core.io import load_image
from pvc_core.networks import build_network
from pvc_core.training import load_model, predict_image, train_model
from pvc_core.training import train as train_module
from pvc_core.training.predict import autocast_for, cpu_has_bf16, predict_normalised

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: A fastMRI U-Net small enough to train a few epochs in seconds on one thread.
TINY_CFG = {"architecture": "unet", "channels": [4, 8, 16], "epochs": 3, "batch_size": 2,
            "learning_rate": 0.01, "input": "full", "normalisation": "sum"}


@pytest.fixture(scope="module")
def fp32_and_bf16(tiny_pairs, tmp_path_factory):
    """The same training (same seed, cases and settings) in fp32 and in bf16: {precision: (folder, card)}."""
    root = tmp_path_factory.mktemp("precisions")
    out = {}
    for precision in ("fp32", "bf16"):
        card = train_model(tiny_pairs[:2], tiny_pairs[2:3], {**TINY_CFG, "precision": precision}, root / precision,
                           seed=9, log=lambda s: None, device="cpu", cache_dir=root / "cache")
        out[precision] = (root / precision, card)
    return out


def test_autocast_is_bf16_on_the_cpu_for_a_bf16_model_only():
    cpu = torch.device("cpu")
    net = build_network("unet", [4, 8]).eval()
    x = torch.rand(1, 1, 8, 8, 8)
    with torch.no_grad():
        with autocast_for({"precision": "bf16"}, cpu):
            assert net.body(x).dtype == torch.bfloat16
            assert net(x).dtype == torch.float32  # the residual adds the float32 input
        with autocast_for({"precision": "fp32"}, cpu):
            assert net.body(x).dtype == torch.float32
        out = predict_normalised(net, {"precision": "bf16", "input": "full", "channels": [4, 8]},
                                 x[0, 0].numpy(), cpu)
    assert out.dtype == np.float32
    assert isinstance(cpu_has_bf16(), bool)


def test_the_loss_sees_a_float32_output(tiny_pairs, tmp_path, monkeypatch):
    seen = []
    real = train_module.batch_loss

    def spy(name, out, target, alpha):
        seen.append(out.dtype)
        return real(name, out, target, alpha)

    monkeypatch.setattr(train_module, "batch_loss", spy)
    train_model(tiny_pairs[:2], [], {**TINY_CFG, "epochs": 1, "precision": "bf16"}, tmp_path / "m", seed=1,
                log=lambda s: None, device="cpu", cache_dir=tmp_path / "cache")
    assert seen and set(seen) == {torch.float32}


def test_bf16_training_is_close_to_fp32_but_not_identical(fp32_and_bf16):
    (a, card_a), (b, card_b) = fp32_and_bf16["fp32"], fp32_and_bf16["bf16"]
    assert card_a["training"]["precision"] == "fp32" and card_b["training"]["precision"] == "bf16"
    assert card_a["model_cfg"]["precision"] == "fp32" and card_b["model_cfg"]["precision"] == "bf16"
    loss_a, loss_b = card_a["training"]["final_train_loss"], card_b["training"]["final_train_loss"]
    assert loss_a != loss_b and abs(loss_b / loss_a - 1) < 0.1
    wa = torch.load(a / "model.pt", weights_only=True)["state_dict"]
    wb = torch.load(b / "model.pt", weights_only=True)["state_dict"]
    assert all(v.dtype == torch.float32 for v in wb.values())  # autocast keeps the weights in float32
    assert not all(torch.equal(wa[k], wb[k]) for k in wa)


def test_bf16_and_fp32_models_conserve_activity_to_1e6_and_agree(tiny_pairs, fp32_and_bf16):
    image = load_image(tiny_pairs[3][0]).data
    outputs = {}
    for precision, (folder, _) in fp32_and_bf16.items():
        module, cfg = load_model(folder / "model.pt", device="cpu")
        assert cfg["precision"] == precision
        out = predict_image(module, cfg, image, device="cpu")
        assert out.dtype == np.float32 and out.min() >= 0
        assert abs(out.sum(dtype=np.float64) / image.sum(dtype=np.float64) - 1) < 1e-6
        outputs[precision] = out.astype(np.float64)
    diff = np.abs(outputs["bf16"] - outputs["fp32"]).sum() / outputs["fp32"].sum()
    assert 0 < diff < 0.1
