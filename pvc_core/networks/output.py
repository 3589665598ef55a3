"""Non-negative output head shared by every architecture.

Activity concentration cannot be negative, so every network ends in ``relu(x + body(x))``:

* **ReLU, not softplus.** Background voxels of the true activity are exactly 0. ReLU reaches 0
  exactly, softplus never does: a softplus floor of even 1e-3 of the maximum in the ~70% of a
  64^3 field of view that is background would hold several percent of the total activity, which
  the 'sum' activity conservation then takes away from the lesions and organs.
* **Global residual (optional, on by default).** The body learns the *correction* that is added
  to the (max-normalised) SPECT image rather than the whole image. At initialisation the network
  is therefore close to "no PVC" instead of random, which is what makes a short CPU training on a
  few dozen cases beat no-PVC; it also keeps the ReLU from starting "dead" (an all-negative
  output gives no gradient). The residual is the only change to the published architectures and
  applies to all of them alike.
"""

from __future__ import annotations

import torch
from torch import nn


class NonNegativeOutput(nn.Module):
    """Wrap a 1-in/1-out network ``body``: ``y = relu(x + body(x))`` (or ``relu(body(x))``)."""

    def __init__(self, body: nn.Module, residual: bool = True) -> None:
        super().__init__()
        self.body = body
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        if self.residual:
            y = y + x
        return torch.relu(y)
