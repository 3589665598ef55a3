"""A randomised run's stages: the per-level calibration cache, the draw recorded in markers and
sidecars, and the model card's ranges that ``dlpvc apply``'s domain check reads."""

from __future__ import annotations

import threading

import pytest

from pvc_core.apply.domain import INSIDE, InputFacts, check_domain, domain_from_trained_for
from pvc_core.calibration import CalibrationResult
from helpers.randomised import randomised_settings
from pvc_core.io import load_image, read_json, write_json
from pvc_core.pipeline import calibration_stage, paths
from pvc_core.pipeline.case_stages import run_noise_shard, run_phantom_shard, run_reconstruct_shard, run_simulate_shard
from pvc_core.pipeline.fingerprints import StageGraph
from pvc_core.pipeline.models import trained_for
from pvc_core.pipeline.paths import RunLayout
from pvc_core.pipeline.shards import ShardJob
from pvc_core.specs import Settings
from pvc_core.spect.acquisition import AcquisitionChain, chain_for_case

RANDOMISE = {
    "time_per_view_s": {"range": [10, 45]},
    "intrinsic_fwhm_mm": {"levels": [2.9, 3.4]},
    "reconstruction": {"RR": {"iterations_subsets": {"levels": [[1, 4], [2, 4]]},
                              "post_filter_fwhm_mm": {"range": [0, 5]},
                              "scatter_correction": {"levels": ["tew"]}}},
}


def _settings(randomise: dict | None = RANDOMISE) -> Settings:
    return randomised_settings(randomise)


@pytest.fixture
def counted_calibrations(monkeypatch):
    """Replace the cylinder's acquisition by a stub whose factor says which level it was; count calls."""
    calls: list[tuple] = []

    def fake(spec, chain, seed):
        (recon,) = chain.reconstructions
        calls.append((chain.camera.collimator.intrinsic_fwhm_mm, recon.iterations, chain.camera.time_per_view_s))
        factor = 1.0 + recon.iterations / 10 + chain.camera.collimator.intrinsic_fwhm_mm / 100
        return {recon.name: CalibrationResult(recon.name, factor, 400.0, 400.0 * factor, 400.0 * factor, 1.0, 0.0)}

    monkeypatch.setattr(calibration_stage, "calibrate", fake)
    return calls


def test_a_level_is_calibrated_once_and_reused(tmp_path, counted_calibrations):
    s = _settings()
    chain = AcquisitionChain(s.camera, s.grid, (s.reconstructions["RR"],))
    folder = tmp_path / "levels"
    seen = {}
    for case in range(30):
        case_chain, draw = chain_for_case(chain, s.randomise, case)
        level = case_chain.calibration_chain()
        record = calibration_stage.cached_calibration(level, s.calibration, s.seed, folder)
        key = (draw["intrinsic_fwhm_mm"], draw["reconstruction"]["RR"]["iterations"])
        assert record["factor"] == pytest.approx(1.0 + key[1] / 10 + key[0] / 100)
        seen[key] = record["fingerprint"]
    assert len(seen) == 4 and len(set(seen.values())) == 4  # 2 intrinsic x 2 OSEM levels, whatever the time
    assert sorted(c[:2] for c in counted_calibrations) == sorted(seen)  # each computed once
    assert {c[2] for c in counted_calibrations} == {s.camera.time_per_view_s}  # at the protocol's time per view
    assert len(list(folder.glob("RR-*.json"))) == 4


def test_two_jobs_calibrating_one_level_at_once_both_end_correct(tmp_path, counted_calibrations):
    s = _settings(None)
    chain = AcquisitionChain(s.camera, s.grid, (s.reconstructions["RR"],))
    out = [None, None]
    start = threading.Barrier(2)

    def job(i):
        start.wait()
        out[i] = calibration_stage.cached_calibration(chain, s.calibration, s.seed, tmp_path)

    threads = [threading.Thread(target=job, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (path,) = tmp_path.glob("RR-*.json")
    assert out[0] == out[1] == read_json(path)
    # the configured level's fingerprint is the DAG's calibration stage's
    assert out[0]["fingerprint"] == StageGraph(s).fingerprint("calibration_RR")


def _run_stages(s: Settings, tmp_path, cases: list[int]) -> tuple[RunLayout, AcquisitionChain]:
    """Phantom, simulate, noise and RR's reconstruction of ``cases`` in one shard each (the
    configured level's calibration factor 1); the layout and RR's chain."""
    layout = RunLayout(tmp_path / "results")

    def job(stage):
        return ShardJob(0, cases, layout, str(layout.manifest(stage, 0)), "fp", {}, (), lambda _m: None)

    assert run_phantom_shard(job("phantom"), s.phantom, s.grid, s.seed)["done"] == cases
    assert run_simulate_shard(job("simulate"), AcquisitionChain(s.camera, s.grid), s.randomise)["done"] == cases
    assert run_noise_shard(job("noise"), s.seed)["done"] == cases
    recon = s.reconstructions["RR"]
    cal = tmp_path / "cal_RR.json"
    write_json(cal, {"factor": 1.0, "fingerprint": "configured"})
    chain = AcquisitionChain(s.camera, s.grid, (recon,))
    assert run_reconstruct_shard(job("recon_RR"), chain, recon, str(cal), randomise=s.randomise,
                                 calibration_spec=s.calibration)["done"] == cases
    return layout, chain


def test_a_randomised_case_records_its_draw_and_uses_its_level(tmp_path, counted_calibrations, one_torch_thread):
    s = _settings()
    cases = [0, 1, 2]
    layout, chain = _run_stages(s, tmp_path, cases)
    levels = set()
    for case in cases:
        _, draw = chain_for_case(chain, s.randomise, case)
        simulated = read_json(layout.marker_file(case, "simulate"))
        assert simulated["acquisition"] == draw
        assert simulated["time_per_view_s"] == pytest.approx(draw["time_per_view_s"])
        rr = draw["reconstruction"]["RR"]
        level = (draw["intrinsic_fwhm_mm"], rr["iterations"])
        levels.add(level)
        for noise in ("n", "nf"):
            side = read_json(layout.case_file(case, paths.recon_sidecar_name(f"RR_{noise}")))
            assert side["acquisition"] == draw
            assert side["reconstruction"]["iterations"] == rr["iterations"]
            assert side["reconstruction"]["post_filter_fwhm_mm"] == rr["post_filter_fwhm_mm"]
            assert side["calibration"]["factor"] == pytest.approx(1.0 + level[1] / 10 + level[0] / 100)
            assert side["calibration"]["file"].startswith(str(layout.calibration_levels_dir()))
        marker = read_json(layout.marker_file(case, "recon_RR"))
        assert marker["acquisition"] == draw and marker["iterations"] == rr["iterations"]
    assert sorted(c[:2] for c in counted_calibrations) == sorted(levels)  # once per level, not per case


def test_a_case_with_another_collimator_orbit_and_voxel_goes_through_the_stages(tmp_path, counted_calibrations,
                                                                                  one_torch_thread):
    s = _settings({"collimator": {"levels": ["ge_megp"]}, "orbit": {"levels": ["circular"]},
                   "reconstruction": {"RR": {"voxel_mm": {"levels": [15.0]},
                                             "iterations_subsets": {"levels": [[1, 4]]}}}})
    cases = [0, 1]
    layout, _ = _run_stages(s, tmp_path, cases)
    for case in cases:
        side = read_json(layout.case_file(case, paths.recon_sidecar_name("RR_n")))
        assert side["acquisition"]["collimator"] == "ge_megp" and side["acquisition"]["orbit"] == "circular"
        assert side["reconstruction"]["reconstructed_voxel_mm"] == 15.0
        assert load_image(layout.case_file(case, paths.recon_name("RR_n"))).data.shape == (s.grid.recon_matrix,) * 3
    assert len(counted_calibrations) == 1  # one level (MEGP, circular, 15 mm), calibrated once for both cases


def test_the_model_card_states_the_ranges_trained_on_and_apply_reads_them():
    plain = trained_for(_settings(None), "RR_n")
    assert "randomised" not in plain and plain["reconstruction"]["iterations"] == 2
    card = trained_for(_settings(), "RR_n")
    assert card["acquisition"]["time_per_view_s"] == [10.0, 45.0]
    assert card["acquisition"]["intrinsic_fwhm_mm"] == [2.9, 3.4]
    assert card["reconstruction"]["iterations"] == [1, 2] and card["reconstruction"]["subsets"] == [4, 4]
    assert card["reconstruction"]["post_filter_fwhm_mm"] == [0.0, 5.0]
    assert card["randomised"]["time_per_view_s"] == {"range": [10.0, 45.0]}
    domain = domain_from_trained_for(card)
    assert domain["reconstruction"]["iterations"] == [1, 2]
    assert domain["reconstruction"]["post_filter_fwhm_mm"] == [0.0, 5.0]
    facts = InputFacts((19.2,) * 3, (32,) * 3, 500.0, reconstruction="RR", iterations=1, subsets=4,
                       scatter_correction="tew", attenuation_correction=True, post_filter_fwhm_mm=3.0)
    assert check_domain(facts, domain) == (INSIDE, [])
    status, reasons = check_domain(InputFacts((19.2,) * 3, (32,) * 3, 500.0, reconstruction="RR", iterations=3,
                                              post_filter_fwhm_mm=6.0, scatter_correction="tew"), domain)
    assert status == "outside" and any("3 iterations" in r for r in reasons) and any("6 mm" in r for r in reasons)
    two = trained_for(_settings({"reconstruction": {"RR": {"scatter_correction": {"levels": ["tew", "model"]}}}}), "RR_n")
    assert domain_from_trained_for(two)["reconstruction"]["scatter_correction"] == ["tew", "model"]
    assert "scatter (tew or model)" in two["reconstruction"]["corrections"]
