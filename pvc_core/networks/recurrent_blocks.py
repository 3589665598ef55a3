"""Building blocks of the recurrent-residual U-Nets (Alom et al. 2018, R2U-Net).

MONAI has no recurrent-residual convolution, so the blocks are written here from MONAI's
``Convolution`` (conv + norm + activation). They follow the reference implementation of the
R2U-Net paper: a recurrent convolutional layer (RCL) applies one shared 3x3x3 convolution
``t + 1`` times, each time to the block input plus its previous output; a recurrent-residual
block (RRCNN) is a 1x1x1 channel projection followed by two RCLs and an identity shortcut.
Instance normalisation replaces the reference's batch normalisation: with one or two 3-D volumes
per batch, batch statistics are too noisy.
"""

from __future__ import annotations

import torch
from monai.networks.blocks import Convolution
from torch import nn


def _conv(in_ch: int, out_ch: int, kernel_size: int = 3, act="relu", norm="instance",
          dropout: float = 0.0) -> nn.Module:
    return Convolution(3, in_ch, out_ch, kernel_size=kernel_size, act=act, norm=norm, dropout=dropout)


class RecurrentConv(nn.Module):
    """Recurrent convolutional layer: ``h_0 = f(x)``, ``h_k = f(x + h_{k-1})`` for k = 1..t.

    ``f`` is one 3x3x3 convolution + instance norm + activation whose weights are shared across
    the ``t + 1`` steps (so the receptive field grows without new parameters).
    """

    def __init__(self, channels: int, t: int = 2, **conv_kw) -> None:
        super().__init__()
        if t < 1:
            raise ValueError(f"recurrence steps t must be >= 1, got {t}")
        self.t = t
        self.conv = _conv(channels, channels, **conv_kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        for _ in range(self.t):
            h = self.conv(x + h)
        return h


class RRCNNBlock(nn.Module):
    """Recurrent-residual block: ``p = conv1x1(x)``, ``y = p + RCL(RCL(p))``."""

    def __init__(self, in_ch: int, out_ch: int, t: int = 2, **conv_kw) -> None:
        super().__init__()
        self.project = nn.Conv3d(in_ch, out_ch, kernel_size=1)
        self.rcl = nn.Sequential(RecurrentConv(out_ch, t, **conv_kw), RecurrentConv(out_ch, t, **conv_kw))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.project(x)
        return p + self.rcl(p)


class UpConv(nn.Module):
    """Nearest-neighbour upsampling by 2 followed by conv + norm + activation (reference ``up_conv``)."""

    def __init__(self, in_ch: int, out_ch: int, **conv_kw) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = _conv(in_ch, out_ch, **conv_kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.up(x))
