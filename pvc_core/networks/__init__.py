"""3-D networks for DL-PVC: one module per architecture, built by :func:`build_network`.

Every network maps one input channel (the max-normalised SPECT image; a second, the attenuation
map, when the model takes the CT) to one output channel (the activity estimate in the same units), keeps the spatial shape for any input whose edges are
divisible by ``2 ** (len(channels) - 1)`` (:func:`size_divisor`), and ends in the non-negative
head of :mod:`pvc_core.networks.output`.

Names (fixed by the configuration schema): the paper's five, ``unet`` (the fastMRI U-Net),
``attention_unet``, ``unetpp``, ``r2unet``, ``r2attention_unet``, and ``resunet`` (MONAI's
residual-unit U-Net, dlpvc's ``unet`` before the fastMRI one). All normalise by instance, never
by batch (:mod:`pvc_core.networks.norms`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from importlib import import_module

from torch import nn

from pvc_core.networks.output import NonNegativeOutput

#: Architecture name -> (module, builder). Modules are imported when their network is built: the
#: MONAI-based ones import MONAI, which imports matplotlib (about 1 s), and ``dlpvc apply`` with the
#: fastMRI ``unet`` needs neither.
_BUILDERS: dict[str, tuple[str, str]] = {
    "unet": ("unet", "build_unet"),
    "attention_unet": ("attention_unet", "build_attention_unet"),
    "unetpp": ("unetpp", "build_unetpp"),
    "r2unet": ("r2unet", "build_r2unet"),
    "r2attention_unet": ("r2attention_unet", "build_r2attention_unet"),
    "resunet": ("resunet", "build_resunet"),
}


def _builder(name: str) -> Callable[..., nn.Module]:
    module, function = _BUILDERS[name]
    return getattr(import_module(f"pvc_core.networks.{module}"), function)


#: Architecture names accepted by :func:`build_network` (same as the schema's enum).
ARCHITECTURES: tuple[str, ...] = tuple(_BUILDERS)

__all__ = ["ARCHITECTURES", "build_network", "count_parameters", "size_divisor", "NonNegativeOutput"]


def build_network(name: str, channels: Sequence[int], residual: bool = True, in_channels: int = 1,
                  **kw) -> nn.Module:
    """Build architecture ``name`` (``in_channels`` -> 1 channel, 3-D) with per-level widths ``channels``.

    ``in_channels`` 1: the max-normalised SPECT image; 2: that and the attenuation map
    (:func:`pvc_core.training.normalisation.attenuation_input`).

    ``residual`` adds the input to the network output before the final ReLU (see
    :mod:`pvc_core.networks.output`); other keywords go to the architecture's builder
    (e.g. ``dropout``; ``t`` for the R2 networks; ``num_res_units`` for ``resunet``).
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}")
    channels = [int(c) for c in channels]
    if len(channels) < 2 or min(channels) < 1:
        raise ValueError(f"channels must list at least 2 positive widths, got {channels}")
    if int(in_channels) < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")
    return NonNegativeOutput(_builder(name)(channels, in_channels=int(in_channels), **kw), residual=residual)


def size_divisor(channels: Sequence[int]) -> int:
    """Input edges must be multiples of this: ``2 ** (len(channels) - 1)`` (one halving per level)."""
    return 2 ** (len(channels) - 1)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
