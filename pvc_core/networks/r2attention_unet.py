"""R2AttU-Net (Wang et al. 2020): R2U-Net with attention-gated skip connections.

Combines the recurrent-residual blocks of Alom et al. with the additive attention gates of
Oktay et al. MONAI has neither the combination nor the recurrent blocks, so this reuses
:class:`~pvc_core.networks.r2unet.R2UNet` with ``attention=True`` (gates: MONAI's
``AttentionBlock``).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from pvc_core.networks.r2unet import R2UNet


def build_r2attention_unet(channels: Sequence[int], **kw) -> nn.Module:
    """:class:`~pvc_core.networks.r2unet.R2UNet` with attention gates on every skip connection."""
    return R2UNet(channels, attention=True, **kw)
