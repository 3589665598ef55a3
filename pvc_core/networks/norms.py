"""Instance instead of batch normalisation in networks built from MONAI blocks that fix batch norm.

DL-PVC trains on one or two 3-D volumes per batch: batch statistics of so few samples are
noisy, and batch norm then normalises differently in training (batch statistics) and in
prediction (running averages). Instance norm normalises every sample by its own statistics, the
same way in both. MONAI's ``AttentionUnet`` and its ``AttentionBlock`` (the attention gate) hard-code
``BatchNorm3d``; :func:`batch_to_instance_norm` swaps each for an ``InstanceNorm3d`` with the
same features, epsilon and affine parameters (so the parameter count is unchanged) and no
running statistics.
"""

from __future__ import annotations

from torch import nn

__all__ = ["batch_to_instance_norm"]

_INSTANCE = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}
_DIMS = {nn.BatchNorm1d: 1, nn.BatchNorm2d: 2, nn.BatchNorm3d: 3}


def batch_to_instance_norm(module: nn.Module) -> nn.Module:
    """Replace, in place, every ``BatchNorm{1,2,3}d`` inside ``module`` by ``InstanceNorm{1,2,3}d``; returns it."""
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            dims = _DIMS.get(type(child))
            if dims is not None:
                setattr(parent, name, _INSTANCE[dims](child.num_features, eps=child.eps, affine=child.affine,
                                                      track_running_stats=False))
    return module
