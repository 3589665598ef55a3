"""R2U-Net (Alom et al. 2018): a U-Net whose conv blocks are recurrent-residual (RRCNN) blocks.

The paper's best architecture for DL-PVC. MONAI has no R2U-Net, so it is assembled here from the
blocks in :mod:`pvc_core.networks.recurrent_blocks`: max-pooling down, nearest-neighbour + conv
up, skip connections by concatenation, a 1x1x1 output convolution. ``attention=True`` adds
Oktay's additive attention gates (MONAI's ``AttentionBlock``, its batch norm replaced by instance
norm as everywhere in dlpvc, :mod:`pvc_core.networks.norms`) on the skips, which gives
R2AttU-Net (:mod:`pvc_core.networks.r2attention_unet`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets.attentionunet import AttentionBlock
from torch import nn

from pvc_core.networks.norms import batch_to_instance_norm
from pvc_core.networks.recurrent_blocks import RRCNNBlock, UpConv


class R2UNet(nn.Module):
    """Recurrent-residual U-Net with ``len(channels)`` levels, 1 input and 1 output channel (3-D).

    Parameters
    ----------
    channels:
        Feature widths per level, top first.
    t:
        Recurrence steps of every recurrent convolutional layer (Alom et al.: 2).
    attention:
        Gate each skip connection with an additive attention block (R2AttU-Net).
    act, norm, dropout:
        Passed to every convolution (MONAI names).
    in_channels:
        Input channels (1: the SPECT image; 2: SPECT and attenuation map).
    """

    def __init__(self, channels: Sequence[int], t: int = 2, attention: bool = False, act="relu",
                 norm="instance", dropout: float = 0.0, in_channels: int = 1) -> None:
        super().__init__()
        ch = [int(c) for c in channels]
        if len(ch) < 2:
            raise ValueError(f"R2UNet needs at least 2 levels, got channels={ch}")
        kw = dict(act=act, norm=norm, dropout=dropout)
        self.pool = nn.MaxPool3d(2)
        self.encoder = nn.ModuleList([RRCNNBlock(in_channels if i == 0 else ch[i - 1], ch[i], t, **kw) for i in range(len(ch))])
        self.up = nn.ModuleList([UpConv(ch[i + 1], ch[i], **kw) for i in range(len(ch) - 1)])
        self.gates = batch_to_instance_norm(nn.ModuleList([
            AttentionBlock(3, f_int=max(ch[i] // 2, 1), f_g=ch[i], f_l=ch[i]) for i in range(len(ch) - 1)
        ])) if attention else None
        self.decoder = nn.ModuleList([RRCNNBlock(2 * ch[i], ch[i], t, **kw) for i in range(len(ch) - 1)])
        self.head = nn.Conv3d(ch[0], 1, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.encoder):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        for i in range(len(self.decoder) - 1, -1, -1):
            d = self.up[i](x)
            s = skips[i] if self.gates is None else self.gates[i](g=d, x=skips[i])
            x = self.decoder[i](torch.cat([s, d], dim=1))
        return self.head(x)


def build_r2unet(channels: Sequence[int], **kw) -> nn.Module:
    """:class:`R2UNet` without attention gates."""
    return R2UNet(channels, attention=False, **kw)
