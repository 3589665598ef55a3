"""Energy windows and the detector's energy response.

Three windows (paper: 20 % photopeak window at 208 keV and two adjacent 10 % scatter windows):
``photopeak`` = E0 (1 +- w/2), ``lower`` directly below it and ``upper`` directly above it, each
``s`` percent of E0 wide. The energy response is a Gaussian whose relative FWHM is the configured
resolution at E0 scaled as 1/sqrt(E) (scintillation statistics, e.g. Cherry, Sorenson & Phelps,
*Physics in Nuclear Medicine* 4th ed., ch. 10).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from math import sqrt

import numpy as np
from scipy.special import erf

from pvc_core.specs import EnergyWindowsSpec
from pvc_core.spect.collimator import FWHM_PER_SIGMA

#: Window names in the order they are stored and written.
WINDOW_NAMES = ("photopeak", "lower", "upper")


@dataclass(frozen=True)
class EnergyWindows(EnergyWindowsSpec):
    """The three acquisition windows (keV) and the energy resolution: bounds, widths and the
    detector's energy response. The fields are those of the settings'
    :class:`~pvc_core.specs.EnergyWindowsSpec`; build one from the camera's spec with
    :meth:`from_spec`."""

    @classmethod
    def from_spec(cls, spec: EnergyWindowsSpec) -> "EnergyWindows":
        """The windows of ``spec`` (``spec`` itself when it already is one)."""
        if isinstance(spec, cls):
            return spec
        return cls(**{f.name: getattr(spec, f.name) for f in fields(EnergyWindowsSpec)})

    def bounds_kev(self, name: str) -> tuple[float, float]:
        """(lower, upper) bound of window ``name`` in keV."""
        e0 = self.photopeak_kev
        half = e0 * self.photopeak_width_pct / 200.0
        width = e0 * self.scatter_width_pct / 100.0
        if name == "photopeak":
            return e0 - half, e0 + half
        if name == "lower":
            return e0 - half - width, e0 - half
        if name == "upper":
            return e0 + half, e0 + half + width
        raise KeyError(f"unknown energy window {name!r}; expected one of {WINDOW_NAMES}")

    def width_kev(self, name: str) -> float:
        lo, hi = self.bounds_kev(name)
        return hi - lo

    def sigma_kev(self, energy_kev: np.ndarray | float) -> np.ndarray:
        """Gaussian sigma (keV) of the energy response at ``energy_kev``."""
        e = np.asarray(energy_kev, dtype=float)
        fwhm = self.resolution_pct / 100.0 * self.photopeak_kev * np.sqrt(e / self.photopeak_kev)
        return fwhm / FWHM_PER_SIGMA

    def acceptance(self, name: str, energy_kev: np.ndarray | float) -> np.ndarray:
        """Probability that a photon depositing ``energy_kev`` is recorded in window ``name``."""
        lo, hi = self.bounds_kev(name)
        e = np.atleast_1d(np.asarray(energy_kev, dtype=float))
        s = self.sigma_kev(e) * sqrt(2.0)
        out = 0.5 * (erf((hi - e) / s) - erf((lo - e) / s))
        return out if np.ndim(energy_kev) else float(out[0])
