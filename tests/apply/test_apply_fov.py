"""Field-of-view invariance of DL-PVC (pvc_core.apply.fov): the same voxel gets the same correction,
whatever the empty space around the body.

A tiny untrained fastMRI U-Net ([4, 8], instance norm as every dlpvc network) with a small
residual gain stands in for a trained model: like the shipped model it normalises by instance, so
plain ``predict_image`` depends on the field of view (``test_plain_predict_image_depends_on_fov``
documents the bug these tests guard against), while ``predict_fov_invariant`` does not.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from pvc_core.apply.fov import (ACTIVITY_FRACTION, activity_box, axis_starts, blend_weights, predict_fov_invariant,
                                window_alignment, window_layout)
from pvc_core.errors import InputError
from pvc_core.networks import build_network
from pvc_core.training.predict import predict_image

WINDOW = (24, 24, 24)
CFG = {"architecture": "unet", "channels": [4, 8], "input": "full", "normalisation": "sum", "tta": False}
FOVS = (24, 40, 56)


def _net(in_channels: int = 1, seed: int = 2, gain: float = 0.03) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = build_network("unet", [4, 8], in_channels=in_channels).eval()
    with torch.no_grad():
        net.gain.fill_(gain)  # an untrained net with gain 0 is the identity: give it a correction to make
    return net


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def net():
    return _net()


def _body(n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """A blurred ellipsoid with two hotter spheres (float32) and its region labels 1..3."""
    z, y, x = np.mgrid[:n, :n, :n].astype(float) - (n - 1) / 2
    t = np.zeros((n,) * 3)
    lab = np.zeros((n,) * 3, int)
    for label, mask, value in (
            (1, (z / 7) ** 2 + (y / 5) ** 2 + (x / 6) ** 2 <= 1, 1.0),
            (2, (z - 2) ** 2 + (y + 1) ** 2 + (x - 2) ** 2 <= 6, 5.0),
            (3, (z + 3) ** 2 + (y - 2) ** 2 + (x + 2) ** 2 <= 3, 2.0)):
        t[mask], lab[mask] = value, label
    b = ndimage.gaussian_filter(t, 1.0)
    b[b < 1e-3 * b.max()] = 0
    return b.astype(np.float32), lab


def _centred_offset(body: np.ndarray, n: int) -> tuple[int, ...]:
    """Where to put ``body`` in an n^3 array so that its activity box is centred as the window's."""
    lo, hi = activity_box(body)
    return tuple((n - (h - l)) // 2 - l for l, h in zip(lo, hi))


def _embed(body: np.ndarray, n: int, offset: tuple[int, ...]) -> np.ndarray:
    out = np.zeros((n,) * 3, np.float32)
    out[tuple(slice(o, o + s) for o, s in zip(offset, body.shape))] = body
    return out


def _block(image: np.ndarray, offset: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    return image[tuple(slice(o, o + s) for o, s in zip(offset, shape))]


def _region_means(correct, body, lab, offsets) -> dict[int, np.ndarray]:
    out = {}
    for n, off in offsets.items():
        y = correct(_embed(body, n, off))
        out[n] = ndimage.mean(_block(y, off, body.shape), lab, [1, 2, 3])
    return out


def _worst_rel_diff(means: dict[int, np.ndarray]) -> float:
    ref = means[FOVS[0]]
    return max(float(np.abs(m / ref - 1).max()) for m in means.values())


def _pad_offsets(body):
    """The body centred in the window-sized field of view, then zero-padded by 8 and 16 voxels a side."""
    c = _centred_offset(body, FOVS[0])
    return {n: tuple(o + (n - FOVS[0]) // 2 for o in c) for n in FOVS}


# --- the bug -------------------------------------------------------------------------------------------------

def test_plain_predict_image_depends_on_fov(net):
    """Today's whole-image correction: the same body in 24^3 / 40^3 / 56^3 comes out > 2 % apart
    (instance-norm statistics over the empty space); this is what the fov function removes."""
    body, lab = _body()
    means = _region_means(lambda x: predict_image(net, CFG, x), body, lab, _pad_offsets(body))
    assert _worst_rel_diff(means) > 0.02


# --- invariance ----------------------------------------------------------------------------------------------

def test_zero_padding_gives_identical_values(net):
    body, lab = _body()
    offsets = _pad_offsets(body)
    outs = {n: _block(predict_fov_invariant(net, CFG, _embed(body, n, off), WINDOW), off, body.shape)
            for n, off in offsets.items()}
    for n in FOVS[1:]:
        np.testing.assert_array_equal(outs[n], outs[FOVS[0]])
    means = {n: ndimage.mean(o, lab, [1, 2, 3]) for n, o in outs.items()}
    assert _worst_rel_diff(means) == 0.0
    # and the correction is not the identity: the network changed the regions
    assert np.abs(means[FOVS[0]] / ndimage.mean(body, lab, [1, 2, 3]) - 1).max() > 0.02


@pytest.mark.parametrize("shift", [1, 3])
def test_off_centre_body_within_2_percent(net, shift):
    """The body off-centre in the smallest field of view (its window then runs past the array):
    still the same region means within 2 % (only what the network puts outside that array differs)."""
    body, lab = _body()
    offsets = _pad_offsets(body)
    offsets[FOVS[0]] = tuple(max(0, o - shift) for o in offsets[FOVS[0]])
    means = _region_means(lambda x: predict_fov_invariant(net, CFG, x, WINDOW), body, lab, offsets)
    assert _worst_rel_diff(means) < 0.02


def test_invariance_with_ct_channel_and_tta():
    net = _net(in_channels=2)
    cfg = {**CFG, "attenuation_channel": True, "tta": True}
    body, lab = _body()
    mu_body = np.where(ndimage.binary_dilation(body > 0, iterations=2), 0.15, 0.0).astype(np.float32)
    outs = []
    for n, off in _pad_offsets(body).items():
        y = predict_fov_invariant(net, cfg, _embed(body, n, off), WINDOW, mu_cm=_embed(mu_body, n, off))
        outs.append(_block(y, off, body.shape))
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])
    with pytest.raises(InputError, match="attenuation"):
        predict_fov_invariant(net, cfg, _embed(body, 24, (2, 2, 2)), WINDOW)


def test_equal_to_window_is_predict_image(net):
    body, _ = _body()
    x = _embed(body, WINDOW[0], _centred_offset(body, WINDOW[0]))
    assert window_layout(x, WINDOW, align=window_alignment(CFG)) == [(0, 0, 0)]
    np.testing.assert_array_equal(predict_fov_invariant(net, CFG, x, WINDOW), predict_image(net, CFG, x))


# --- activity ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [24, 40])
def test_total_conserved(net, n):
    body, _ = _body()
    x = _embed(body, n, (1, 2, 3))
    y = predict_fov_invariant(net, CFG, x, WINDOW)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert abs(float(y.sum(dtype=np.float64)) / float(x.sum(dtype=np.float64)) - 1) < 1e-6


def _cylinder() -> tuple[np.ndarray, np.ndarray]:
    """A blurred uniform cylinder 60 voxels long (z) in 80 x 32 x 32: longer than two windows."""
    t = np.zeros((80, 32, 32))
    z, y, x = np.mgrid[:80, :32, :32]
    cyl = ((y - 15.5) ** 2 + (x - 15.5) ** 2 <= 36) & (z >= 10) & (z < 70)
    t[cyl] = 1.0
    return ndimage.gaussian_filter(t, 1.0).astype(np.float32), cyl


def test_body_larger_than_window_covered_without_seams(net):
    img, cyl = _cylinder()
    align = window_alignment(CFG)
    starts = window_layout(img, WINDOW, align=align)
    assert len({s[0] for s in starts}) >= 3 and len(starts) == len({s[0] for s in starts})
    covered = np.zeros(img.shape, bool)
    for s in starts:
        covered[tuple(slice(max(a, 0), a + w) for a, w in zip(s, WINDOW))] = True
    active = img > ACTIVITY_FRACTION * img.max()
    assert covered[active].all()                       # every voxel of the body lies in a window
    y = predict_fov_invariant(net, CFG, img, WINDOW)
    assert np.all(y[active] != img[active])            # ... and was corrected
    assert abs(float(y.sum(dtype=np.float64)) / float(img.sum(dtype=np.float64)) - 1) < 1e-6
    # seams: slice means of the cylinder's interior, against the whole array corrected at once
    # (no seams, same pooling grid): the ratio varies by < 1.5 % along z (measured 1.0 %; with
    # window starts off the pooling grid, i.e. alignment 1, it is 7.5 %)
    ref = predict_image(net, CFG, img)
    inner = slice(22, 58)
    ratio = y[inner][:, cyl[40]].mean(1) / ref[inner][:, cyl[40]].mean(1)
    assert np.ptp(ratio) / ratio.mean() < 0.015


def test_voxels_outside_windows_keep_input(net):
    body, _ = _body()
    x = np.zeros((80, 24, 24), np.float32)
    x[2:22, 2:22, 2:22] = body
    faint = (70, 12, 12)
    x[faint] = 0.5 * ACTIVITY_FRACTION * body.max()    # below the box's threshold, far from the body
    y = predict_fov_invariant(net, CFG, x, WINDOW)
    assert y[faint] == x[faint]
    assert np.all(y[40:] == x[40:])
    assert abs(float(y.sum(dtype=np.float64)) / float(x.sum(dtype=np.float64)) - 1) < 1e-6


# --- layout --------------------------------------------------------------------------------------------------

def test_layout_moves_with_the_content():
    body, _ = _body()
    a = window_layout(_embed(body, 48, (3, 4, 5)), WINDOW, align=2)
    b = window_layout(_embed(body, 64, (13, 9, 20)), WINDOW, align=2)
    assert [tuple(s + d for s, d in zip(st, (10, 5, 15))) for st in a] == b


@pytest.mark.parametrize("lo,hi", [(0, 30), (5, 61), (3, 128), (0, 200)])
def test_axis_starts_cover_and_align(lo, hi):
    starts = axis_starts(lo, hi, 80 if hi > 100 else 24, overlap=0.25, align=8)
    w = 80 if hi > 100 else 24
    assert starts[0] <= lo and starts[-1] + w >= hi
    assert all((s - starts[0]) % 8 == 0 for s in starts)
    assert all(b - a <= w * 0.75 + 8 for a, b in zip(starts, starts[1:]))  # windows overlap


def test_128_box_needs_two_windows_of_80():
    assert len(axis_starts(0, 128, 80, overlap=0.25, align=8)) == 2


def test_empty_image_and_bad_arguments(net):
    assert not predict_fov_invariant(net, CFG, np.zeros((8, 8, 8), np.float32), WINDOW).any()
    with pytest.raises(InputError):
        predict_fov_invariant(net, CFG, np.ones((8, 8), np.float32), WINDOW)
    with pytest.raises(InputError):
        predict_fov_invariant(net, CFG, np.ones((8, 8, 8), np.float32), (24, 24))
    with pytest.raises(InputError):
        predict_fov_invariant(net, CFG, np.full((8, 8, 8), np.nan, np.float32), WINDOW)
    w = blend_weights(WINDOW)
    assert w.shape == WINDOW and w.min() > 0 and w.max() <= 1
