"""Voxel models of the paper's four validation phantoms in a cylindrical water phantom.

The paper (Leube et al. 2024, Table 2) measured 3-D printed inserts filled with Lu-177 in water:
a 100 mL sphere, a 100 mL ellipsoid and a 100 mL kidney-cortex shell (1.08 MBq/mL), and an
ICRP110-based two-compartment kidney (cortex 1.44, medulla 0.47 MBq/mL) with a spleen
(1.44 MBq/mL). The printed shapes are not public; the models here keep what drives the
partial-volume effect, the filled volume and the thickness of each compartment:

* sphere: 100 mL, radius 28.8 mm (exact);
* ellipsoid: 100 mL, semi-axes in ratio 2:1:1 (assumption: an elongated shape of the same volume);
* kidney-cortex shell: outer ellipsoid 30 x 25 x 55 mm semi-axes (long axis axial) (an adult kidney's size, ICRP 89)
  minus an inner ellipsoid scaled so that the shell holds 100 mL (wall 6-14 mm);
* ICRP110-like kidney: the same outer ellipsoid (172.8 mL) with the medulla as a central
  ellipsoid holding 30% of the kidney volume (ICRP 89 gives cortex:medulla about 70:30), cortex the
  rest; spleen: ellipsoid of 150 mL with semi-axes 1:1:1.5 (long axis axial) (ICRP 89 adult male spleen mass 150 g, density 1.04 ~ 1).
* water phantom: cylinder 216 mm in diameter and 186 mm long (assumption: Jaszczak-type
  inner dimensions), axis along array axis 2; water mu at 208 keV 0.1350 1/cm (NIST XCOM,
  water with coherent scattering, log-log interpolation between 200 and 250 keV).

Truth = fabrication mask x nominal concentration, as the paper evaluated its measurements.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Linear attenuation coefficient of water at 208 keV in 1/cm (NIST XCOM, see module docstring).
MU_WATER_208KEV_PER_CM = 0.1350

#: Water cylinder (assumption: Jaszczak-type inner dimensions), mm.
WATER_DIAMETER_MM = 216.0
WATER_LENGTH_MM = 186.0

#: Nominal concentrations from the paper, MBq/mL.
C_INSERT = 1.08
C_CORTEX_ICRP = 1.44
C_MEDULLA_ICRP = 0.47
C_SPLEEN_ICRP = 1.44

#: The paper's measured Table 2 (RR_n): region -> PVC method -> SSIM, NRMSE (%), VAA (%), RC. The
#: ellipsoid's rows are in the paper's supplement only (not reproduced here).
PAPER_TABLE2_METHODS = {
    "sphere": {"none": {"ssim": 0.855, "nrmse_pct": 18.68, "vaa_pct": 19.64, "rc": 0.729},
               "iy_truth": {"ssim": 0.940, "nrmse_pct": 11.90, "vaa_pct": 24.32, "rc": 0.841},
               "dl": {"ssim": 0.929, "nrmse_pct": 14.16, "vaa_pct": 65.50, "rc": 0.894}},
    "icrp110_kidney": {"none": {"ssim": 0.686, "nrmse_pct": 21.70, "vaa_pct": 1.19, "rc": 0.583},
                       "iy_truth": {"ssim": 0.833, "nrmse_pct": 14.92, "vaa_pct": 1.40, "rc": 0.695},
                       "dl": {"ssim": 0.770, "nrmse_pct": 19.09, "vaa_pct": 3.23, "rc": 0.653}},
    "icrp110_spleen": {"none": {"ssim": 0.847, "nrmse_pct": 18.37, "vaa_pct": 12.49, "rc": 0.729},
                       "iy_truth": {"ssim": 0.953, "nrmse_pct": 10.33, "vaa_pct": 19.79, "rc": 0.877},
                       "dl": {"ssim": 0.889, "nrmse_pct": 16.29, "vaa_pct": 28.40, "rc": 0.820}},
    "kidney_cortex": {"none": {"ssim": 0.389, "nrmse_pct": 27.52, "vaa_pct": 0.00, "rc": 0.481},
                      "iy_truth": {"ssim": 0.737, "nrmse_pct": 15.88, "vaa_pct": 3.53, "rc": 0.802},
                      "dl": {"ssim": 0.709, "nrmse_pct": 21.06, "vaa_pct": 10.60, "rc": 0.769}},
}

#: The paper's no-PVC rows of Table 2: RC, and SSIM/NRMSE/VAA (the realism benchmark compares with them).
PAPER_TABLE2 = {region: rows["none"] for region, rows in PAPER_TABLE2_METHODS.items()}

#: Reported region -> (the compartments it covers, its Table 2 key); the ICRP110 kidney is cortex + medulla.
REGIONS = {
    "sphere": (("sphere",), "sphere"),
    "ellipsoid": (("ellipsoid",), "ellipsoid"),
    "kidney_cortex": (("kidney_cortex",), "kidney_cortex"),
    "icrp110_kidney": (("icrp110_kidney_cortex", "icrp110_kidney_medulla"), "icrp110_kidney"),
    "icrp110_spleen": (("icrp110_spleen",), "icrp110_spleen"),
}


@dataclass
class ValidationPhantom:
    """A validation phantom on a grid: activity (MBq/mL), mu (1/cm) and named compartment masks."""

    name: str
    activity_mbq_ml: np.ndarray
    mu_per_cm: np.ndarray
    voxel_mm: float
    compartments: dict[str, np.ndarray] = field(default_factory=dict)
    nominal_mbq_ml: dict[str, float] = field(default_factory=dict)


def _coords(shape: tuple[int, int, int], voxel_mm: float) -> tuple[np.ndarray, ...]:
    """Voxel-centre coordinates in mm, origin at the grid centre."""
    return tuple(((np.arange(n) - (n - 1) / 2.0) * voxel_mm).reshape([-1 if i == k else 1 for k in range(3)])
                 for i, n in enumerate(shape))


def _ellipsoid(shape, voxel_mm, semi_axes_mm, centre_mm=(0.0, 0.0, 0.0), supersample: int = 3) -> np.ndarray:
    """Fraction of each voxel inside an axis-aligned ellipsoid (supersampled ``supersample``^3 per voxel)."""
    frac = np.zeros(shape, np.float32)
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    x, y, z = _coords(shape, voxel_mm)
    a, b, c = semi_axes_mm
    for ox in offsets:
        for oy in offsets:
            for oz in offsets:
                frac += ((((x + ox * voxel_mm - centre_mm[0]) / a) ** 2 + ((y + oy * voxel_mm - centre_mm[1]) / b) ** 2
                          + ((z + oz * voxel_mm - centre_mm[2]) / c) ** 2) <= 1.0)
    return frac / supersample**3


def _water(shape, voxel_mm) -> np.ndarray:
    x, y, z = _coords(shape, voxel_mm)
    inside = (x**2 + y**2 <= (WATER_DIAMETER_MM / 2) ** 2) & (np.abs(z) <= WATER_LENGTH_MM / 2)
    return np.where(inside, MU_WATER_208KEV_PER_CM, 0.0).astype(np.float32)


def _r_for_volume(volume_ml: float) -> float:
    return (3.0 * volume_ml * 1000.0 / (4.0 * np.pi)) ** (1.0 / 3.0)


KIDNEY_OUTER_MM = (30.0, 25.0, 55.0)  # long axis along the phantom's axis (array axis 2)


def build_validation_phantom(name: str, shape: tuple[int, int, int], voxel_mm: float) -> ValidationPhantom:
    """One of ``VALIDATION_PHANTOMS`` on a grid of ``shape`` voxels of ``voxel_mm`` (mm).

    Compartment masks are partial-volume fractions (0..1) of the fabricated shapes; activity is
    fraction x nominal concentration, so the total activity is exact at any voxel size.
    """
    mu = _water(shape, voxel_mm)
    comps: dict[str, np.ndarray] = {}
    nominal: dict[str, float] = {}
    if name == "sphere":
        r = _r_for_volume(100.0)
        comps["sphere"] = _ellipsoid(shape, voxel_mm, (r, r, r))
        nominal["sphere"] = C_INSERT
    elif name == "ellipsoid":
        b = (3.0 * 100_000.0 / (4.0 * np.pi) / 2.0) ** (1.0 / 3.0)
        comps["ellipsoid"] = _ellipsoid(shape, voxel_mm, (2 * b, b, b))
        nominal["ellipsoid"] = C_INSERT
    elif name == "kidney_cortex":
        outer_ml = 4.0 / 3.0 * np.pi * np.prod(KIDNEY_OUTER_MM) / 1000.0
        scale = ((outer_ml - 100.0) / outer_ml) ** (1.0 / 3.0)
        outer = _ellipsoid(shape, voxel_mm, KIDNEY_OUTER_MM)
        inner = _ellipsoid(shape, voxel_mm, tuple(s * scale for s in KIDNEY_OUTER_MM))
        comps["kidney_cortex"] = np.clip(outer - inner, 0.0, 1.0)
        nominal["kidney_cortex"] = C_INSERT
    elif name == "icrp110":
        left = (-50.0, 0.0, 0.0)
        outer = _ellipsoid(shape, voxel_mm, KIDNEY_OUTER_MM, left)
        medulla = _ellipsoid(shape, voxel_mm, tuple(s * 0.3 ** (1.0 / 3.0) for s in KIDNEY_OUTER_MM), left)
        comps["icrp110_kidney_cortex"] = np.clip(outer - medulla, 0.0, 1.0)
        comps["icrp110_kidney_medulla"] = medulla
        b = (3.0 * 150_000.0 / (4.0 * np.pi) / 1.5) ** (1.0 / 3.0)  # spleen: 150 mL, semi-axes b, b, 1.5b
        comps["icrp110_spleen"] = _ellipsoid(shape, voxel_mm, (b, b, 1.5 * b), (50.0, 0.0, 0.0))
        nominal.update({"icrp110_kidney_cortex": C_CORTEX_ICRP, "icrp110_kidney_medulla": C_MEDULLA_ICRP,
                        "icrp110_spleen": C_SPLEEN_ICRP})
    else:
        raise ValueError(f"unknown validation phantom {name!r}; choose from {VALIDATION_PHANTOMS}")
    activity = np.zeros(shape, np.float32)
    for k, frac in comps.items():
        activity += frac * nominal[k]
    return ValidationPhantom(name, activity.astype(np.float32), mu, float(voxel_mm), comps, nominal)


VALIDATION_PHANTOMS = ("sphere", "ellipsoid", "kidney_cortex", "icrp110")
