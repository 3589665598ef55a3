"""Non-negative output head shared by every architecture: ``y = relu(x + g * body(x))``.

* **ReLU, not softplus.** Activity concentration cannot be negative, and background voxels of the
  true activity are exactly 0. ReLU reaches 0 exactly, softplus never does: a softplus floor of
  even 1e-3 of the maximum in the ~90% of a 64^3 field of view without activity would hold
  several percent of the total, which the 'sum' activity conservation would then take away from
  the lesions and organs.
* **Global residual with a zero-initialised gain** (``residual=True``, the default). The body
  learns the *correction* that is added to the max-normalised SPECT image, and the scalar gain
  ``g`` starts at 0 (as in ReZero, Bachlechner et al. 2020). An untrained network is therefore
  exactly "no PVC" (the input is non-negative, so ``relu(x) = x``), every update can only move
  away from that baseline, and training never starts from a random image whose errors are 50x
  those of the input. That is what lets a few minutes of CPU training on a few dozen cases beat
  no-PVC; it also keeps the final ReLU from starting "dead". The residual applies to every
  architecture alike; ``residual=False`` gives the plain ``relu(body(x))``.
"""

from __future__ import annotations

import torch
from torch import nn


class NonNegativeOutput(nn.Module):
    """Wrap a network ``body`` with one output channel: ``relu(x0 + gain * body(x))`` or ``relu(body(x))``.

    ``x0`` is the first input channel (the SPECT image); further channels (the attenuation map)
    only inform the body.
    """

    def __init__(self, body: nn.Module, residual: bool = True) -> None:
        super().__init__()
        self.body = body
        self.residual = residual
        self.gain = nn.Parameter(torch.zeros(1)) if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        if self.residual:
            y = x[:, :1] + self.gain * y
        return torch.relu(y)
