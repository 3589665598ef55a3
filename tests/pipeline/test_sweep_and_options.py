"""The staged sweep's plan and statistics, the model options beyond the paper (CT channel, masked
loss, test-time augmentation) and the schema's training knobs (known answers, seconds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.ndimage import gaussian_filter

from pvc_core.config import load_config
from pvc_core.domain import dl_method
from pvc_core.errors import InputError
from pvc_core.io import save_image
from pvc_core.networks import ARCHITECTURES, build_network
from pvc_core.pipeline.models import model_specs, sweep_stages, training_name, trainings
from pvc_core.pipeline.sweep_tables import COLUMNS, compare_stage, holm
from pvc_core.training import load_model, predict_image, train_model
from pvc_core.training.augmentation import inverse_symmetry, symmetries, symmetry
from pvc_core.training.losses import W_GRADIENT, W_HOT, W_SOFT_VAA, batch_loss, per_sample_loss, soft_miss_share
from pvc_core.training.train import network_kwargs
from pvc_core.training.train import complete_model_cfg

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "config" / "paper.yaml"


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny networks on one thread


# ---- the staged sweep ---------------------------------------------------------------------------

def test_paper_sweep_plans_each_distinct_training_once():
    training = load_config(PAPER)["training"]
    stages = sweep_stages(training)
    assert list(stages) == ["normalisation", "input", "architecture"]
    specs, sweep = model_specs(training)
    # normalisation: sum+max of r2unet full on 2 datasets (2 trainings); input: + patch32 (2);
    # architecture: + the 4 other architectures (8): 12 trainings, 14 models
    assert len(trainings({m: specs[m] for m in sweep})) == 12
    assert len(sweep) == 14
    norm = stages["normalisation"]
    assert {v["variant"] for v in norm} == {"sum", "max"}
    assert len({training_name(v["spec"]) for v in norm}) == 2  # one per dataset: sum and max share it
    arch = stages["architecture"]
    assert {v["variant"] for v in arch} == set(ARCHITECTURES) - {"resunet"}
    assert {v["dataset"] for v in arch} == {"RR_n", "noRR_n"}


def test_extras_stage_compares_each_variant_with_the_default():
    training = {"default": {"architecture": "unet", "epochs": 2},
                "sweep": {"extras": {"ct": {"attenuation_channel": True}, "tta": {"tta": True}}}}
    stages = sweep_stages(training)
    assert list(stages) == ["extras"]
    labels = [v["variant"] for v in stages["extras"]]
    assert labels == ["default", "ct", "tta"]
    by = {v["variant"]: v for v in stages["extras"]}
    assert by["tta"]["model"].split("-")[0].endswith("_tta")
    assert training_name(by["tta"]["spec"]) == training_name(by["default"]["spec"])  # inference only
    assert training_name(by["ct"]["spec"]) != training_name(by["default"]["spec"])
    assert by["default"]["spec"]["epochs"] == 2 and by["ct"]["spec"]["epochs"] == 2


def test_a_stage_with_one_value_is_left_out():
    assert sweep_stages({"default": {}, "sweep": {"inputs": ["full"], "normalisations": ["sum", "max"]}}).keys() == {
        "normalisation"}


def test_holm_adjustment_known_answer():
    # m = 3: sorted 0.01, 0.02, 0.04 -> 0.03, 0.04, 0.04 (monotone)
    np.testing.assert_allclose(holm([0.04, 0.01, 0.02]), [0.04, 0.03, 0.04])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])


def _metrics(models: dict[str, float], n: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for case in range(n):
        noise = rng.normal(0, 0.001)
        for model, vaa in models.items():
            rows.append({"case": case, "dataset": "RR_n", "method": dl_method(model), "ssim": 0.9 + noise,
                         "nrmse_pct": 10 - vaa / 10 + noise + 0.01 * case, "vaa_pct": vaa + case * 0.1 + noise,
                         "ad_pct": 0.3})
    return pd.DataFrame(rows)


def test_stage_table_finds_the_better_variant_and_calls_equal_ones_not_significant():
    variants = [{"dataset": "RR_n", "variant": v, "model": f"m_{v}"} for v in ("a", "b", "c")]
    metrics = _metrics({"m_a": 20.0, "m_b": 30.0, "m_c": 20.0})
    table = compare_stage("architecture", variants, metrics, 0.01)
    assert list(table.columns) == list(COLUMNS)
    assert len(table) == 3 * 4  # 3 pairs x 4 metrics
    vaa = table[table.metric == "vaa_pct"].set_index(["variant_a", "variant_b"])
    assert vaa.loc[("a", "b"), "better"] == "b" and vaa.loc[("a", "b"), "significant"]
    assert vaa.loc[("b", "c"), "better"] == "b"
    assert vaa.loc[("a", "c"), "p"] == 1.0 and vaa.loc[("a", "c"), "better"] == "-"
    assert (table.p_holm >= table.p).all()
    ad = table[table.metric == "abs_ad_pct"]
    assert (ad.p == 1.0).all()


# ---- losses -------------------------------------------------------------------------------------

def test_hot_weighted_l1_known_answers():
    """Two voxels, truth 0 and 1 (the peak): weights 1 and 1 + W_HOT; an error e on the hot voxel costs
    e (1 + W_HOT) / (2 + W_HOT), on the cold one e / (2 + W_HOT); a perfect prediction costs 0; a
    uniform truth weighs every voxel alike (the plain L1)."""
    truth = torch.tensor([0.0, 1.0]).view(1, 1, 1, 1, 2)
    assert float(per_sample_loss("l1_hot", truth.clone(), truth)[0]) == 0.0
    hot = per_sample_loss("l1_hot", truth + torch.tensor([0.0, 0.3]).view_as(truth), truth)
    cold = per_sample_loss("l1_hot", truth + torch.tensor([0.3, 0.0]).view_as(truth), truth)
    assert float(hot[0]) == pytest.approx(0.3 * (1 + W_HOT) / (2 + W_HOT))
    assert float(cold[0]) == pytest.approx(0.3 / (2 + W_HOT))
    flat = torch.full((2, 1, 3, 3, 3), 2.0)
    pred = flat + torch.linspace(-1, 1, 54).view_as(flat)
    assert torch.allclose(per_sample_loss("l1_hot", pred, flat), per_sample_loss("l1", pred, flat))
    assert float(batch_loss("l1_hot", truth, torch.zeros_like(truth))) == 0.5  # an empty truth: the plain L1


def test_masked_loss_is_zero_for_a_perfect_prediction_and_about_one_far_outside():
    y = torch.zeros(2, 1, 6, 6, 6)
    y[:, :, 2:4, 2:4, 2:4] = 0.5
    assert float(per_sample_loss("masked", y.clone(), y).abs().max()) < 1e-7
    assert float(soft_miss_share(y * 1.5, y, 0.05).min()) == pytest.approx(1.0, abs=1e-6)
    # at 4 % (inside 5 %) less than half a miss, at 6 % more than half
    inside, outside = soft_miss_share(y * 1.04, y, 0.05), soft_miss_share(y * 1.06, y, 0.05)
    assert float(inside.max()) < 0.5 < float(outside.min())
    # no activity: no soft-VAA term; l1 and mse keep torch's reductions
    empty = torch.zeros(1, 1, 4, 4, 4)
    assert float(soft_miss_share(empty + 0.1, empty, 0.05)[0]) == 0.0
    assert torch.equal(batch_loss("l1", y * 1.1, y), torch.nn.functional.l1_loss(y * 1.1, y))


def test_masked_loss_gradient_term_sees_edges():
    y = torch.zeros(1, 1, 8, 8, 8)
    y[..., 2:6, 2:6, 2:6] = 1.0
    blurred = torch.from_numpy(gaussian_filter(y.numpy(), (0, 0, 1, 1, 1)))
    shifted = y + 0.02  # an error without spatial gradient

    def gradient_term(pred):
        return float(per_sample_loss("masked", pred, y) - per_sample_loss("l1", pred, y)
                     - W_SOFT_VAA * soft_miss_share(pred, y, 0.05))

    assert gradient_term(shifted) == pytest.approx(0.0, abs=1e-7)
    # blurring: the error's mean absolute difference along the axes (hand count: > 0.05)
    d = (blurred - y).numpy()[0, 0]
    expected = np.mean([np.abs(np.diff(d, axis=a)).mean() for a in range(3)])
    assert gradient_term(blurred) == pytest.approx(W_GRADIENT * expected, rel=1e-5) and expected > 0.05


# ---- test-time augmentation and symmetries ------------------------------------------------------

def test_symmetries_are_sixteen_distinct_and_inverted_exactly():
    x = np.arange(4 * 4 * 3, dtype=np.float32).reshape(4, 4, 3)
    group = symmetries(x.shape)
    assert len(group) == 16
    images = {symmetry(x, k, f).tobytes() for k, f in group}
    assert len(images) == 16
    for k, f in group:
        np.testing.assert_array_equal(inverse_symmetry(symmetry(x, k, f), k, f), x)
    assert len(symmetries((4, 5, 3))) == 8


def test_tta_of_an_untrained_residual_network_is_the_input_and_conserves_total():
    module = build_network("unet", [4, 8], residual=True)  # zero gain: the identity
    cfg = complete_model_cfg({"architecture": "unet", "channels": [4, 8], "tta": True})
    rng = np.random.default_rng(1)
    image = gaussian_filter(rng.random((8, 8, 8)).astype(np.float32), 1)
    out = predict_image(module, cfg, image)
    np.testing.assert_allclose(out, image, rtol=1e-5)
    assert abs(out.sum(dtype=np.float64) / image.sum(dtype=np.float64) - 1) < 1e-6


# ---- CT channel and knobs -----------------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_architecture_takes_a_second_input_channel(arch):
    module = build_network(arch, [4, 8], in_channels=2)
    x = torch.rand(1, 2, 8, 8, 8)
    out = module(x)
    assert out.shape == (1, 1, 8, 8, 8)
    torch.testing.assert_close(out, x[:, :1])  # residual with zero gain returns the SPECT channel


def test_recurrence_t_and_dropout_reach_the_network_and_t_is_refused_where_it_does_nothing():
    kw = network_kwargs(complete_model_cfg({"architecture": "r2unet", "recurrence_t": 3, "dropout": 0.1}))
    assert kw["t"] == 3 and kw["dropout"] == 0.1 and kw["in_channels"] == 1
    with pytest.raises(InputError, match="recurrence_t"):
        network_kwargs(complete_model_cfg({"architecture": "unet", "recurrence_t": 3}))
    with pytest.raises(InputError, match="loss"):
        complete_model_cfg({"loss": "huber"})


def _ct_pairs(root: Path, n: int = 3) -> list[tuple[str, str, str, str]]:
    rng = np.random.default_rng(3)
    out = []
    for i in range(n):
        truth = np.zeros((16, 16, 16), np.float32)
        truth[4:10, 5:11, 6:12] = rng.uniform(1, 4)
        mu = np.full(truth.shape, 0.13, np.float32)
        mu[:, :, :2] = 0.0
        spect = gaussian_filter(truth, 1.2).astype(np.float32)
        files = [save_image(root / f"c{i}" / name, arr, 9.6)
                 for name, arr in (("spect.nii.gz", spect), ("truth.nii.gz", truth), ("mu.nii.gz", mu))]
        out.append((f"c{i}", *map(str, files)))
    return out


def test_ct_channel_model_trains_predicts_and_refuses_a_missing_ct(tmp_path):
    pairs = _ct_pairs(tmp_path / "cases")
    cfg = {"architecture": "unet", "channels": [4, 8], "epochs": 1, "batch_size": 1, "attenuation_channel": True,
           "loss": "masked"}
    card = train_model(pairs[:2], pairs[2:], cfg, tmp_path / "m", seed=0, log=lambda s: None, device="cpu",
                       cache_dir=tmp_path / "cache", trained_for={"voxel_mm": [9.6] * 3})
    assert card["trained_for"]["attenuation_channel"] and card["trained_for"]["n_train_cases"] == 2
    assert card["trained_for"]["voxel_mm"] == [9.6] * 3
    module, loaded = load_model(tmp_path / "m" / "model.pt")
    assert loaded["attenuation_channel"] and loaded["loss"] == "masked"
    from pvc_core.io import load_image
    image = load_image(pairs[2][1]).data
    mu = load_image(pairs[2][3]).data
    out = predict_image(module, loaded, image, mu_cm=mu)
    assert abs(out.sum(dtype=np.float64) / image.sum(dtype=np.float64) - 1) < 1e-6
    with pytest.raises(InputError, match="attenuation map"):
        predict_image(module, loaded, image)
    with pytest.raises(InputError, match="negative"):
        predict_image(module, loaded, image, mu_cm=-mu)


def test_unetpp_deep_supervision_returns_every_head_in_training_and_the_deepest_in_eval():
    kw = network_kwargs(complete_model_cfg({"architecture": "unetpp", "deep_supervision": True}))
    module = build_network("unetpp", [4, 8, 16], **{**kw, "residual": False})
    x = torch.rand(1, 1, 8, 8, 8)
    module.train()
    heads = module(x)
    assert heads.shape == (1, 2, 8, 8, 8)  # X[0,1] and X[0,2]
    module.eval()
    last = module(x)
    assert last.shape == (1, 1, 8, 8, 8)
    torch.testing.assert_close(last, heads[:, 1:])  # instance norm: train and eval agree per sample
    plain = build_network("unetpp", [4, 8, 16], residual=False)
    assert set(plain.state_dict()) < set(module.state_dict())  # same names, plus the side heads
    with pytest.raises(InputError, match="deep_supervision"):
        network_kwargs(complete_model_cfg({"architecture": "unet", "deep_supervision": True}))


def test_snakemake_dry_run_of_the_paper_sweep_plans_twelve_trainings(tmp_path):
    import re
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory",
                           str(tmp_path), "--configfile", str(PAPER), "--cores", "1", "-n", "sweep"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = (proc.stdout + proc.stderr).split("Job stats:")[1].split("total")[0]
    jobs = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}
    assert jobs["train_network"] == 12 and jobs["predict_test_cases"] == 14 and jobs["compare_sweep_stages"] == 1


def test_snakemake_dry_run_of_train_plans_the_clinic_rr_and_norr_models(tmp_path):
    """``train`` trains every report model: config/clinic_round2.yaml's RR_n and noRR_n networks (without its
    init_from, round 1's model, which a fresh checkout has not trained)."""
    import re
    import subprocess
    import sys

    import yaml

    cfg = yaml.safe_load((ROOT / "config" / "clinic_round2.yaml").read_text())
    del cfg["training"]["default"]["init_from"]
    (tmp_path / "round2.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory",
                           str(tmp_path), "--configfile", str(tmp_path / "round2.yaml"), "--cores", "1",
                           "-n", "train"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    table = out.split("Job stats:")[1].split("total")[0]
    jobs = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}
    assert jobs["train_network"] == 2 and jobs["reconstruct_osem"] == 16  # 8 shards x (RR, noRR)
    assert "unet_RR_n_full" in out and "unet_noRR_n_full" in out
