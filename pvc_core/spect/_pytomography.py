"""Import PyTomography quietly and run its code on a chosen device.

PyTomography keeps its device in a module global (``pytomography.device``) and moves tensors
there inside its likelihoods and filters; :func:`pytomography_on` sets it for the duration of a
call and restores it afterwards, so that our ``device`` argument is honoured.
"""

from __future__ import annotations

import contextlib
import io

import torch

with contextlib.redirect_stdout(io.StringIO()):  # it prints a banner when no GPU is present
    import pytomography  # noqa: E402


@contextlib.contextmanager
def pytomography_on(device: torch.device | str):
    """Temporarily set PyTomography's global device (and float32 dtype)."""
    old_device, old_dtype = pytomography.device, pytomography.dtype
    pytomography.device = torch.device(device)
    pytomography.dtype = torch.float32
    try:
        yield
    finally:
        pytomography.device, pytomography.dtype = old_device, old_dtype
