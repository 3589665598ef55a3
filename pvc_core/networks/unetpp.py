"""UNet++ (Zhou et al. 2018), a nested U-Net of any depth built from MONAI's BasicUNet blocks.

Why not ``monai.networks.nets.BasicUNetPlusPlus`` itself: it has a fixed depth of five levels
(``features`` = 5 encoder widths + 1), whereas every architecture here takes the same
``channels`` list of the configuration (e.g. [16, 32, 64, 128], four levels) and must accept any
input divisible by ``2 ** (len(channels) - 1)``. At five levels MONAI's network would need inputs
divisible by 16 and reduce a 16^3 test volume to a single voxel, where instance normalisation
fails. :class:`NestedUNet` is the same graph with a free depth: the same ``TwoConv`` / ``Down``
/ ``UpCat`` blocks, the same dense skip pattern ``X[i, j] = UpCat(X[i+1, j-1], X[i, 0..j-1])``,
the same instance norm and LeakyReLU(0.1); with five levels and
``features = (*channels, channels[0])`` it has exactly the parameters of ``BasicUNetPlusPlus``
(tested). By default only the deepest full-resolution node ``X[0, L-1]`` feeds the 1x1x1 output
convolution. With ``deep_supervision`` (Zhou et al.'s option) every full-resolution node
``X[0, 1..L-1]`` has its own 1x1x1 head; in training mode the network returns their outputs as
channels (the loss is then the mean over the heads), in eval mode the deepest head alone, so
prediction is unchanged in shape.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets.basic_unet import Down, TwoConv, UpCat
from torch import nn


class NestedUNet(nn.Module):
    """UNet++ with ``len(channels)`` levels, 1 input and 1 output channel (3-D).

    Parameters
    ----------
    channels:
        Feature widths per level, top (full resolution) first.
    act, norm, dropout, upsample:
        As in MONAI's ``BasicUNetPlusPlus`` (defaults identical).
    in_channels:
        Input channels (1: the SPECT image; 2: SPECT and attenuation map).
    deep_supervision:
        A head on every full-resolution node; training mode returns ``L - 1`` output channels.
    """

    def __init__(self, channels: Sequence[int], act=("LeakyReLU", {"negative_slope": 0.1, "inplace": True}),
                 norm=("instance", {"affine": True}), dropout: float = 0.0, upsample: str = "deconv",
                 in_channels: int = 1, deep_supervision: bool = False) -> None:
        super().__init__()
        fea = [int(c) for c in channels]
        if len(fea) < 2:
            raise ValueError(f"NestedUNet needs at least 2 levels, got channels={fea}")
        self.levels = n = len(fea)
        self.encoder = nn.ModuleList([TwoConv(3, in_channels, fea[0], act, norm, True, dropout)]
                                     + [Down(3, fea[i - 1], fea[i], act, norm, True, dropout) for i in range(1, n)])
        self.nodes = nn.ModuleDict()
        for j in range(1, n):                # column: number of upsampling steps behind the node
            for i in range(n - j):           # row: resolution level
                self.nodes[f"{i}_{j}"] = UpCat(3, fea[i + 1], fea[i] * j, fea[i], act, norm, True, dropout,
                                               upsample, halves=i > 0)
        self.head = nn.Conv3d(fea[0], 1, kernel_size=1)
        self.deep_supervision = bool(deep_supervision)
        # heads of X[0, 1..L-2]; X[0, L-1] keeps self.head (same parameter names as without)
        self.side_heads = nn.ModuleList([nn.Conv3d(fea[0], 1, kernel_size=1) for _ in range(n - 2)]
                                        if self.deep_supervision else [])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.levels
        grid: list[list[torch.Tensor]] = [[] for _ in range(n)]
        for i in range(n):
            x = self.encoder[i](x)
            grid[i].append(x)
            # every node that becomes computable once level i exists (the diagonal ending at row 0)
            for j in range(1, i + 1):
                row = i - j
                grid[row].append(self.nodes[f"{row}_{j}"](grid[row + 1][j - 1], torch.cat(grid[row][:j], dim=1)))
        if self.deep_supervision and self.training:
            return torch.cat([h(grid[0][j + 1]) for j, h in enumerate(self.side_heads)] + [self.head(grid[0][n - 1])],
                             dim=1)
        return self.head(grid[0][n - 1])


def build_unetpp(channels: Sequence[int], **kw) -> nn.Module:
    """:class:`NestedUNet` with the given per-level widths."""
    return NestedUNet(channels, **kw)
