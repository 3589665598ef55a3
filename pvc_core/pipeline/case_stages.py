"""Per-case stages (phantom, simulate, noise, reconstruct), each run over one shard of cases.

Each stage reads the case's inputs from the results folder, computes with the step of
:mod:`pvc_core.case_pipeline` (or the phantom generator), writes its outputs atomically and then
its JSON marker: the marker holds the stage's fingerprint and dependencies
(:mod:`pvc_core.pipeline.fingerprints`), and a case's stage is done only when its marker's
fingerprint equals the current one (and its outputs exist).
"""

from __future__ import annotations

import time
from typing import Callable, Mapping

import numpy as np

from pvc_core import case_pipeline
from pvc_core.domain import NOISE_LEVELS, dataset_name
from pvc_core.errors import InputError
from pvc_core.io import load_image, read_json, save_image, write_json
from pvc_core.phantom.settings import PhantomSettings
from pvc_core.pipeline import paths
from pvc_core.pipeline.shards import UpstreamCorrupt, failed_cases, run_shard
from pvc_core.specs import CameraSpec, GridSpec, ReconSpec

Log = Callable[[str], None]


def case_is_done(results: str, stage: str, fingerprint: str | None = None,
                 outputs: tuple[str, ...] = ()) -> Callable[[int], bool]:
    """Whether a case's stage is finished: its marker exists, records ``fingerprint`` (when
    given) and every file of ``outputs`` exists."""

    def is_done(case: int) -> bool:
        marker = paths.marker_file(results, case, stage)
        if not marker.is_file() or not all(paths.case_file(results, case, o).is_file() for o in outputs):
            return False
        if fingerprint is None:
            return True
        try:
            return read_json(marker).get("fingerprint") == fingerprint
        except (OSError, ValueError):
            return False

    return is_done


def _write_marker(results: str, case: int, stage: str, fingerprint: str, depends_on: Mapping, meta: dict) -> None:
    write_json(paths.marker_file(results, case, stage),
               {**meta, "fingerprint": fingerprint, "depends_on": dict(depends_on)})


def _read_upstream(results: str, case: int, stage: str, read: Callable):
    """Read a case's input produced by ``stage``; if it is unreadable, invalidate that stage's
    marker for this case (so the next run redoes it there) and raise :class:`UpstreamCorrupt`."""
    try:
        return read()
    except (InputError, OSError, ValueError, EOFError) as err:
        paths.marker_file(results, case, stage).unlink(missing_ok=True)
        raise UpstreamCorrupt(stage, str(err).splitlines()[0] if str(err) else type(err).__name__) from err


def _read_projections(results: str, case: int, noise: str):
    from pvc_core.spect import read_projections

    producer = "simulate" if noise == "nf" else "noise"
    return _read_upstream(results, case, producer,
                          lambda: read_projections(str(paths.projections_header(results, case, noise))))


def run_phantom_shard(shard: int, cases: list[int], phantom: PhantomSettings, grid: GridSpec, seed: int,
                      results: str, manifest_out: str, fingerprint: str, depends_on: Mapping,
                      log: Log = print, token: str = "") -> dict:
    """Generate the phantom (anatomy, attenuation, activity) of every case in the shard."""
    from pvc_core.phantom import generate_case

    def process(case: int) -> None:
        pc = generate_case(case, seed, phantom, grid)
        f = lambda name: paths.case_file(results, case, name)  # noqa: E731
        save_image(f(paths.TRUTH_SIM), pc.activity_mbq_ml, pc.sim_voxel_mm, "true activity MBq/mL")
        save_image(f(paths.MU_SIM), pc.mu_per_cm, pc.sim_voxel_mm, "mu 1/cm at 208 keV")
        save_image(f(paths.LABELS_SIM), pc.labels, pc.sim_voxel_mm, "organ labels", dtype=np.uint8)
        save_image(f(paths.TRUTH), pc.activity_recon_mbq_ml, pc.recon_voxel_mm, "true activity MBq/mL")
        save_image(f(paths.MU), pc.mu_recon_per_cm, pc.recon_voxel_mm, "mu 1/cm at 208 keV")
        _write_marker(results, case, "phantom", fingerprint, depends_on, pc.meta)

    return run_shard("phantom", shard, cases, is_done=case_is_done(results, "phantom", fingerprint), process=process,
                     manifest_path=manifest_out, log=log, token=token)


def run_simulate_shard(shard: int, cases: list[int], camera: CameraSpec, grid: GridSpec,
                       results: str, upstream: list[str], manifest_out: str,
                       fingerprint: str, depends_on: Mapping, log: Log = print, token: str = "") -> dict:
    """Noise-free projections (photopeak and both scatter windows) of every case in the shard."""
    from pvc_core.spect import write_projections

    def process(case: int) -> None:
        act, mu = _read_upstream(results, case, "phantom", lambda: (
            load_image(paths.case_file(results, case, paths.TRUTH_SIM), allow_negative=False, name="activity"),
            load_image(paths.case_file(results, case, paths.MU_SIM), allow_negative=False, name="mu map")))
        t0 = time.perf_counter()
        proj = case_pipeline.simulate_noise_free(act.data, mu.data, camera, grid)
        write_projections(paths.projections_stem(results, case, "nf"), proj)
        _write_marker(results, case, "simulate", fingerprint, depends_on,
                      {**proj.meta, "seconds": time.perf_counter() - t0})

    return run_shard("simulate", shard, cases, is_done=case_is_done(results, "simulate", fingerprint),
                     process=process, manifest_path=manifest_out, upstream_failed=failed_cases(upstream), log=log,
                     token=token)


def run_noise_shard(shard: int, cases: list[int], seed: int, results: str, upstream: list[str], manifest_out: str,
                    fingerprint: str, depends_on: Mapping, log: Log = print, token: str = "") -> dict:
    """Poisson realisation of every window, seeded by (seed, case id)."""
    from pvc_core.spect import write_projections

    def process(case: int) -> None:
        noisy = case_pipeline.add_noise(_read_projections(results, case, "nf"), seed, case)
        write_projections(paths.projections_stem(results, case, "n"), noisy)
        _write_marker(results, case, "noise", fingerprint, depends_on,
                      {"seed": seed, "case_id": case, "counts": {w: float(np.sum(a)) for w, a in noisy.windows.items()}})

    return run_shard("noise", shard, cases, is_done=case_is_done(results, "noise", fingerprint), process=process,
                     manifest_path=manifest_out, upstream_failed=failed_cases(upstream), log=log, token=token)


def run_reconstruct_shard(shard: int, cases: list[int], recon: ReconSpec, camera: CameraSpec, results: str,
                          upstream: list[str], calibration_path: str, manifest_out: str, fingerprint: str,
                          depends_on: Mapping, log: Log = print, token: str = "") -> dict:
    """OSEM reconstruction (``recon``: noRR or RR) of the noisy and noise-free projections,
    calibrated with the reconstruction's factor from ``calibration_path``; each image gets a
    JSON sidecar (units, reconstruction, calibration)."""
    stage = f"recon_{recon.name}"
    outputs = tuple(paths.recon_name(dataset_name(recon.name, n)) for n in NOISE_LEVELS)
    from pvc_core.spect import rr_response

    calibration = read_json(calibration_path)
    factor = float(calibration["factor"])
    sidecar = {"units": "MBq/mL", "reconstruction": {"name": recon.name, "iterations": recon.iterations,
                                                      "subsets": recon.subsets, "resolution_modelling": recon.psf,
                                                      "attenuation_correction": True,
                                                      "scatter_correction": recon.scatter_correction},
               "calibration": {"factor": factor, "file": str(calibration_path),
                               "fingerprint": calibration.get("fingerprint")}}

    def process(case: int) -> None:
        mu = _read_upstream(results, case, "phantom", lambda: load_image(
            paths.case_file(results, case, paths.MU), allow_negative=False, name="mu map"))
        proj = {noise: _read_projections(results, case, noise) for noise in NOISE_LEVELS}
        t0 = time.perf_counter()
        images = case_pipeline.reconstruct_levels(proj, mu.data, recon, camera, calibration_factor=factor)
        seconds = time.perf_counter() - t0
        for noise, image in images.items():
            dataset = dataset_name(recon.name, noise)
            response = rr_response(camera, proj[noise].pixel_mm).as_dict() if recon.psf else None
            write_json(paths.case_file(results, case, paths.recon_sidecar_name(dataset)),
                       {**sidecar, "dataset": dataset, "noise": noise, "response_model": response})
            save_image(paths.case_file(results, case, paths.recon_name(dataset)), image,
                       mu.affine, f"SPECT {recon.name} OSEM MBq/mL")
        _write_marker(results, case, stage, fingerprint, depends_on,
                      {"reconstruction": recon.name, "iterations": recon.iterations, "subsets": recon.subsets,
                       "calibration_factor": factor, "seconds": seconds})

    return run_shard(stage, shard, cases, is_done=case_is_done(results, stage, fingerprint, outputs), process=process,
                     manifest_path=manifest_out, upstream_failed=failed_cases(upstream), log=log, token=token)
