"""Attention U-Net (Oktay et al. 2018): MONAI's ``AttentionUnet`` with instance normalisation.

Additive attention gates weight each skip connection by a map computed from the coarser decoder
features, so that the decoder can suppress irrelevant regions. MONAI's implementation uses
stride-2 convolutions for downsampling; its last layer is a 1x1x1 convolution without activation
(non-negativity is added by the caller). Its batch normalisation, in the convolutions and in the
attention gates, is replaced by instance normalisation (:mod:`pvc_core.networks.norms`).
"""

from __future__ import annotations

from collections.abc import Sequence

from monai.networks.nets import AttentionUnet
from torch import nn

from pvc_core.networks.norms import batch_to_instance_norm


def build_attention_unet(channels: Sequence[int], dropout: float = 0.0, in_channels: int = 1, **kw) -> nn.Module:
    """MONAI ``AttentionUnet`` with ``in_channels`` inputs and 1 output channel, stride 2 at every level, instance norm."""
    return batch_to_instance_norm(AttentionUnet(spatial_dims=3, in_channels=in_channels, out_channels=1,
                                                channels=tuple(channels), strides=(2,) * (len(channels) - 1),
                                                dropout=dropout, **kw))
