"""Camera calibration as a clinic does it: a uniform water cylinder of known activity, acquired
with the clinical protocol and reconstructed with each reconstruction's own settings.

Protocol (MIRD Pamphlet No. 26, Ljungberg et al., J Nucl Med 2016;57:151-162, "calibration"
and its recommendation of a tomographic calibration with a large cylinder): a cylindrical
phantom of known Lu-177 activity, uniformly filled (default: the inner volume of a Jaszczak
phantom, 216 mm x 186 mm, 6.8 L), is acquired with the same camera, energy windows, orbit and
time per view as the patients, corrected for attenuation and scatter (TEW) exactly as they are,
and reconstructed with the same OSEM settings. The calibration factor of a reconstruction is the
reconstructed activity over a volume of interest (the cylinder enlarged by ``voi_margin_mm``,
so the spill-out of the partial-volume effect is counted) divided by the known activity:

    factor = A_reconstructed(VOI; nominal sensitivity) / A_true

and every image of that reconstruction is divided by it, so the cylinder itself reconstructs to
its true activity. The simulator's own sensitivity (``camera.sensitivity_cps_per_mbq``) thus
stays the camera's in-air sensitivity, and what the chain adds or loses in a body-sized object
(attenuation correction, TEW's bias, OSEM's positivity) is calibrated out the way a clinic's
measurement would, not assumed away.

Here the cylinder goes through the one acquisition chain as every case
(:meth:`pvc_core.spect.acquisition.AcquisitionChain.acquire`, uncalibrated): same simulator,
Poisson noise from its own seeded stream, the same scatter correction and OSEM.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from pvc_core.domain import dataset_name
from pvc_core.phantom.settings import Grid
from pvc_core.specs import CalibrationSpec, GridSpec
from pvc_core.spect.acquisition import AcquisitionChain, NoiseSeed

#: Linear attenuation coefficient of water at 208 keV (1/cm; NIST XCOM, as pvc_core.validation).
MU_WATER_PER_CM = 0.1350
#: Stream name of the calibration's Poisson noise (case id 0 of this stream).
NOISE_STREAM = "calibration_noise"
#: Sub-samples per axis for the partial-volume fractions of the cylinder's edge voxels.
_SUPERSAMPLE = 4


@dataclass(frozen=True)
class CalibrationResult:
    """The calibration of one reconstruction.

    ``factor``: reconstructed / true activity in the VOI with the nominal sensitivity (divide the
    images by it); ``true_mbq``, ``reconstructed_mbq`` (VOI, before calibration),
    ``whole_fov_mbq`` (the whole reconstructed volume, before calibration), ``seconds``.
    """

    reconstruction: str
    factor: float
    true_mbq: float
    reconstructed_mbq: float
    whole_fov_mbq: float
    voi_ml: float
    seconds: float

    def as_dict(self) -> dict:
        return {"reconstruction": self.reconstruction, "factor": self.factor, "true_mbq": self.true_mbq,
                "reconstructed_mbq": self.reconstructed_mbq, "whole_fov_mbq": self.whole_fov_mbq,
                "voi_ml": self.voi_ml, "seconds": self.seconds}


def cylinder_fraction(grid: Grid, diameter_mm: float, length_mm: float,
                      supersample: int = _SUPERSAMPLE) -> np.ndarray:
    """Fraction (0..1, float32) of each voxel of ``grid`` inside a cylinder centred on the grid
    centre with its axis along array axis 2 (the camera's rotation axis)."""
    c = grid.centres_mm()
    offsets = ((np.arange(supersample) + 0.5) / supersample - 0.5) * grid.voxel_mm
    radial = np.zeros((grid.matrix, grid.matrix), np.float64)
    for ox in offsets:
        for oy in offsets:
            x = (c + ox)[:, None]
            y = (c + oy)[None, :]
            radial += (x**2 + y**2) <= (diameter_mm / 2.0) ** 2
    radial /= supersample**2
    axial = np.zeros(grid.matrix, np.float64)
    for oz in offsets:
        axial += np.abs(c + oz) <= length_mm / 2.0
    axial /= supersample
    return (radial[:, :, None] * axial[None, None, :]).astype(np.float32)


def calibration_phantom(spec: CalibrationSpec, grid: GridSpec) -> tuple[np.ndarray, np.ndarray, float]:
    """(activity MBq/mL, mu 1/cm, true activity MBq) of the calibration cylinder on the phantom grid."""
    frac = cylinder_fraction(grid.sim, spec.diameter_mm, spec.length_mm)
    volume_ml = float(frac.sum(dtype=np.float64)) * grid.sim.voxel_ml
    concentration = spec.activity_mbq / volume_ml
    return (frac * concentration).astype(np.float32), (frac * MU_WATER_PER_CM).astype(np.float32), spec.activity_mbq


def voi_mask(spec: CalibrationSpec, grid: Grid) -> np.ndarray:
    """The VOI on the reconstruction grid: voxels whose centre lies in the cylinder enlarged by the margin."""
    frac = cylinder_fraction(grid, spec.diameter_mm + 2 * spec.voi_margin_mm, spec.length_mm + 2 * spec.voi_margin_mm,
                             supersample=1)
    return frac > 0.5


def calibrate(spec: CalibrationSpec, chain: AcquisitionChain, seed: int) -> dict[str, CalibrationResult]:
    """Acquire the calibration cylinder with ``chain`` (the patients' camera, grid and
    reconstructions); one :class:`CalibrationResult` per reconstruction of the chain."""
    grid, recons = chain.grid, chain.reconstructions
    t0 = time.perf_counter()
    activity, mu, true_mbq = calibration_phantom(spec, grid)
    t_phantom = time.perf_counter() - t0
    acquired = chain.acquire(activity, mu, NoiseSeed(seed, 0, NOISE_STREAM), noise_levels=(spec.noise,),
                             calibration={r.name: 1.0 for r in recons})  # nominal sensitivity: what is measured
    t_sim = t_phantom + acquired.seconds["simulate"] + acquired.seconds.get("noise", 0.0)
    voi = voi_mask(spec, grid.recon)
    out = {}
    for recon in recons:
        image = acquired.images[dataset_name(recon.name, spec.noise)]  # MBq/mL, uncalibrated
        mbq = image.astype(np.float64) * grid.recon.voxel_ml
        reconstructed = float(mbq[voi].sum())
        out[recon.name] = CalibrationResult(
            reconstruction=recon.name, factor=reconstructed / true_mbq, true_mbq=true_mbq,
            reconstructed_mbq=reconstructed, whole_fov_mbq=float(mbq.sum()),
            voi_ml=float(voi.sum()) * grid.recon.voxel_ml,
            seconds=t_sim / len(recons) + acquired.seconds[f"recon {recon.name}"])
    return out


def factors(results: Mapping[str, CalibrationResult | Mapping]) -> dict[str, float]:
    """Reconstruction -> calibration factor, from results or their dicts."""
    return {k: float(v.factor if isinstance(v, CalibrationResult) else v["factor"]) for k, v in results.items()}
