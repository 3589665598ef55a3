"""Materials of the phantoms and their linear attenuation coefficient at 208 keV (Lu-177 photopeak).

``mu = (mu/rho)(208 keV) * density``. The mass attenuation coefficients (total, with coherent
scattering) are NIST's tabulated values at 200 and 300 keV (J. H. Hubbell and S. M. Seltzer,
*Tables of X-Ray Mass Attenuation Coefficients and Mass Energy-Absorption Coefficients*, NIST
Standard Reference Database 126 / NISTIR 5632, Table 4; the same numbers XCOM gives), interpolated
log-log to 208.4 keV (the photopeak of Lu-177; 208 keV in the text). Densities are ICRU Report 44
values unless said otherwise. Tissue compositions follow ICRU 44 as in NIST's table.

====================  ==========================================  =================  ===========
material              NIST Table 4 entry (mu/rho at 200/300 keV)  density g/cm^3     mu 1/cm
====================  ==========================================  =================  ===========
outside               (vacuum: outside the body)                  0                  0
air                   Air, Dry (near sea level) 0.1233/0.1067     0.001205           0.000146
lung                  Lung Tissue (ICRU-44) 0.1359/0.1177         0.26 (inflated)    0.0348
adipose               Adipose Tissue (ICRU-44) 0.1368/0.1187      0.95               0.1281
soft_tissue           Muscle, Skeletal (ICRU-44) 0.1358/0.1176    1.05               0.1405
water                 Water, Liquid 0.1370/0.1186                 1.00               0.1350
brain                 see below                                   1.04               0.1399
spongiosa             see below                                   1.18               0.1565
cortical_bone         Bone, Cortical (ICRU-44) 0.1309/0.1113      1.92               0.2472
====================  ==========================================  =================  ===========

Notes (the only values not read straight from the table):

- lung: NIST lists lung *tissue* at 1.05 g/cm^3; inflated lung is 0.26 g/cm^3 (ICRU Report 46,
  adult healthy inflated lung).
- brain: Brain, Grey/White Matter (ICRU-44), density 1.04 g/cm^3. At 208 keV attenuation is
  Compton scattering almost entirely, so mu/rho scales with Z/A; we scale the muscle value by
  the ratio of their Z/A (0.55239 / 0.54938, NIST Table 2). The same scaling from muscle to
  water reproduces NIST's water value within 0.2 %.
- spongiosa: trabecular bone with marrow. Density 1.18 g/cm^3 is an assumption (typical adult
  spongiosa, cf. ICRU Report 46); mu/rho is that of the mass-weighted mixture of cortical bone and
  muscle with this density (24 % cortical bone by mass).
- outside: the air around the body is treated as vacuum, so that ``mu > 0`` is exactly the body
  (air would add 0.9 % attenuation over 60 cm).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Photon energy of the Lu-177 photopeak in keV (the 208.4 keV gamma line).
PHOTOPEAK_KEV = 208.4


@dataclass(frozen=True)
class Material:
    """A material: NIST mass attenuation coefficients at 200 and 300 keV (cm^2/g) and density (g/cm^3)."""

    name: str
    source: str
    density_g_cm3: float
    mu_rho_200kev: float
    mu_rho_300kev: float

    def mu_per_cm(self, energy_kev: float = PHOTOPEAK_KEV) -> float:
        """Linear attenuation coefficient (1/cm) at ``energy_kev`` (200-300 keV), log-log interpolated."""
        if not 200.0 <= energy_kev <= 300.0:
            raise ValueError(f"energy {energy_kev} keV outside the tabulated 200-300 keV")
        if self.density_g_cm3 == 0.0:
            return 0.0
        t = math.log(energy_kev / 200.0) / math.log(300.0 / 200.0)
        mu_rho = math.exp((1 - t) * math.log(self.mu_rho_200kev) + t * math.log(self.mu_rho_300kev))
        return mu_rho * self.density_g_cm3


_Z_OVER_A_MUSCLE = 0.54938  # NIST Table 2, Muscle, Skeletal (ICRU-44)
_Z_OVER_A_BRAIN = 0.55239  # NIST Table 2, Brain, Grey/White Matter (ICRU-44)
_MUSCLE = (0.1358, 0.1176)
_CORTICAL = (0.1309, 0.1113)
_SPONGIOSA_DENSITY = 1.18
# Volume fraction f of cortical bone (1.92) in muscle (1.05) giving 1.18 g/cm^3, then its mass fraction.
_F_CORT_VOL = (_SPONGIOSA_DENSITY - 1.05) / (1.92 - 1.05)
_W_CORT = 1.92 * _F_CORT_VOL / _SPONGIOSA_DENSITY

MATERIALS: dict[str, Material] = {
    m.name: m for m in (
        Material("outside", "vacuum outside the body (air neglected)", 0.0, 1.0, 1.0),
        Material("air", "NIST Table 4: Air, Dry (near sea level)", 0.001205, 0.1233, 0.1067),
        Material("lung", "NIST Table 4: Lung Tissue (ICRU-44); density 0.26 inflated lung (ICRU 46)", 0.26,
                 0.1359, 0.1177),
        Material("adipose", "NIST Table 4: Adipose Tissue (ICRU-44)", 0.95, 0.1368, 0.1187),
        Material("soft_tissue", "NIST Table 4: Muscle, Skeletal (ICRU-44)", 1.05, *_MUSCLE),
        Material("water", "NIST Table 4: Water, Liquid", 1.00, 0.1370, 0.1186),
        Material("brain", "Brain, Grey/White Matter (ICRU-44) density; muscle mu/rho scaled by Z/A", 1.04,
                 _MUSCLE[0] * _Z_OVER_A_BRAIN / _Z_OVER_A_MUSCLE, _MUSCLE[1] * _Z_OVER_A_BRAIN / _Z_OVER_A_MUSCLE),
        Material("spongiosa", "assumption: 1.18 g/cm^3 mixture of cortical bone and muscle (NIST Table 4)",
                 _SPONGIOSA_DENSITY, _W_CORT * _CORTICAL[0] + (1 - _W_CORT) * _MUSCLE[0],
                 _W_CORT * _CORTICAL[1] + (1 - _W_CORT) * _MUSCLE[1]),
        Material("cortical_bone", "NIST Table 4: Bone, Cortical (ICRU-44)", 1.92, *_CORTICAL),
    )
}


def mu_208kev(material: str) -> float:
    """Linear attenuation coefficient (1/cm) of ``material`` at the Lu-177 photopeak (208.4 keV)."""
    try:
        return MATERIALS[material].mu_per_cm()
    except KeyError:
        raise KeyError(f"unknown material {material!r}; known: {sorted(MATERIALS)}") from None


def mu_lookup(label_materials: dict[int, str]) -> np.ndarray:
    """Table of 256 float32 mu values (1/cm): entry ``label`` is the mu of its material.

    Labels not in ``label_materials`` get NaN, so a missing entry never passes unnoticed.
    """
    table = np.full(256, np.nan, dtype=np.float32)
    for label, material in label_materials.items():
        table[int(label)] = mu_208kev(material)
    return table
