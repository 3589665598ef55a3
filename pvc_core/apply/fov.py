"""Field-of-view-invariant DL-PVC: correct in windows of the training matrix anchored on the activity.

Why (measured, see ``benchmarks/bench_fov.py``): every network of dlpvc normalises by instance
(:mod:`pvc_core.networks.norms`): each ``InstanceNorm3d`` takes the mean and variance of its
feature map over the **whole array** it is given. Zero space around the body enters those
statistics, so the same body stored in a larger array is normalised differently inside the
network and comes out differently (a blurred body in 80^3 / 128^3 / 160^3 with the shipped model:
means of regions of >= 20 voxels up to 8.2 % / 14.7 % off the 80^3 ones). The input
normalisation is not the cause: zero padding changes neither the image's maximum nor its total.
With the instance-norm statistics frozen at those of the 80^3 run, the 128^3 and 160^3 runs agree
with it to 0.44 %.

What :func:`predict_fov_invariant` does instead:

1. **Activity box.** The bounding box of the voxels above :data:`ACTIVITY_FRACTION` (1 %) of the
   image's maximum. It depends only on the activity, not on how much empty space surrounds it
   (on two paper-protocol cases it holds 99.7 and 99.8 % of the reconstructed activity).
2. **Windows of the training matrix** (``window``, the model card's ``trained_for.matrix``),
   laid out on the box, not on the array: along an axis where the box fits in one window, one
   window centred on the box; where it does not, ``ceil((extent - window) / stride) + 1`` windows
   (stride ``window * (1 - overlap)``; ``overlap`` is the least overlap, default 25 % as MONAI's
   ``sliding_window_inference``), evenly spread over the box, their starts differing by multiples
   of the network's pooling period (:func:`window_alignment`, 8 for the shipped model) so that
   every window sees the body on the same pooling grid (seams along a uniform cylinder in the
   tests: 1.0 %, against 7.5 % with starts off that grid). A box of 128 voxels: 2 windows of 80
   overlapping by 32, so a 128^3 image full of activity costs 8 windows of 80^3 (1.5x one 128^3
   pass, measured). A window that runs past the array is zero-padded there (zero is the
   background activity, and air for the attenuation map).
3. **Each window is corrected by** :func:`pvc_core.training.predict.predict_image` (its own
   maximum as the normalisation, as in training, where the network always saw an input whose
   maximum is 1; test-time augmentation and the CT channel as the model asks), so the network
   sees exactly the array size it was trained on and the same content whatever the field of view.
   The window's own maximum, not the image's: with one window (most paper-protocol cases) and
   whenever every window holds the image's maximum the two are the same; for two paper cases
   joined along z (the second at 0.2x), the cold one's VAA was 13.7 % with window maxima and
   8.8 % with the global maximum (28.3 % corrected alone).
4. **Blending**: overlapping windows are averaged with Gaussian weights (sigma = window / 8 per
   axis, as MONAI's ``sliding_window_inference`` with ``mode='gaussian'``).
5. **Voxels outside every window keep their input values**; for a ``normalisation='sum'`` model,
   the corrected voxels are scaled so that their total equals the input's total over the same
   voxels, so that the image's total equals the input's to float rounding.

The same body zero-padded into any field of view (with the windows inside the array in both)
therefore gets bit-identical values; where a window runs past a smaller array, only what the
network puts outside that array differs (the shipped model puts ~1e-7 of the activity there).
An image whose shape equals the window and whose activity box is centred in it gets exactly
:func:`predict_image`'s result. An off-centre body in an array of the window size is corrected in
a window shifted onto it; the U-Net is not exactly shift-equivariant (max pooling: a 1-3 voxel
shift changes region means by up to ~3 % with the shipped model), which is why the window is
anchored on the activity and never on the array.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
from torch import nn

from pvc_core.errors import InputError
from pvc_core.networks import size_divisor
from pvc_core.training.normalisation import input_scale
from pvc_core.training.patches import PATCH_SIZE
from pvc_core.training.predict import predict_image

#: Voxels above this fraction of the image's maximum define the activity box the windows cover.
ACTIVITY_FRACTION = 0.01
#: Least overlap (fraction of the window) of neighbouring windows where the box needs more than one.
DEFAULT_OVERLAP = 0.25
#: Gaussian blending: sigma = this fraction of the window edge (MONAI's default ``sigma_scale``).
SIGMA_SCALE = 0.125

__all__ = ["ACTIVITY_FRACTION", "DEFAULT_OVERLAP", "SIGMA_SCALE", "activity_box", "axis_starts", "window_layout",
           "blend_weights", "window_alignment", "predict_fov_invariant", "blend_windows"]


Box = tuple[tuple[int, ...], tuple[int, ...]]


def activity_box(image: np.ndarray, fraction: float = ACTIVITY_FRACTION) -> Box | None:
    """``(lo, hi)`` (``hi`` exclusive) of the voxels above ``fraction`` of the maximum; ``None`` without activity."""
    if not 0 <= fraction < 1:
        raise InputError(f"activity fraction must lie in [0, 1), got {fraction}")
    top = input_scale(image)
    if top <= 0:
        return None
    lo, hi = [], []
    for axis in range(image.ndim):
        others = tuple(a for a in range(image.ndim) if a != axis)
        idx = np.flatnonzero((image > fraction * top).any(axis=others))
        lo.append(int(idx[0]))
        hi.append(int(idx[-1]) + 1)
    return tuple(lo), tuple(hi)


def axis_starts(lo: int, hi: int, window: int, overlap: float = DEFAULT_OVERLAP, align: int = 1) -> list[int]:
    """Window starts along one axis covering ``[lo, hi)``, relative to ``lo`` only, so that a shift
    of the content shifts the windows with it; they may be negative or run past the array.

    Where ``[lo, hi)`` fits in one window: that window, centred. Otherwise at least
    ``ceil((extent - window) / stride) + 1`` windows (``stride = window * (1 - overlap)``), whose
    starts differ by multiples of ``align`` (the network's pooling period, so that every window
    sees the body on the same pooling grid), spread evenly and centred on ``[lo, hi)``.
    """
    if window < 1:
        raise InputError(f"window edge must be >= 1, got {window}")
    if not 0 <= overlap < 1:
        raise InputError(f"overlap must lie in [0, 1), got {overlap}")
    align = max(1, int(align))
    extent = hi - lo
    if extent <= window:
        return [lo - (window - extent) // 2]
    span = -(-(extent - window) // align) * align          # distance first -> last start, a multiple of align
    stride = max(align, (int(window * (1 - overlap)) // align) * align)
    n = -(-span // stride) + 1
    first = lo - (span - (extent - window)) // 2
    return [first + int(round(k * span / (n - 1) / align)) * align for k in range(n)]


def window_layout(image: np.ndarray, window: Sequence[int], fraction: float = ACTIVITY_FRACTION,
                  overlap: float = DEFAULT_OVERLAP, align: int = 1) -> list[tuple[int, int, int]]:
    """Start corners of the windows of :func:`predict_fov_invariant` (empty for an image without activity)."""
    window = _window(window)
    box = activity_box(image, fraction)
    if box is None:
        return []
    per_axis = [axis_starts(lo, hi, w, overlap, align) for lo, hi, w in zip(*box, window)]
    return [(a, b, c) for a in per_axis[0] for b in per_axis[1] for c in per_axis[2]]


def blend_weights(window: Sequence[int], sigma_scale: float = SIGMA_SCALE) -> np.ndarray:
    """Gaussian importance map of a window (float64, 1 at the centre, > 0 everywhere)."""
    axes = []
    for w in _window(window):
        d = np.arange(w, dtype=np.float64) - (w - 1) / 2
        axes.append(np.exp(-0.5 * (d / max(sigma_scale * w, 1e-6)) ** 2))
    out = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    return np.maximum(out, np.finfo(np.float64).tiny)


def predict_fov_invariant(module: nn.Module, model_cfg: dict, image_mbq_ml: np.ndarray, window: Sequence[int],
                          device=None, mu_cm: np.ndarray | None = None, *, fraction: float = ACTIVITY_FRACTION,
                          overlap: float = DEFAULT_OVERLAP) -> np.ndarray:
    """Partial-volume-corrected image (float32, MBq/mL, the input's shape) whose value at a voxel
    does not depend on the empty space around the body (see the module docstring).

    ``window``: the training matrix (the model card's ``trained_for.matrix``), e.g. ``(80, 80, 80)``.
    ``mu_cm``: the attenuation map on the image's grid for a model with ``attenuation_channel``
    (windowed like the image). ``fraction``: the activity box's threshold (fraction of the max);
    ``overlap``: of neighbouring windows where the box needs more than one along an axis.
    Without positive values the result is zeros, as :func:`predict_image`'s.
    """
    def one(x: np.ndarray, mu: np.ndarray | None) -> np.ndarray:
        return predict_image(module, model_cfg, x, device=device, mu_cm=mu)[None]

    return blend_windows(one, 1, model_cfg, image_mbq_ml, window, mu_cm, fraction=fraction, overlap=overlap)[0]


def blend_windows(predict: Callable[[np.ndarray, np.ndarray | None], np.ndarray], channels: int, model_cfg: dict,
                  image_mbq_ml: np.ndarray, window: Sequence[int], mu_cm: np.ndarray | None = None, *,
                  fraction: float = ACTIVITY_FRACTION, overlap: float = DEFAULT_OVERLAP) -> np.ndarray:
    """Steps 1-5 of the module docstring for a window corrector that gives ``channels`` images at once.

    ``predict(x, mu)`` takes one window of the image (float32, MBq/mL, ``window``'s shape) and of
    ``mu_cm`` (or None) and returns ``(channels, *window)`` corrected images (MBq/mL); each channel
    is blended, kept outside the windows and total-conserved on its own, exactly as
    :func:`predict_fov_invariant` treats its one image. Returns ``(channels, *image.shape)`` float32
    (zeros without positive values).
    """
    image = np.asarray(image_mbq_ml, dtype=np.float32)
    if image.ndim != 3:
        raise InputError(f"image must be a 3-D volume, got shape {image.shape}")
    window = _window(window)
    if mu_cm is not None:
        mu_cm = np.asarray(mu_cm, dtype=np.float32)
        if mu_cm.shape != image.shape:
            raise InputError(f"attenuation map of shape {mu_cm.shape} differs from the image's {image.shape}")
    starts = window_layout(image, window, fraction, overlap, window_alignment(model_cfg))  # raises for NaN / inf
    if not starts:
        return np.zeros((channels, *image.shape), np.float32)
    weights = blend_weights(window)
    acc = np.zeros((channels, *image.shape), np.float64)
    wsum = np.zeros(image.shape, np.float64)
    every = (slice(None),)
    for start in starts:
        src, dst = _overlap(start, window, image.shape)
        x = np.zeros(window, np.float32)
        x[dst] = image[src]
        mu = None
        if mu_cm is not None:
            mu = np.zeros(window, np.float32)
            mu[dst] = mu_cm[src]
        y = predict(x, mu)
        acc[every + src] += weights[dst] * y[every + dst]
        wsum[src] += weights[dst]
    covered = wsum > 0
    result = np.empty((channels, *image.shape), np.float32)
    for c in range(channels):
        out = image.astype(np.float64)
        out[covered] = acc[c][covered] / wsum[covered]
        if model_cfg.get("normalisation") == "sum":
            total_in = float(image[covered].sum(dtype=np.float64))
            total_out = float(out[covered].sum())
            if total_out > 0:
                out[covered] *= total_in / total_out
        result[c] = out
    return result


def window_alignment(model_cfg: dict) -> int:
    """The step between window starts: the network's pooling period (:func:`~pvc_core.networks.size_divisor`),
    and a multiple of the half-patch stride of a ``patch32`` model, so that every window puts the
    body on the same pooling (and patch) grid."""
    align = size_divisor(model_cfg["channels"])
    if model_cfg.get("input") == "patch32":
        align = math.lcm(align, PATCH_SIZE // 2)
    return align


def _window(window: Sequence[int]) -> tuple[int, int, int]:
    w = tuple(int(v) for v in window)
    if len(w) != 3 or min(w) < 1:
        raise InputError(f"window must be 3 positive edges (the model's trained_for.matrix), got {tuple(window)}")
    return w


def _overlap(start: Sequence[int], window: Sequence[int],
             shape: Sequence[int]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Slices of the array (``src``) and of the window (``dst``) where a window at ``start`` meets the array."""
    src, dst = [], []
    for s, w, n in zip(start, window, shape):
        a, b = max(s, 0), min(s + w, n)
        if b <= a:
            a = b = 0
        src.append(slice(a, b))
        dst.append(slice(a - s, b - s) if b > a else slice(0, 0))
    return tuple(src), tuple(dst)
