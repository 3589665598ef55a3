"""Physical constants of the Lu-177 acquisition: emission lines and photon attenuation tables.

Emission lines (photons per decay) are the DDEP/LNHB recommended values for Lu-177
(Laboratoire National Henri Becquerel, *Table de Radionucleides*, Lu-177, 2013 evaluation;
the same values as ENSDF/NNDC within their uncertainties). Only the lines that can reach the
windows around 208 keV matter here: 208.4 keV (imaged), 249.7 keV and 321.3 keV (weak lines
above the photopeak that feed the upper scatter window). The 113 keV line cannot reach a window
above 166 keV and is listed for completeness.

Attenuation coefficients are NIST XCOM total attenuation with coherent scattering
(Berger et al., NIST Standard Reference Database 8), read from the tables that PyTomography
ships (``pytomography/data/NIST_attenuation_data``) and interpolated log-log in energy.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

import numpy as np

#: Lu-177 gamma lines: energy in keV -> emission probability per decay (DDEP/LNHB 2013).
LU177_LINES: dict[float, float] = {
    112.9498: 0.0620,
    208.3662: 0.1038,
    249.6735: 0.002012,
    321.3158: 0.00216,
}

#: The imaged photopeak line in keV.
LU177_PHOTOPEAK_KEV = 208.3662

#: Electron rest energy in keV.
ELECTRON_REST_KEV = 510.99895

#: Classical electron radius squared in cm^2 (CODATA 2018: r_e = 2.8179403262e-13 cm).
CLASSICAL_ELECTRON_RADIUS_SQ_CM2 = (2.8179403262e-13) ** 2

#: Electron density of liquid water in electrons per cm^3 (10 electrons per 18.0153 g/mol, 1 g/cm^3).
WATER_ELECTRON_DENSITY_PER_CM3 = 10 * 6.02214076e23 / 18.0153


def _nist_table_dir() -> Path:
    """PyTomography's NIST tables, found without importing it (that would load torch, ~1.5 s)."""
    spec = find_spec("pytomography")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("pytomography is not installed; its NIST attenuation tables are needed",
                                  name="pytomography")
    return Path(spec.submodule_search_locations[0]) / "data" / "NIST_attenuation_data"


@lru_cache(maxsize=None)
def _nist_table(material: str) -> tuple[float, np.ndarray, np.ndarray]:
    """(density g/cm^3, energies keV, mu/rho cm^2/g) of one NIST material table."""
    path = _nist_table_dir() / f"{material}.csv"
    lines = path.read_text().splitlines()
    density = float(lines[0].split()[0])
    energies, mu_rho = [], []
    for line in lines[1:]:
        parts = line.split()
        if not parts:
            continue
        if not parts[0][0].isdigit():  # absorption-edge label such as 'M1'
            parts = parts[1:]
        energies.append(float(parts[0]) * 1000.0)
        mu_rho.append(float(parts[1]))
    e = np.asarray(energies)
    m = np.asarray(mu_rho)
    # Tables list each absorption edge twice (below/above); keep energy strictly increasing by
    # nudging the upper duplicate, which is what log-log interpolation across an edge needs.
    for i in range(1, len(e)):
        if e[i] <= e[i - 1]:
            e[i] = e[i - 1] * (1 + 1e-9)
    return density, e, m


def linear_attenuation_per_cm(material: str, energy_kev: float | np.ndarray) -> np.ndarray | float:
    """Linear attenuation coefficient mu (1/cm) of ``material`` ('water', 'lead', ...) at ``energy_kev``.

    NIST XCOM total attenuation with coherent scattering, log-log interpolated, times the
    table's density.
    """
    density, e, m = _nist_table(material)
    energy = np.asarray(energy_kev, dtype=float)
    out = density * np.exp(np.interp(np.log(energy), np.log(e), np.log(m)))
    return float(out) if out.ndim == 0 else out
