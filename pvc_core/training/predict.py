"""Apply a trained DL-PVC network: load a checkpoint, correct an image, conserve its activity.

A checkpoint (``model.pt``, written by :func:`pvc_core.training.train.train_model`) is
self-describing: it holds the state dict, the model configuration (architecture, channels,
normalisation, input mode, ...) and the network options, so :func:`load_model` rebuilds the
network without any other file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pvc_core.errors import InputError
from pvc_core.networks import build_network, size_divisor
from pvc_core.training.augmentation import inverse_symmetry, symmetries, symmetry
from pvc_core.training.normalisation import attenuation_input, input_scale, rescale_output
from pvc_core.training.patches import PATCH_SIZE, apply_patchwise, crop_to, pad_to_multiple

#: Identifies our checkpoints; bump ``CHECKPOINT_VERSION`` when the layout or a network changes.
#: Version 2: ``unet`` is the fastMRI U-Net and every network uses instance norm ([2.4]).
CHECKPOINT_FORMAT = "dlpvc-model"
CHECKPOINT_VERSION = 2
#: Architecture names of format-1 model files that are called differently now.
_RENAMED_SINCE_V1 = {"unet": "resunet"}

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "resolve_device", "autocast_for", "cpu_has_bf16", "load_model",
           "predict_image", "predict_normalised", "takes_attenuation"]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a torch device; ``None`` or ``'auto'`` means CUDA when available, else CPU.

    ``'cuda'`` (or ``'cuda:N'``) without a GPU that torch can use is an :class:`InputError`
    naming the ``device`` option.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise InputError(f"key 'device': {device!r} is not a torch device ({err}); use auto, cpu or cuda".splitlines()[0],
                         "training model") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("key 'device': cuda requested but torch sees no CUDA GPU on this machine; use auto or cpu",
                         "training model")
    return dev


def autocast_for(model_cfg: dict, device: torch.device):
    """The autocast context of a model's ``precision`` on ``device``: bfloat16 on CUDA and the CPU
    for ``'bf16'`` (in training, validation and prediction alike), otherwise a disabled one (fp32).
    The caller casts the output to float32 before the loss, the un-normalisation and the
    activity conservation."""
    bf16 = model_cfg.get("precision", "fp32") == "bf16" and device.type in ("cuda", "cpu")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)


def cpu_has_bf16() -> bool:
    """Whether this CPU does bfloat16 arithmetic natively (AMX tiles or AVX512-BF16, what oneDNN's
    bf16 convolutions use); without, torch emulates bf16 on the CPU, correct but slow."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(bool(probe()) for probe in probes if probe is not None)


def load_model(path: str | os.PathLike, device: str | torch.device | None = None) -> tuple[nn.Module, dict]:
    """Rebuild the network of a checkpoint in eval mode; returns ``(module, model_cfg)``.

    Raises :class:`InputError` naming the file when it is missing, unreadable or not a dlpvc
    checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("model file not found", path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt or foreign files
        if "weights only load failed" in str(err).lower():  # torch's advice to unpickle it is not ours to give
            raise InputError("holds Python objects besides tensors, so it is not a dlpvc model checkpoint "
                             "(dlpvc reads weights only, never code from a model file)", path) from None
        raise InputError(f"cannot read model checkpoint ({type(err).__name__}: {err})".splitlines()[0], path) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise InputError("not a dlpvc model checkpoint (no 'format: dlpvc-model' entry)", path)
    if ckpt.get("format_version", 0) > CHECKPOINT_VERSION:
        raise InputError(f"checkpoint format {ckpt['format_version']} is newer than this dlpvc reads "
                         f"({CHECKPOINT_VERSION}); update dlpvc", path)
    cfg = dict(ckpt["model_cfg"])
    version = int(ckpt.get("format_version", 0))
    if version < 2:  # dlpvc's unet before [2.4] is resunet now
        cfg["architecture"] = _RENAMED_SINCE_V1.get(cfg["architecture"], cfg["architecture"])
    module = build_network(cfg["architecture"], cfg["channels"], **ckpt.get("network_kwargs", {}))
    try:
        module.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        old = (f"; the file is of format {version}, from before every network used instance norm: train it again"
               if version < 2 else "")
        raise InputError(f"weights do not fit architecture {cfg['architecture']!r} "
                         f"({str(err).splitlines()[0]}){old}", path) from None
    module.to(resolve_device(device)).eval()
    return module, cfg


@torch.no_grad()
def predict_normalised(module: nn.Module, model_cfg: dict, x: np.ndarray, device: torch.device,
                       patch_batch: int = 8, mu: np.ndarray | None = None) -> np.ndarray:
    """Network output for a max-normalised volume ``x`` (same shape, float32, input-max units).

    ``mu``: the attenuation channel (:func:`~pvc_core.training.normalisation.attenuation_input`,
    same shape) of a model with ``attenuation_channel``; stacked after ``x`` as its second channel.

    ``'full'``: the volume is zero-padded to a multiple of :func:`~pvc_core.networks.size_divisor`
    and run at once. ``'patch32'``: 32^3 patches with half-patch overlap, blended
    (:func:`~pvc_core.training.patches.apply_patchwise`). The caller sets eval/train mode.
    """
    shape = x.shape
    minimum = PATCH_SIZE if model_cfg["input"] == "patch32" else 0
    channels = [pad_to_multiple(v, size_divisor(model_cfg["channels"]), minimum) for v in (x, mu) if v is not None]
    xp = np.stack(channels).astype(np.float32, copy=False)  # (C, D, H, W)
    if model_cfg["input"] == "full":
        with autocast_for(model_cfg, device):
            out = module(torch.from_numpy(xp)[None].to(device))
        return crop_to(out[0, 0].float().cpu().numpy(), shape)
    if model_cfg["input"] == "patch32":

        def run(batch: np.ndarray) -> np.ndarray:
            t = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(device)
            with autocast_for(model_cfg, device):
                return module(t)[:, 0].float().cpu().numpy()

        return crop_to(apply_patchwise(xp, run, PATCH_SIZE, batch_size=patch_batch), shape)
    raise InputError(f"model input must be 'full' or 'patch32', got {model_cfg['input']!r}")


def predict_image(module: nn.Module, model_cfg: dict, image: np.ndarray,
                  device: str | torch.device | None = None, mu_cm: np.ndarray | None = None) -> np.ndarray:
    """Partial-volume-corrected image (float32, MBq/mL) of a SPECT ``image`` (MBq/mL).

    The image is divided by its maximum, run through the network ('full' field of view or
    reassembled 32^3 patches, as the model was trained), multiplied by the maximum again and, for
    ``normalisation='sum'``, scaled so that its total equals the input's. An image without
    positive values is returned as zeros.

    ``mu_cm``: the attenuation map (1/cm at 208 keV) on the image's grid, required by a model
    with ``attenuation_channel`` and refused by one without (:class:`InputError`).

    ``model_cfg['tta']`` (test-time augmentation): the network output is the mean over the
    orbit symmetries of :func:`~pvc_core.training.augmentation.symmetries` (16 for a square axial
    plane) of the output for the transformed input, transformed back; then un-normalised as above.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3:
        raise InputError(f"image must be a 3-D volume, got shape {image.shape}")
    mu = _attenuation_channel(model_cfg, image.shape, mu_cm)
    scale = input_scale(image)
    if scale <= 0:
        return np.zeros(image.shape, np.float32)
    dev = resolve_device(device) if device is not None else next(module.parameters()).device
    was_training = module.training
    module.to(dev).eval()
    try:
        out_n = _predict_tta(module, model_cfg, image / scale, dev, mu) if model_cfg.get("tta") else (
            predict_normalised(module, model_cfg, image / scale, dev, mu=mu))
    finally:
        module.train(was_training)
    return rescale_output(out_n, scale, image, model_cfg["normalisation"])


def _predict_tta(module: nn.Module, model_cfg: dict, x: np.ndarray, device: torch.device,
                 mu: np.ndarray | None) -> np.ndarray:
    """Mean of :func:`predict_normalised` over the orbit symmetries of ``x`` (and ``mu``), each undone."""
    acc = np.zeros(x.shape, np.float64)
    group = symmetries(x.shape)
    for turns, flips in group:
        xs = np.ascontiguousarray(symmetry(x, turns, flips))
        ms = None if mu is None else np.ascontiguousarray(symmetry(mu, turns, flips))
        acc += inverse_symmetry(predict_normalised(module, model_cfg, xs, device, mu=ms), turns, flips)
    return (acc / len(group)).astype(np.float32)


def takes_attenuation(model_cfg: dict) -> bool:
    """Whether a model takes the attenuation map (the CT) as its second input channel."""
    return bool(model_cfg.get("attenuation_channel", False))


def _attenuation_channel(model_cfg: dict, shape: tuple[int, ...], mu_cm: np.ndarray | None) -> np.ndarray | None:
    """The attenuation channel for :func:`predict_image`, checked against the model."""
    if not takes_attenuation(model_cfg):
        if mu_cm is not None:
            raise InputError("this model was trained without the attenuation map (CT channel); do not give one")
        return None
    if mu_cm is None:
        raise InputError("this model takes the attenuation map (CT channel) as a second input; give the CT")
    mu_cm = np.asarray(mu_cm)
    if mu_cm.shape != tuple(shape):
        raise InputError(f"attenuation map of shape {mu_cm.shape} differs from the image's {tuple(shape)}")
    return attenuation_input(mu_cm)
