"""Training losses in input-max units (the network's scale, :mod:`pvc_core.training.normalisation`).

* ``l1``: mean absolute error over the whole volume (the default; see :mod:`pvc_core.training.train`).
* ``mse``: mean squared error.
* ``l1_hot`` ([3.4], beyond the paper): the L1 with each voxel weighted by ``1 + W_HOT * truth /
  max(truth)`` (per sample), normalised by the mean weight: the hottest voxels (small lesions, a
  kidney cortex) count up to ``1 + W_HOT`` times a cold voxel. On patient-like data, where every
  tissue is warm, the plain L1 is dominated by the large warm organs and background, and a fine-tuned
  model lowered most lesions' recovery (docs/results.md); this loss makes their error expensive.
* ``masked`` (beyond the paper): a loss that trains what is evaluated. The evaluation scores the
  voxels that hold true activity (NRMSE, VAA within ``alpha`` of the truth); a whole-volume loss
  is dominated by the empty background. Per sample, with ``d = prediction - truth``::

      L = mean(|d|)                                   whole volume: keeps the background at zero
        + W_GRADIENT * mean_axes(mean(|diff(d)|))     the spatial gradients of the error: sharp edges
        + W_SOFT_VAA * mean_mask(s(|d| / truth))      soft share of true-activity voxels outside alpha

  where ``s(r) = (sigmoid((r - alpha) / tau) - sigmoid(-alpha / tau)) / (1 - sigmoid(-alpha / tau))``
  with ``tau = alpha / 4`` is 0 for an exact voxel, 1/2-ish at the tolerance and tends to 1 far
  outside it (1 - the soft VAA). The mask is ``truth > 0``; a sample without activity contributes
  no soft-VAA term.

No kept library has the soft-VAA term (MONAI's losses are segmentation or regression losses over
the whole volume), so it is written here; the gradient term follows the image-gradient losses of
the super-resolution literature.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("l1", "mse", "masked", "l1_hot")

#: Extra weight of the hottest voxel of a sample in the ``l1_hot`` loss (a cold voxel weighs 1).
W_HOT = 4.0

#: Weight of the spatial-gradient L1 term of the ``masked`` loss.
W_GRADIENT = 1.0
#: Weight of the soft-VAA term of the ``masked`` loss (a share in [0, 1], so larger than the L1 terms).
W_SOFT_VAA = 0.1
#: Width of the soft threshold as a fraction of the tolerance ``alpha``.
TAU_FRACTION = 0.25

__all__ = ["LOSSES", "W_HOT", "W_GRADIENT", "W_SOFT_VAA", "TAU_FRACTION", "batch_loss", "per_sample_loss", "soft_miss_share"]


def soft_miss_share(prediction: torch.Tensor, truth: torch.Tensor, alpha: float) -> torch.Tensor:
    """Per sample (first axis), the soft share of voxels with ``truth > 0`` whose relative error
    exceeds ``alpha``: 0 when every such voxel is exact, about 1 when all are far outside."""
    tau = alpha * TAU_FRACTION
    mask = truth > 0
    rel = (prediction - truth).abs() / torch.where(mask, truth, torch.ones_like(truth))
    floor = torch.sigmoid(torch.tensor(-alpha / tau, dtype=prediction.dtype, device=prediction.device))
    s = (torch.sigmoid((rel - alpha) / tau) - floor) / (1 - floor)
    s = torch.where(mask, s, torch.zeros_like(s)).flatten(1).sum(1)
    return s / mask.flatten(1).sum(1).clamp(min=1)


def _gradient_l1(d: torch.Tensor) -> torch.Tensor:
    """Per sample, the mean over the three spatial axes of the mean absolute finite difference of ``d``."""
    terms = [torch.diff(d, dim=axis).abs().flatten(1).mean(1) for axis in (-3, -2, -1) if d.shape[axis] > 1]
    return torch.stack(terms).mean(0) if terms else torch.zeros(d.shape[0], dtype=d.dtype, device=d.device)


def per_sample_loss(name: str, prediction: torch.Tensor, truth: torch.Tensor, alpha: float = 0.05) -> torch.Tensor:
    """Loss ``name`` of each sample of a batch ``(B, 1, D, H, W)`` (a tensor of shape ``(B,)``)."""
    d = prediction - truth
    if name == "l1":
        return d.abs().flatten(1).mean(1)
    if name == "mse":
        return (d ** 2).flatten(1).mean(1)
    if name == "l1_hot":
        peak = truth.flatten(1).amax(1).clamp(min=torch.finfo(truth.dtype).tiny)
        w = (1 + W_HOT * truth / peak.view(-1, *([1] * (truth.dim() - 1)))).flatten(1)
        return (w * d.abs().flatten(1)).sum(1) / w.sum(1)
    if name == "masked":
        return (d.abs().flatten(1).mean(1) + W_GRADIENT * _gradient_l1(d)
                + W_SOFT_VAA * soft_miss_share(prediction, truth, alpha))
    raise ValueError(f"loss must be one of {LOSSES}, got {name!r}")


def batch_loss(name: str, prediction: torch.Tensor, truth: torch.Tensor, alpha: float = 0.05) -> torch.Tensor:
    """Mean loss of a batch; ``l1`` and ``mse`` as :func:`torch.nn.functional.l1_loss` / ``mse_loss``
    (the reduction dlpvc always used, so that their weights do not change)."""
    if name == "l1":
        return F.l1_loss(prediction, truth)
    if name == "mse":
        return F.mse_loss(prediction, truth)
    return per_sample_loss(name, prediction, truth, alpha).mean()
