"""Training, normalisation, patches and prediction on tiny synthetic data (seconds)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from pvc_core.errors import InputError
from pvc_core.io import load_image, save_image
from pvc_core.training import conserve_total, load_model, predict_image, rescale_output, train_model
from pvc_core.training.augmentation import N_SYMMETRIES, augment
from pvc_core.training.case_cache import case_id_of, prepare_cases
from pvc_core.training.dataset import EpochBatchSampler, StreamingCaseDataset
from pvc_core.training.loader import batches_of, make_loader
from pvc_core.training.patches import (apply_patchwise, crop_to, pad_to_multiple, patch_grid, random_patch_corner,
                                       read_window)
from pvc_core.training.train import complete_model_cfg
from helpers.tiny_cases import sphere_case

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: tiny networks on one thread


TINY_CFG = {"architecture": "unet", "channels": [4, 8, 16], "epochs": 3, "batch_size": 2,
            "learning_rate": 0.01, "input": "full", "normalisation": "sum"}


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cases")
    rng = np.random.default_rng(7)
    out = []
    for i in range(4):
        spect, truth = sphere_case(rng)
        a = save_image(root / f"case_{i:04d}" / "spect_RR_n.nii.gz", spect, 9.6)
        b = save_image(root / f"case_{i:04d}" / "truth.nii.gz", truth, 9.6)
        out.append((a, b))
    return out


@pytest.fixture(scope="module")
def trained(pairs, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    card = train_model(pairs[:2], pairs[2:], TINY_CFG, out, seed=3, log=lambda s: None, device="cpu")
    return out, card


# ---- normalisation ------------------------------------------------------------------------------

def test_conserve_total_to_1e6():
    rng = np.random.default_rng(0)
    inp = rng.gamma(2.0, 3.0, (20, 24, 28)).astype(np.float32)
    out = rng.gamma(1.0, 7.0, inp.shape).astype(np.float32)
    got = conserve_total(out, inp)
    assert got.dtype == np.float32
    assert abs(got.sum(dtype=np.float64) / inp.sum(dtype=np.float64) - 1) < 1e-6
    np.testing.assert_allclose(got / got.sum(dtype=np.float64), out / out.sum(dtype=np.float64), rtol=1e-5)


def test_rescale_output_max_and_sum():
    inp = np.array([[[1.0, 3.0], [0.0, 4.0]]] * 2, np.float32)
    net = np.full(inp.shape, 0.25, np.float32)  # input-max units; input total 16 over 8 voxels
    np.testing.assert_array_equal(rescale_output(net, 4.0, inp, "max"), np.full(inp.shape, 1.0))
    np.testing.assert_array_equal(rescale_output(net, 4.0, inp, "sum"), np.full(inp.shape, 2.0))
    with pytest.raises(InputError):
        rescale_output(net, 4.0, inp, "mean")


# ---- patches and augmentation -------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(64, 64, 64), (40, 48, 33), (32, 32, 32)])
def test_patch_reassembly_of_identity_is_exact(shape):
    vol = np.random.default_rng(1).gamma(2.0, 1.0, shape).astype(np.float32)
    calls = []
    got = apply_patchwise(vol, lambda b: calls.append(len(b)) or b, batch_size=5)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, vol)
    assert sum(calls) == len(patch_grid(shape))  # every patch predicted once


def test_pad_and_crop_round_trip():
    vol = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7)
    padded = pad_to_multiple(vol, 4, minimum=8)
    assert padded.shape == (8, 8, 8) and padded[5:].sum() == 0
    np.testing.assert_array_equal(crop_to(padded, vol.shape), vol)
    cube = vol[:4, :4, :4]
    assert pad_to_multiple(cube, 4) is cube  # nothing to pad: no copy


def test_random_patches_lie_inside_and_prefer_foreground():
    rng = np.random.default_rng(0)
    fg = np.zeros((64, 64, 64), bool)
    fg[60:, 60:, 60:] = True
    for _ in range(50):
        corner = random_patch_corner(rng, fg.shape, 32, np.argwhere(fg), p_foreground=1.0)
        s = tuple(slice(c, c + 32) for c in corner)
        assert all(0 <= c <= 32 for c in corner)
        assert fg[s].any()
    corners = {random_patch_corner(rng, fg.shape, 32, None) for _ in range(20)}
    assert len(corners) > 10  # uniform corners without foreground


def test_read_window_equals_zero_padding():
    vol = np.random.default_rng(2).random((5, 6, 7)).astype(np.float32)
    np.testing.assert_array_equal(read_window(vol, (0, 0, 0), (8, 8, 8)), pad_to_multiple(vol, 4, minimum=8))
    np.testing.assert_array_equal(read_window(vol, (1, 2, 3), (3, 3, 3)), vol[1:4, 2:5, 3:6])
    beyond = read_window(vol, (4, 4, 4), (4, 4, 4))  # reaches past every end: the rest is zero
    np.testing.assert_array_equal(beyond[:1, :2, :3], vol[4:, 4:, 4:])
    assert beyond.sum() == vol[4:, 4:, 4:].sum()


def test_augment_applies_the_same_symmetry_to_input_and_target():
    rng = np.random.default_rng(0)
    x = rng.random((8, 8, 6)).astype(np.float32)
    seen = set()
    for _ in range(400):
        ax, ay = augment(rng, x, 2 * x)
        np.testing.assert_array_equal(ay, 2 * ax)
        np.testing.assert_array_equal(np.sort(ax, axis=None), np.sort(x, axis=None))
        seen.add(ax.tobytes())
    assert len(seen) == N_SYMMETRIES == 16  # 4 quarter turns x 4 flip sets, all distinct
    flat = rng.random((8, 6, 6)).astype(np.float32)  # non-square axial plane: half turn only
    assert len({augment(rng, flat, flat)[0].tobytes() for _ in range(200)}) == 8


# ---- case cache and streaming dataset ----------------------------------------------------------

def test_case_cache_normalises_by_input_max_and_is_reused(pairs, tmp_path):
    logs = []
    cases = prepare_cases(pairs[:2], tmp_path, logs.append)
    spect, truth = load_image(pairs[0][0]).data, load_image(pairs[0][1]).data
    x, y = cases[0].load()
    assert cases[0].case_id == "case_0000" and cases[0].shape == spect.shape
    assert isinstance(x, np.memmap) and x.dtype == np.float32
    assert cases[0].scale == pytest.approx(float(spect.max()))
    assert float(x.max()) == pytest.approx(1.0)
    np.testing.assert_allclose(y, truth / spect.max(), rtol=1e-6)
    np.testing.assert_array_equal(cases[0].foreground(), np.argwhere(x > 0.05))
    assert logs == [f"training cache {tmp_path}: 0 cases reused, 2 written"]
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    again = prepare_cases(pairs[:2], tmp_path, logs.append)
    assert logs[-1].endswith("2 cases reused, 0 written") and again == cases
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == stamps  # nothing rewritten


def test_case_cache_rewrites_a_changed_source_or_a_damaged_entry(pairs, tmp_path):
    src = tmp_path / "src"
    a = save_image(src / "case_0001" / "spect.nii.gz", load_image(pairs[0][0]).data, 9.6)
    b = save_image(src / "case_0001" / "truth.nii.gz", load_image(pairs[0][1]).data, 9.6)
    cache = tmp_path / "cache"
    (case,) = prepare_cases([(a, b)], cache)
    # a new input (double the activity, different max): the entry follows it
    save_image(a, 2 * load_image(a).data, 9.6)
    logs = []
    (case2,) = prepare_cases([(a, b)], cache, logs.append)
    assert logs[-1].endswith("0 cases reused, 1 written")
    assert case2.scale == pytest.approx(2 * case.scale)
    np.testing.assert_allclose(case2.load()[1], load_image(b).data / case2.scale, rtol=1e-6)
    # a truncated array is written again
    case2.target_file.write_bytes(case2.target_file.read_bytes()[:200])
    prepare_cases([(a, b)], cache, logs.append)
    assert logs[-1].endswith("0 cases reused, 1 written")
    np.testing.assert_allclose(case2.load()[1], load_image(b).data / case2.scale, rtol=1e-6)


def test_bad_training_pairs_name_the_file(pairs, tmp_path):
    spect = load_image(pairs[0][0]).data
    small = save_image(tmp_path / "small.nii.gz", spect[:8], 9.6)
    with pytest.raises(InputError, match="small.nii.gz: shape"):
        prepare_cases([(pairs[0][0], small)], tmp_path / "c")
    empty = save_image(tmp_path / "empty.nii.gz", np.zeros_like(spect), 9.6)
    with pytest.raises(InputError, match="empty.nii.gz: input holds no positive value"):
        prepare_cases([(empty, pairs[0][1])], tmp_path / "c")
    with pytest.raises(InputError, match="missing.nii.gz: training image not found"):
        prepare_cases([(tmp_path / "missing.nii.gz", pairs[0][1])], tmp_path / "c")
    (case,) = prepare_cases(pairs[:1], tmp_path / "c")
    case.input_file.write_bytes(b"garbage")
    ds = StreamingCaseDataset([case], "full", 4, seed=0)
    with pytest.raises(InputError, match=r"\.input\.npy: cannot read cached training array"):
        ds[(1, 0, 0)]


def test_damaged_cache_read_by_a_worker_is_a_one_line_error(pairs, tmp_path):
    cache = tmp_path / "cache"
    (case,) = prepare_cases(pairs[:1], cache)
    ds = StreamingCaseDataset([case], "full", 4, seed=0)
    loader = make_loader(ds, EpochBatchSampler(ds, 1, seed=0), torch.Generator().manual_seed(0), num_workers=1)
    case.target_file.write_bytes(b"damaged after the cache was checked")
    with pytest.raises(InputError) as err:
        list(batches_of(loader))
    assert str(err.value).startswith(f"{case.target_file}: cannot read cached training array")
    assert "\n" not in str(err.value)


def _all_batches(dataset, sampler, workers, epochs=(1, 2)):
    loader = make_loader(dataset, sampler, torch.Generator().manual_seed(0), workers)
    out = []
    for epoch in epochs:
        sampler.set_epoch(epoch)
        out.append([(x.clone(), y.clone()) for x, y in loader])
    return out


@pytest.mark.parametrize("mode", ["full", "patch32"])
def test_batches_are_the_same_for_any_number_of_workers(pairs, tmp_path, mode):
    cases = prepare_cases(pairs, tmp_path)
    ds = StreamingCaseDataset(cases, mode, 4, seed=11)
    sampler = EpochBatchSampler(ds, 3, seed=11)
    serial, parallel = _all_batches(ds, sampler, 0), _all_batches(ds, sampler, 2)
    shape = (16, 16, 16) if mode == "full" else (32, 32, 32)
    assert [len(x) for x, _ in serial[0]] == [3, 1]  # 4 cases (one 32^3 patch each), batch 3
    assert all(x.shape[1:] == (1, *shape) and x.dtype == torch.float32 for x, _ in serial[0])
    for a, b in zip(serial, parallel):
        assert len(a) == len(b)
        assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    first = torch.cat([x for x, _ in serial[0]])
    second = torch.cat([x for x, _ in serial[1]])
    assert not torch.equal(first, second)  # another epoch: other order, patches, symmetries


def test_patch_epoch_holds_the_disjoint_patches_of_every_case(pairs, tmp_path):
    cases = prepare_cases(pairs[:2], tmp_path)
    ds = StreamingCaseDataset(cases, "patch32", 4, seed=0, patch=8)  # 16^3 holds 8 disjoint 8^3
    keys = EpochBatchSampler(ds, 5, seed=0).keys()
    assert sorted(keys) == [(1, c, j) for c in range(2) for j in range(8)]
    assert ds[keys[0]][0].shape == (1, 8, 8, 8)
    x0, _ = StreamingCaseDataset(cases, "full", 4, seed=0, augmentation=False)[(1, 0, 0)]
    np.testing.assert_array_equal(x0[0].numpy(), cases[0].load()[0])


def test_batches_never_mix_volume_shapes(pairs, tmp_path):
    spect, truth = load_image(pairs[0][0]).data, load_image(pairs[0][1]).data
    odd = [(save_image(tmp_path / f"case_{i:04d}" / "s.nii.gz", spect[:, :, :12], 9.6),
            save_image(tmp_path / f"case_{i:04d}" / "t.nii.gz", truth[:, :, :12], 9.6)) for i in (8, 9)]
    cases = prepare_cases(pairs[:2] + odd, tmp_path / "cache")
    ds = StreamingCaseDataset(cases, "full", 4, seed=0)
    sampler = EpochBatchSampler(ds, 4, seed=0)
    for epoch in (1, 2, 3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert sorted(k[1] for b in batches for k in b) == [0, 1, 2, 3]
        assert all(len({ds.sample_shape(k[1]) for k in b}) == 1 for b in batches)


def test_case_id_of_paths():
    assert case_id_of("results/cases/case_0012/spect_RR_n.nii.gz") == "case_0012"
    assert case_id_of("results/demo/cases/00017/spect_RR_n.nii.gz") == "00017"
    assert case_id_of("/data/patient7.nii.gz") == "patient7"


# ---- configuration ------------------------------------------------------------------------------

def test_model_cfg_defaults_and_errors():
    cfg = complete_model_cfg({"architecture": "r2unet"})
    assert cfg["input"] == "full" and cfg["normalisation"] == "sum" and cfg["channels"] == [16, 32, 64, 128]
    with pytest.raises(InputError, match="architecture"):
        complete_model_cfg({"architecture": "resnet"})
    with pytest.raises(InputError, match="depth"):
        complete_model_cfg({"depth": 3})


# ---- training -----------------------------------------------------------------------------------

def test_training_writes_checkpoint_card_and_history(trained):
    out, card = trained
    assert (out / "model.pt").is_file()
    disk_card = json.loads((out / "model_card.json").read_text())
    assert disk_card["data"]["n_train_cases"] == 2
    assert disk_card["data"]["train_case_ids"] == ["case_0000", "case_0001"]
    assert disk_card["model_cfg"]["architecture"] == "unet"
    assert disk_card["versions"]["pvc_core"]
    assert 1 <= disk_card["training"]["best_epoch"] <= 3
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert set(rows[0]) == {"epoch", "train_loss", "val_loss", "val_nrmse_pct", "val_vaa_pct", "seconds"}
    # default selection: lowest masked NRMSE (ties: higher VAA)
    keys = [(float(r["val_nrmse_pct"]), -float(r["val_vaa_pct"])) for r in rows]
    chosen = rows[keys.index(min(keys))]
    t = disk_card["training"]
    assert t["best_epoch"] == int(chosen["epoch"]) and t["selection"].startswith("nrmse: lowest mean masked NRMSE")
    assert t["best_val_nrmse_pct"] == pytest.approx(float(chosen["val_nrmse_pct"]))
    assert t["best_val_vaa_pct"] == pytest.approx(float(chosen["val_vaa_pct"]))
    assert t["best_val_loss"] == pytest.approx(float(chosen["val_loss"]))
    assert t["no_pvc_val_loss"] > 0 and t["no_pvc_val_nrmse_pct"] > 0 and 0 <= t["no_pvc_val_vaa_pct"] < 100
    assert t["vaa_alpha"] == 0.05


class _Identity(torch.nn.Module):
    """A network whose output is its input: the prediction of a case with input == truth is exact."""

    def forward(self, x):
        return x


def test_validation_scores_of_a_perfect_prediction_are_nrmse_0_and_vaa_100(pairs, tmp_path):
    from pvc_core.metrics import nrmse, vaa
    from pvc_core.training.train import validation_scores
    truth = load_image(pairs[0][1]).data
    perfect = save_image(tmp_path / "case_0009" / "spect.nii.gz", truth, 9.6)
    cases = prepare_cases([(perfect, pairs[0][1])], tmp_path / "cache", lambda s: None)
    for norm in ("sum", "max"):
        cfg = complete_model_cfg({**TINY_CFG, "normalisation": norm})
        scores = validation_scores(_Identity(), cfg, cases, torch.device("cpu"), "l1", 0.05)
        assert scores["val_nrmse_pct"] == pytest.approx(0, abs=1e-4) and scores["val_vaa_pct"] == 100.0
        assert scores["val_loss"] == pytest.approx(0, abs=1e-7)
    # the uncorrected blurred SPECT scores as pvc_core.metrics scores it in MBq/mL
    spect_cases = prepare_cases([pairs[0]], tmp_path / "cache", lambda s: None)
    base = validation_scores(None, cfg, spect_cases, torch.device("cpu"), "l1", 0.1)
    spect = load_image(pairs[0][0]).data
    assert base["val_nrmse_pct"] == pytest.approx(nrmse(spect, truth), rel=1e-5)
    assert base["val_vaa_pct"] == pytest.approx(vaa(spect, truth, alpha=0.1), abs=0.2)


def test_selection_rule_picks_the_perfect_epoch_and_breaks_ties():
    from pvc_core.training.train import selection_key
    epochs = [{"val_loss": 0.010, "val_nrmse_pct": 20.0, "val_vaa_pct": 30.0},
              {"val_loss": 0.020, "val_nrmse_pct": 0.0, "val_vaa_pct": 100.0},  # the truth itself
              {"val_loss": 0.005, "val_nrmse_pct": 25.0, "val_vaa_pct": 20.0},
              {"val_loss": 0.030, "val_nrmse_pct": 0.0, "val_vaa_pct": 100.0}]  # a tie: earlier wins
    def pick(rule):
        best, best_key = None, (float("inf"),) * 3
        for i, e in enumerate(epochs):
            if selection_key(e, rule) < best_key:
                best, best_key = i, selection_key(e, rule)
        return best
    assert pick("nrmse") == 1 and pick("vaa") == 1 and pick("loss") == 2
    tie = [{"val_loss": 0.1, "val_nrmse_pct": 5.0, "val_vaa_pct": 40.0},
           {"val_loss": 0.2, "val_nrmse_pct": 5.0, "val_vaa_pct": 60.0}]
    assert selection_key(tie[1], "nrmse") < selection_key(tie[0], "nrmse")
    with pytest.raises(InputError, match="selection must be one of"):
        selection_key(tie[0], "ssim")


def test_selection_by_loss_and_a_validation_subset(pairs, tmp_path):
    cfg = {**TINY_CFG, "epochs": 3, "selection": "loss", "validation_cases": 1}
    card = train_model(pairs[:2], pairs[2:], cfg, tmp_path, seed=3, log=lambda s: None, device="cpu")
    rows = list(csv.DictReader((tmp_path / "history.csv").open()))
    losses = [float(r["val_loss"]) for r in rows]
    assert card["training"]["best_epoch"] == losses.index(min(losses)) + 1
    assert card["data"]["validation_case_ids"] == ["case_0002"]
    assert card["training"]["selection"].startswith("loss: lowest validation loss")


def test_overfitting_two_cases_lowers_the_loss(pairs, tmp_path):
    cfg = {**TINY_CFG, "epochs": 8}
    train_model(pairs[:2], [], cfg, tmp_path, seed=0, log=lambda s: None, device="cpu",
                augmentation=False, lr_schedule="constant")
    losses = [float(r["train_loss"]) for r in csv.DictReader((tmp_path / "history.csv").open())]
    assert losses[-1] < 0.8 * losses[0]


def test_same_seed_gives_identical_weights(pairs, trained, tmp_path):
    train_model(pairs[:2], pairs[2:], TINY_CFG, tmp_path / "again", seed=3, log=lambda s: None, device="cpu")
    train_model(pairs[:2], pairs[2:], TINY_CFG, tmp_path / "other", seed=4, log=lambda s: None, device="cpu")
    first = torch.load(trained[0] / "model.pt", weights_only=True)["state_dict"]
    again = torch.load(tmp_path / "again" / "model.pt", weights_only=True)["state_dict"]
    other = torch.load(tmp_path / "other" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_training_with_workers_gives_the_same_weights(pairs, tmp_path):
    cfg = {**TINY_CFG, "epochs": 2}
    serial = train_model(pairs[:2], pairs[2:3], cfg, tmp_path / "w0", seed=5, log=lambda s: None, device="cpu",
                         cache_dir=tmp_path / "cache")
    train_model(pairs[:2], pairs[2:3], cfg, tmp_path / "w2", seed=5, log=lambda s: None, device="cpu",
                cache_dir=tmp_path / "cache", num_workers=2)
    a = torch.load(tmp_path / "w0" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "w2" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert serial["training"]["num_workers"] == 0 and serial["data"]["cache"] == str(tmp_path / "cache")


class _Killed(Exception):
    """Raised from ``on_epoch_end`` to stop a training as a kill (or a SLURM time limit) would."""


def _kill_after(last_epoch):
    def callback(epoch):
        if epoch == last_epoch:
            raise _Killed
    return callback


def _history(folder):
    """history.csv without the wall-clock column."""
    return [(r["epoch"], r["train_loss"], r["val_loss"], r["val_nrmse_pct"], r["val_vaa_pct"])
            for r in csv.DictReader((folder / "history.csv").open())]


@pytest.mark.parametrize("mode", ["full", "patch32"])
def test_resumed_training_ends_bit_identical_to_an_uninterrupted_one(pairs, tmp_path, mode):
    cfg = {**TINY_CFG, "epochs": 4, "input": mode}
    kw = dict(seed=9, log=lambda s: None, device="cpu", cache_dir=tmp_path / "cache")
    whole = train_model(pairs[:2], pairs[2:3], cfg, tmp_path / "whole", **kw)
    with pytest.raises(_Killed):
        train_model(pairs[:2], pairs[2:3], cfg, tmp_path / "resumed", on_epoch_end=_kill_after(2), **kw)
    assert not (tmp_path / "resumed" / "model.pt").exists()
    assert [row[0] for row in _history(tmp_path / "resumed")] == ["1", "2"]  # written every epoch
    logs = []
    card = train_model(pairs[:2], pairs[2:3], cfg, tmp_path / "resumed", **{**kw, "log": logs.append})
    assert whole["training"]["resumed_from_epoch"] == 0 and card["training"]["resumed_from_epoch"] == 2
    assert any(f"checkpoint.pt after epoch 2/4" in line for line in logs)
    assert not any(line.startswith("epoch    1/") or line.startswith("epoch    2/") for line in logs)
    best_a = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)["state_dict"]
    best_b = torch.load(tmp_path / "resumed" / "model.pt", weights_only=True)["state_dict"]
    last_a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)
    last_b = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)
    for a, b in ((best_a, best_b), (last_a["model"], last_b["model"])):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    moments = [(last_a["optimiser"]["state"][i]["exp_avg_sq"], last_b["optimiser"]["state"][i]["exp_avg_sq"])
               for i in last_a["optimiser"]["state"]]
    assert all(torch.equal(a, b) for a, b in moments)
    assert _history(tmp_path / "whole") == _history(tmp_path / "resumed") and len(_history(tmp_path / "whole")) == 4
    assert card["training"]["best_epoch"] == whole["training"]["best_epoch"]
    assert last_b["epoch"] == 4 and [h["epoch"] for h in last_b["history"]] == [1, 2, 3, 4]


def test_checkpoint_of_another_specification_is_ignored_and_overwritten(pairs, tmp_path):
    cfg = {**TINY_CFG, "epochs": 2}
    kw = dict(seed=9, device="cpu", cache_dir=tmp_path / "cache")
    with pytest.raises(_Killed):
        train_model(pairs[:2], [], cfg, tmp_path / "m", log=lambda s: None, on_epoch_end=_kill_after(1), **kw)
    logs = []
    other = {**cfg, "learning_rate": 0.02}
    card = train_model(pairs[:2], [], other, tmp_path / "m", log=logs.append, **kw)
    assert card["training"]["resumed_from_epoch"] == 0
    assert any("checkpoint of another specification (differs in model_cfg.learning_rate)" in line for line in logs)
    train_model(pairs[:2], [], other, tmp_path / "fresh", log=lambda s: None, **kw)
    a = torch.load(tmp_path / "m" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "fresh" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.load(tmp_path / "m" / "checkpoint.pt", weights_only=True)["resume_key"]["model_cfg"]["learning_rate"] == 0.02
    # a rewritten training image is another specification too
    src = tmp_path / "src"
    moved = [(save_image(src / f"case_{i}" / "s.nii.gz", load_image(p[0]).data, 9.6),
              save_image(src / f"case_{i}" / "t.nii.gz", load_image(p[1]).data, 9.6)) for i, p in enumerate(pairs[:2])]
    with pytest.raises(_Killed):
        train_model(moved, [], cfg, tmp_path / "d", log=lambda s: None, on_epoch_end=_kill_after(1), **kw)
    save_image(moved[1][0], 1.5 * load_image(moved[1][0]).data, 9.6)
    logs = []
    train_model(moved, [], cfg, tmp_path / "d", log=logs.append, **kw)
    assert any("differs in data.train)" in line for line in logs)


def test_bad_training_checkpoints_are_input_errors(pairs, tmp_path):
    kw = dict(seed=0, log=lambda s: None, device="cpu", cache_dir=tmp_path / "cache")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "checkpoint.pt").write_bytes(b"\x80\x02 half a checkpoint")
    with pytest.raises(InputError, match=r"junk/checkpoint.pt: cannot read training checkpoint \(") as err:
        train_model(pairs[:1], [], {**TINY_CFG, "epochs": 1}, tmp_path / "junk", **kw)
    assert "\n" not in str(err.value)
    (tmp_path / "foreign").mkdir()
    torch.save({"state_dict": {}}, tmp_path / "foreign" / "checkpoint.pt")
    with pytest.raises(InputError, match="foreign/checkpoint.pt: not a dlpvc training checkpoint"):
        train_model(pairs[:1], [], {**TINY_CFG, "epochs": 1}, tmp_path / "foreign", **kw)


def test_model_round_trip_and_prediction_conserves_total(pairs, trained):
    module, cfg = load_model(trained[0] / "model.pt", device="cpu")
    assert cfg == complete_model_cfg(TINY_CFG) and not module.training
    image = load_image(pairs[3][0]).data
    out = predict_image(module, cfg, image)
    assert out.shape == image.shape and out.dtype == np.float32 and out.min() >= 0
    assert abs(out.sum(dtype=np.float64) / image.sum(dtype=np.float64) - 1) < 1e-6
    # a second load predicts bit for bit the same
    module2, _ = load_model(trained[0] / "model.pt")
    np.testing.assert_array_equal(predict_image(module2, cfg, image), out)
    # 'max' normalisation: output = network output x input maximum, no total scaling
    out_max = predict_image(module, {**cfg, "normalisation": "max"}, image)
    np.testing.assert_allclose(out_max * (out.sum(dtype=np.float64) / out_max.sum(dtype=np.float64)), out, rtol=1e-5)
    assert np.all(predict_image(module, cfg, np.zeros_like(image)) == 0)


def test_patch32_training_and_prediction(pairs, tmp_path):
    cfg = {**TINY_CFG, "input": "patch32", "epochs": 1}
    train_model(pairs[:1], pairs[3:], cfg, tmp_path, seed=0, log=lambda s: None, device="cpu")
    module, loaded = load_model(tmp_path / "model.pt")
    assert loaded["input"] == "patch32"
    image = load_image(pairs[3][0]).data[:, :12]  # odd shape: padded to 32^3, cropped back
    out = predict_image(module, loaded, image)
    assert out.shape == image.shape
    assert abs(out.sum(dtype=np.float64) / image.sum(dtype=np.float64) - 1) < 1e-6


def test_bad_model_files_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_model(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="junk.pt"):
        load_model(tmp_path / "junk.pt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(InputError, match="not a dlpvc model"):
        load_model(tmp_path / "foreign.pt")


def test_model_files_of_format_1_load_as_before_or_say_why_not(tmp_path):
    """Format 1 (before [2.4]): its 'unet' is today's 'resunet'; attention gates then had batch norm."""
    from monai.networks.nets import AttentionUnet

    from pvc_core.networks import NonNegativeOutput, build_network

    cfg = complete_model_cfg({**TINY_CFG, "architecture": "unet"})
    torch.manual_seed(0)
    old = build_network("resunet", TINY_CFG["channels"])
    with torch.no_grad():
        old.gain.fill_(0.3)
    torch.save({"format": "dlpvc-model", "format_version": 1, "state_dict": old.state_dict(), "model_cfg": cfg,
                "network_kwargs": {"residual": True}}, tmp_path / "unet_v1.pt")
    module, loaded = load_model(tmp_path / "unet_v1.pt")
    assert loaded["architecture"] == "resunet"
    x = torch.rand(1, 1, 16, 16, 16)
    with torch.no_grad():
        assert torch.equal(module(x), old.eval()(x))
    bn = NonNegativeOutput(AttentionUnet(3, 1, 1, channels=tuple(TINY_CFG["channels"]), strides=(2, 2)))
    torch.save({"format": "dlpvc-model", "format_version": 1, "state_dict": bn.state_dict(),
                "model_cfg": {**cfg, "architecture": "attention_unet"}, "network_kwargs": {"residual": True}},
               tmp_path / "att_v1.pt")
    with pytest.raises(InputError, match=r"att_v1.pt: weights do not fit .*format 1.*train it again") as err:
        load_model(tmp_path / "att_v1.pt")
    assert "\n" not in str(err.value)


# ---- speed options -------------------------------------------------------------------------------

@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_cuda_without_a_gpu_is_a_one_line_error_naming_the_option(pairs, tmp_path):
    """(bf16 on the CPU is no longer refused: tests/training/test_bf16.py.)"""
    kw = dict(seed=0, log=lambda s: None, cache_dir=tmp_path / "cache")
    with pytest.raises(InputError, match="key 'device': cuda requested but torch sees no CUDA GPU") as err:
        train_model(pairs[:1], [], {**TINY_CFG, "epochs": 1, "device": "cuda"}, tmp_path / "a", **kw)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="key 'num_workers'"):
        complete_model_cfg({**TINY_CFG, "num_workers": -1})


def test_runtime_options_are_recorded_and_logged_and_leave_the_identity(pairs, tmp_path):
    from pvc_core.pipeline.models import RUNTIME_KEYS, model_identity
    cfg = {**TINY_CFG, "epochs": 2}
    kw = dict(seed=5, device="cpu", cache_dir=tmp_path / "cache")
    logs = []
    plain = train_model(pairs[:2], pairs[2:3], cfg, tmp_path / "plain", log=logs.append, **kw)
    assert [line for line in logs if line.startswith("epoch")] and all(
        " steps/s, ETA " in line for line in logs if line.startswith("epoch"))
    assert any(line.endswith("ETA 0:00:00)") for line in logs if line.startswith("epoch    2/"))
    fast = train_model(pairs[:2], pairs[2:3], {**cfg, "channels_last": True, "deterministic": False,
                                               "num_workers": 1}, tmp_path / "fast", log=lambda s: None, **kw)
    assert fast["training"]["runtime"]["channels_last"] is True and fast["training"]["runtime"]["num_workers"] == 1
    assert plain["training"]["runtime"]["channels_last"] is False and plain["training"]["precision"] == "fp32"
    a = torch.load(tmp_path / "plain" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "fast" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.allclose(a[k], b[k], rtol=1e-3, atol=1e-5) for k in a)  # same training, other memory layout
    full = complete_model_cfg(cfg)
    assert set(RUNTIME_KEYS) <= set(full) and "precision" in model_identity(full)
    assert not set(RUNTIME_KEYS) & set(model_identity(full))
    # a checkpoint left with other runtime options is resumed
    with pytest.raises(_Killed):
        train_model(pairs[:2], pairs[2:3], cfg, tmp_path / "r", log=lambda s: None, on_epoch_end=_kill_after(1), **kw)
    card = train_model(pairs[:2], pairs[2:3], {**cfg, "num_workers": 0, "deterministic": False}, tmp_path / "r",
                       log=lambda s: None, **kw)
    assert card["training"]["resumed_from_epoch"] == 1


def test_rank_shares_are_disjoint_and_cover_every_batch():
    from pvc_core.training.distributed import rank_share

    batch = [(1, k, 0) for k in range(5)]
    assert rank_share(batch, 0, 2) == ([(1, 0, 0), (1, 2, 0), (1, 4, 0)], 3)
    assert rank_share(batch, 1, 2) == ([(1, 1, 0), (1, 3, 0)], 2)
    assert rank_share(batch[:1], 1, 2) == ([(1, 0, 0)], 0)  # empty share: one key of weight 0
    for world in (1, 2, 3, 7):
        shares = [rank_share(batch, r, world) for r in range(world)]
        counted = [key for keys, n in shares for key in keys[:n]]
        assert sorted(counted) == batch and len(set(counted)) == len(batch)


def test_rank_batch_sampler_splits_the_seeded_epoch_order(pairs, tmp_path):
    from pvc_core.training.distributed import RankBatchSampler

    ds = StreamingCaseDataset(prepare_cases(pairs, tmp_path), "patch32", 8, 3)
    sampler = EpochBatchSampler(ds, 3, 3)
    for epoch in (1, 2):
        sampler.set_epoch(epoch)
        whole = sampler.keys()
        ranks = [list(RankBatchSampler(sampler, r, 2).shares()) for r in range(2)]
        assert len(ranks[0]) == len(ranks[1]) == len(sampler)  # same number of steps on every rank
        counted = [k for shares in ranks for keys, n, _ in shares for k in keys[:n]]
        assert sorted(counted) == sorted(whole) and len(set(counted)) == len(whole)


def test_torchrun_two_ranks_train_identical_weights_and_rank_0_writes(pairs, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun not installed beside python")
    out = tmp_path / "ddp"
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"train_model": {
        "train_pairs": [[str(a), str(b)] for a, b in pairs], "val_pairs": [[str(a), str(b)] for a, b in pairs[:1]],
        "model_cfg": {**TINY_CFG, "epochs": 2, "device": "cpu"}, "out_dir": str(out), "seed": 5, "num_workers": 0}}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "pvc_core.training", str(job)],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(p.name for p in out.glob("model*")) == ["model.pt", "model_card.json"]
    card = json.loads((out / "model_card.json").read_text())
    dist_card = card["training"]["distributed"]
    assert dist_card["world_size"] == 2 and dist_card["backend"] == "gloo" and dist_card["global_batch_size"] == 2
    digests = dist_card["rank_weight_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    assert [int(r["epoch"]) for r in csv.DictReader(open(out / "history.csv"))] == [1, 2]
    load_model(out / "model.pt")
