"""A CT in Hounsfield units (HU) as the attenuation map of the network's CT channel.

Bilinear HU-to-mu conversion at the Lu-177 photopeak (208 keV), the usual two-segment scaling of
SPECT/CT attenuation correction (Brown et al., Med Phys 2008;35:2290; MIRD Pamphlet 26):

* ``HU <= 0`` (air to water): ``mu = mu_water * (1 + HU / 1000)``; -1000 HU gives 0;
* ``HU > 0`` (water to bone): the line from water ``(0, mu_water)`` to cortical bone
  ``(HU_CORTICAL_BONE, mu_bone)``.

``mu_water`` and ``mu_bone`` are the NIST values of :mod:`pvc_core.phantom.materials` (water and
cortical bone, ICRU-44, 1.92 g/cm^3) at 208 keV. ``HU_CORTICAL_BONE`` = 1900 HU is cortical bone at
120-130 kVp; the bone segment depends on the tube voltage, which the user's CT header may state
(not used: the CT's role here is the network's second input, trained on the simulator's mu maps).
Values outside :data:`HU_RANGE` are refused: they are not a CT in HU (padding of -2000 or -3024
outside the reconstruction circle included; set it to -1000 or -1024 first).
"""

from __future__ import annotations

import numpy as np

from pvc_core.errors import InputError
from pvc_core.geometry.resample import resample_mean
from pvc_core.io import Image
from pvc_core.phantom.materials import mu_208kev

#: Accepted CT values (HU), inclusive.
HU_RANGE = (-1024.0, 4000.0)
#: HU of cortical bone at 120-130 kVp: the upper point of the bilinear conversion.
HU_CORTICAL_BONE = 1900.0

__all__ = ["HU_RANGE", "HU_CORTICAL_BONE", "hu_to_mu_208kev", "ct_mu_on_grid"]


def hu_to_mu_208kev(hu: np.ndarray) -> np.ndarray:
    """Linear attenuation coefficient (1/cm) at 208 keV of CT values in HU (bilinear; >= 0, float32)."""
    hu = np.asarray(hu, dtype=np.float64)
    mu_w, mu_b = mu_208kev("water"), mu_208kev("cortical_bone")
    mu = np.where(hu <= 0, mu_w * (1.0 + hu / 1000.0), mu_w + hu * (mu_b - mu_w) / HU_CORTICAL_BONE)
    return np.clip(mu, 0.0, None).astype(np.float32)


def ct_mu_on_grid(ct: Image, shape: tuple[int, int, int], affine: np.ndarray, source: str) -> tuple[np.ndarray, float]:
    """The CT as mu (1/cm at 208 keV) averaged onto the grid ``(shape, affine)``; and the fraction
    of that grid's voxels the CT covers.

    Raises :class:`InputError` naming ``source`` when values lie outside :data:`HU_RANGE` or the CT
    does not overlap the grid at all. Voxels the CT does not cover get mu 0 (air).
    """
    lo, hi = float(ct.data.min()), float(ct.data.max())
    if lo < HU_RANGE[0] or hi > HU_RANGE[1]:
        raise InputError(f"CT values {lo:.0f}..{hi:.0f} lie outside {HU_RANGE[0]:.0f}..{HU_RANGE[1]:.0f} HU; "
                         "give a CT in Hounsfield units (padding outside the scan set to -1000)", source)
    mu = hu_to_mu_208kev(ct.data)
    coverage = resample_mean(np.ones(ct.data.shape, np.float32), ct.affine, shape, affine)
    covered = float(np.mean(coverage > 0.5))
    if covered == 0.0:
        raise InputError("the CT does not overlap the SPECT's field of view (check both images' positions)", source)
    return resample_mean(mu, ct.affine, shape, affine).astype(np.float32), covered
