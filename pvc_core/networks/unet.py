"""``unet``: the fastMRI U-Net (Zbontar et al. 2018; Ronneberger et al. 2015) in 3-D, the paper's U-Net.

Leube et al. name the fastMRI implementation (``fastmri.models.Unet``) as their U-Net. This is
that network with 3-D layers and the widths of the configuration's ``channels``
(``[c0, ..., cL]``; fastMRI's ``chans=c0, num_pool_layers=L`` is ``[c0, 2 c0, ..., 2^L c0]``):

* per level a :class:`ConvBlock`: two 3x3x3 convolutions without bias, each followed by instance
  normalisation (no affine parameters, as fastMRI) and LeakyReLU(0.2) (and dropout when asked);
* down: 2x2x2 average pooling;
* up: a :class:`TransposeConvBlock` (2x2x2 transposed convolution of stride 2, instance norm,
  LeakyReLU(0.2)), concatenation with the skip of that level (upsampled features first, as
  fastMRI), then a ConvBlock;
* a final 1x1x1 convolution (with bias) to one channel.

Like fastMRI it accepts edges that do not halve evenly: after each upsampling an odd-sized level
is matched by reflection-padding the upsampled tensor by one voxel at the end of that axis, so
the output has the input's shape for any edges of at least ``2 ** L`` voxels whose bottleneck
holds more than one voxel (instance norm needs two); e.g. 33 x 20 x 27 with three levels.
dlpvc still pads volumes to a multiple of :func:`~pvc_core.networks.size_divisor`, as for every
architecture.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

#: Negative slope of every LeakyReLU (fastMRI).
NEGATIVE_SLOPE = 0.2


class ConvBlock(nn.Module):
    """``[Conv3d(3x3x3, no bias) -> InstanceNorm3d -> LeakyReLU(0.2) (-> Dropout3d)] x 2``."""

    def __init__(self, in_ch: int, out_ch: int, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for c_in in (in_ch, out_ch):
            layers += [nn.Conv3d(c_in, out_ch, kernel_size=3, padding=1, bias=False), nn.InstanceNorm3d(out_ch),
                       nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True)]
            if dropout > 0:
                layers.append(nn.Dropout3d(dropout))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class TransposeConvBlock(nn.Module):
    """``ConvTranspose3d(2x2x2, stride 2, no bias) -> InstanceNorm3d -> LeakyReLU(0.2)``: doubles each edge."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.ConvTranspose3d(in_ch, out_ch, kernel_size=2, stride=2, bias=False),
                                    nn.InstanceNorm3d(out_ch), nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class FastMRIUNet(nn.Module):
    """fastMRI U-Net in 3-D with ``len(channels) - 1`` poolings, ``in_channels`` inputs and 1 output channel.

    Parameters
    ----------
    channels:
        Feature widths per level, top (full resolution) first; the last is the bottleneck's.
    dropout:
        Probability of :class:`torch.nn.Dropout3d` after every activation of the ConvBlocks
        (fastMRI's ``drop_prob``; 0 adds no layer).
    in_channels:
        Input channels (1: the SPECT image; 2: SPECT and attenuation map).
    """

    def __init__(self, channels: Sequence[int], dropout: float = 0.0, in_channels: int = 1) -> None:
        super().__init__()
        ch = [int(c) for c in channels]
        if len(ch) < 2:
            raise ValueError(f"FastMRIUNet needs at least 2 levels, got channels={ch}")
        self.down = nn.ModuleList([ConvBlock(in_channels if i == 0 else ch[i - 1], ch[i], dropout) for i in range(len(ch) - 1)])
        self.bottleneck = ConvBlock(ch[-2], ch[-1], dropout)
        levels = range(len(ch) - 2, -1, -1)  # deepest skip first
        self.up_transpose = nn.ModuleList([TransposeConvBlock(ch[i + 1], ch[i]) for i in levels])
        self.up_conv = nn.ModuleList([ConvBlock(2 * ch[i], ch[i], dropout) for i in levels])
        self.head = nn.Conv3d(ch[0], 1, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.avg_pool3d(x, kernel_size=2, stride=2)
        x = self.bottleneck(x)
        for up, block in zip(self.up_transpose, self.up_conv):
            skip = skips.pop()
            x = up(x)
            # odd edges: pad the end of each short axis by one voxel (F.pad lists the last axis first)
            pad = [p for a in (4, 3, 2) for p in (0, skip.shape[a] - x.shape[a])]
            if any(pad):
                x = F.pad(x, pad, mode="reflect")
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)


def build_unet(channels: Sequence[int], **kw) -> nn.Module:
    """:class:`FastMRIUNet` with the given per-level widths."""
    return FastMRIUNet(channels, **kw)
