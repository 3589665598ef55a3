"""Intensity normalisation and activity conservation of DL-PVC (Leube et al. 2024).

* The network input is the SPECT image divided by its maximum (values in [0, 1]).
* The training target is the true activity divided by the **same** input maximum, so that the
  network never needs to know the absolute scale.
* The network output is multiplied back by the input maximum (MBq/mL). With
  ``normalisation='max'`` that is all; with ``normalisation='sum'`` (the paper's choice) the
  output is then scaled so that its total activity equals the input's (:func:`conserve_total`),
  which makes DL-PVC's activity deviation equal to that of the uncorrected SPECT.
* A model that takes the CT (``attenuation_channel: true``) gets a second input channel, the
  attenuation map at 208 keV in units of water's (:func:`attenuation_input`): about 1 in soft
  tissue, 0 in air, whatever the activity's scale.
"""

from __future__ import annotations

import warnings

import numpy as np

from pvc_core.errors import InputError
from pvc_core.phantom.materials import mu_208kev

#: Accepted values of ``model_cfg['normalisation']`` (schema ``$defs/normalisation``).
NORMALISATIONS = ("sum", "max")

#: Water's linear attenuation coefficient at 208 keV (1/cm): the unit of the attenuation channel.
MU_WATER_PER_CM = mu_208kev("water")

__all__ = ["MU_WATER_PER_CM", "NORMALISATIONS", "attenuation_input", "input_scale", "conserve_total",
           "rescale_output"]


def attenuation_input(mu_per_cm: np.ndarray) -> np.ndarray:
    """The attenuation channel of the network input: mu (1/cm at 208 keV) / mu of water (float32).

    Raises :class:`InputError` for NaN, infinite or negative values.
    """
    mu = np.asarray(mu_per_cm, dtype=np.float32)
    if not np.all(np.isfinite(mu)):
        raise InputError("attenuation map holds NaN or infinite values")
    if mu.size and float(mu.min()) < 0:
        raise InputError(f"attenuation map holds negative values (min {float(mu.min()):.4g} /cm)")
    return (mu / np.float32(MU_WATER_PER_CM)).astype(np.float32, copy=False)


def input_scale(image: np.ndarray) -> float:
    """The normalisation constant of an input image: its maximum (MBq/mL).

    Raises :class:`InputError` for NaN or infinite values.
    """
    image = np.asarray(image)
    if not np.all(np.isfinite(image)):
        raise InputError("input image holds NaN or infinite values")
    return float(image.max()) if image.size else 0.0


def conserve_total(output: np.ndarray, input_image: np.ndarray) -> np.ndarray:
    """Scale ``output`` so that ``sum(output) == sum(input_image)`` (float32 result).

    ``output * sum(input) / sum(output)``, computed in float64; the totals then agree to float32
    rounding (about 1e-7 relative). If the output holds no activity there is nothing to scale: the
    output is returned unchanged with a warning.
    """
    out = np.asarray(output, dtype=np.float64)
    if out.shape != np.shape(input_image):
        raise InputError(f"output shape {out.shape} differs from input shape {np.shape(input_image)}")
    total_in = float(np.sum(input_image, dtype=np.float64))
    total_out = float(out.sum())
    if total_out <= 0:
        warnings.warn(f"output total is {total_out:.4g}; activity cannot be conserved, output left unscaled",
                      RuntimeWarning, stacklevel=2)
        return out.astype(np.float32)
    return (out * (total_in / total_out)).astype(np.float32)


def rescale_output(output_normalised: np.ndarray, scale: float, input_image: np.ndarray,
                   normalisation: str) -> np.ndarray:
    """Network output (input-max units) back to MBq/mL, then conserve the total for ``'sum'``."""
    if normalisation not in NORMALISATIONS:
        raise InputError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")
    out = np.asarray(output_normalised, dtype=np.float64) * float(scale)
    if normalisation == "sum":
        return conserve_total(out, input_image)
    return out.astype(np.float32)
