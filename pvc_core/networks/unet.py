"""U-Net with residual units: MONAI's ``UNet`` (Kerfoot et al.) configured for 3-D regression.

The paper's baseline is a 3-D U-Net (Ronneberger et al.) after the fastMRI implementation; MONAI's
``UNet`` with two residual units per level, strided (2) convolutions for downsampling and
transposed convolutions for upsampling, instance normalisation and PReLU is the maintained
equivalent. Its last layer is a plain convolution (no norm, no activation), so its output is an
unconstrained regression map; :class:`~pvc_core.networks.output.NonNegativeOutput` adds the
non-negativity.
"""

from __future__ import annotations

from collections.abc import Sequence

from monai.networks.nets import UNet
from torch import nn


def build_unet(channels: Sequence[int], num_res_units: int = 2, dropout: float = 0.0, **kw) -> nn.Module:
    """MONAI ``UNet`` with 1 input and 1 output channel, ``len(channels) - 1`` stride-2 levels."""
    return UNet(spatial_dims=3, in_channels=1, out_channels=1, channels=tuple(channels),
                strides=(2,) * (len(channels) - 1), num_res_units=num_res_units, dropout=dropout, **kw)
