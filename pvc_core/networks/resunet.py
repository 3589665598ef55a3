"""``resunet``: MONAI's residual-unit ``UNet`` (Kerfoot et al.) with a full-resolution stem and head.

Not one of the paper's architectures: the paper's U-Net is the fastMRI one
(:mod:`pvc_core.networks.unet`). This variant was dlpvc's ``unet`` before that, and the demo
figures in docs/performance.md were measured with it, so it stays available under its own name.
MONAI's ``UNet`` with two residual units per level, stride-2 convolutions down, transposed
convolutions up, instance normalisation and PReLU has one catch for regression: its top level
is already strided, so its only full-resolution tensor is the one-channel output of a
transposed convolution. Trained on PVC it leaves a voxel-scale
checkerboard (the output alternates between 0 and 1.5x the truth in neighbouring voxels, and
SSIM falls below that of the uncorrected image). :class:`FullResolutionUNet` therefore wraps it
with what the Ronneberger/fastMRI U-Net has at full resolution: a 3x3x3 stem that lifts the
image to ``channels[0]`` features, a skip connection of those features around the MONAI
``UNet`` (which now maps ``channels[0]`` to ``channels[0]`` features), a 3x3x3 fusion of both,
and a 1x1x1 output convolution.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.blocks import Convolution
from monai.networks.nets import UNet
from torch import nn


class FullResolutionUNet(nn.Module):
    """``head(fuse([stem(x), UNet(stem(x))]))``: MONAI ``UNet`` with full-resolution stem, skip and head."""

    def __init__(self, channels: Sequence[int], num_res_units: int = 2, dropout: float = 0.0,
                 act="PRELU", norm="INSTANCE", in_channels: int = 1) -> None:
        super().__init__()
        c0 = int(channels[0])
        self.stem = Convolution(3, in_channels, c0, kernel_size=3, act=act, norm=norm)
        self.unet = UNet(spatial_dims=3, in_channels=c0, out_channels=c0, channels=tuple(channels),
                         strides=(2,) * (len(channels) - 1), num_res_units=num_res_units, dropout=dropout,
                         act=act, norm=norm)
        self.fuse = Convolution(3, 2 * c0, c0, kernel_size=3, act=act, norm=norm, dropout=dropout)
        self.head = nn.Conv3d(c0, 1, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x)
        return self.head(self.fuse(torch.cat([s, self.unet(s)], dim=1)))


def build_resunet(channels: Sequence[int], **kw) -> nn.Module:
    """:class:`FullResolutionUNet`: ``in_channels`` inputs and 1 output channel, ``len(channels) - 1`` stride-2 levels."""
    return FullResolutionUNet(channels, **kw)
