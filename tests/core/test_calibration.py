"""Calibration with a uniform cylinder (MIRD 26): known answers on a small grid."""

import copy
from pathlib import Path

import numpy as np
import pytest

from pvc_core.calibration import calibrate, calibration_phantom, cylinder_fraction, factors, voi_mask
from pvc_core.pipeline.calibration_stage import calibration_for
from pvc_core.config import load_config
from pvc_core.phantom.settings import Grid
from pvc_core.specs import CalibrationSpec, Settings
from pvc_core.spect.acquisition import AcquisitionChain, NoiseSeed

CONFIG = Path(__file__).resolve().parents[2] / "config" / "test.yaml"


def _settings(**calibration) -> Settings:
    cfg = copy.deepcopy(load_config(CONFIG))
    cfg["calibration"].update(noise="nf", **calibration)
    return Settings.from_config(cfg)


def _acquire(s: Settings, recons, act, mu, calibration):
    """The cylinder through the one acquisition chain, noise-free, divided by ``calibration``."""
    chain = AcquisitionChain(s.camera, s.grid, tuple(recons))
    return chain.acquire(act, mu, NoiseSeed(s.seed, 0), calibration=calibration, noise_levels=("nf",))


@pytest.fixture(scope="module")
def calibrated(one_torch_thread):
    s = _settings()
    recons = list(s.reconstructions.values())
    return s, recons, calibrate(s.calibration, AcquisitionChain(s.camera, s.grid, tuple(recons)), s.seed)


def test_cylinder_volume_is_pi_r2_l():
    grid = Grid(128, 2.4)
    frac = cylinder_fraction(grid, 216.0, 186.0)
    assert frac.sum() * grid.voxel_ml == pytest.approx(np.pi * 108.0**2 * 186.0 / 1000.0, rel=2e-3)
    assert frac.min() == 0.0 and frac.max() == 1.0


def test_calibration_phantom_holds_its_activity():
    s = _settings(activity_mbq=250.0)
    act, mu, true_mbq = calibration_phantom(s.calibration, s.grid)
    assert true_mbq == 250.0
    assert act.sum(dtype=np.float64) * s.grid.sim.voxel_ml == pytest.approx(250.0, rel=1e-5)
    assert mu.max() == pytest.approx(0.135, rel=1e-6)


@pytest.mark.parametrize("name", ["noRR", "RR"])
def test_calibration_cylinder_reconstructs_to_its_activity(calibrated, name):
    """Noise-free: the cylinder, reconstructed and divided by its factor, holds its activity within 1 %."""
    s, recons, results = calibrated
    act, mu, true_mbq = calibration_phantom(s.calibration, s.grid)
    case = _acquire(s, recons, act, mu, factors(results))
    voi = voi_mask(s.calibration, s.grid.recon)
    total = float(case.images[f"{name}_nf"].astype(np.float64)[voi].sum()) * s.grid.recon.voxel_ml
    assert total == pytest.approx(true_mbq, rel=0.01)
    assert 0.8 < results[name].factor < 1.25  # the chain's bias is a few per cent, not a unit error


@pytest.mark.parametrize("name", ["noRR", "RR"])
def test_another_cylinder_is_within_3_percent(calibrated, name):
    """A 150 mm x 120 mm cylinder of 120 MBq, reconstructed with the 216 mm cylinder's factors."""
    s, recons, results = calibrated
    other = CalibrationSpec(150.0, 120.0, 120.0, 40.0, "nf")
    act, mu, true_mbq = calibration_phantom(other, s.grid)
    case = _acquire(s, recons, act, mu, factors(results))
    total = float(case.images[f"{name}_nf"].astype(np.float64).sum()) * s.grid.recon.voxel_ml
    assert total == pytest.approx(true_mbq, rel=0.03)


def test_an_acquisition_refuses_a_missing_calibration(calibrated):
    s, recons, _ = calibrated
    act, mu, _ = calibration_phantom(s.calibration, s.grid)
    with pytest.raises(ValueError, match="no calibration factor"):
        _acquire(s, recons, act, mu, {"noRR": 1.0})


def test_calibration_outside_the_dag_is_cached_by_fingerprint(tmp_path, one_torch_thread):
    s = _settings()
    first = calibration_for(s, tmp_path)
    assert sorted(p.name.split("-")[0] for p in tmp_path.iterdir()) == ["RR", "noRR"]
    assert calibration_for(s, tmp_path) == first  # read back, not recomputed
    other = _settings(activity_mbq=300.0)
    again = calibration_for(other, tmp_path)
    assert len(list(tmp_path.iterdir())) == 4 and again["RR"]["true_mbq"] == 300.0
