"""Per-case stages (phantom, simulate, noise, reconstruct), each run over one shard of cases.

Each stage reads the case's inputs from the results folder, computes with pvc_core, writes its
outputs atomically and then its JSON marker (the marker means "this case's stage is done").
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from pvc_core.errors import InputError
from pvc_core.io import load_image, read_json, save_image, write_json
from pvc_core.pipeline import paths
from pvc_core.pipeline.shards import UpstreamCorrupt, failed_cases, run_shard
from pvc_core.seeding import rng_for

Log = Callable[[str], None]


def _marker(results, case, stage: str) -> Path:
    return paths.case_file(results, case, f"{stage}.json")


def _done(results, stage: str, outputs: tuple[str, ...] = ()) -> Callable[[int], bool]:
    def is_done(case: int) -> bool:
        return _marker(results, case, stage).is_file() and all(
            paths.case_file(results, case, o).is_file() for o in outputs)
    return is_done


def case_is_done(results: str, stage: str) -> Callable[[int], bool]:
    """Whether a case's stage is finished (its marker exists); used for the rules' retry tokens."""
    return _done(results, stage)


def _read_upstream(results: str, case: int, stage: str, read: Callable):
    """Read a case's input produced by ``stage``; if it is unreadable, invalidate that stage's
    marker for this case (so the next run redoes it there) and raise :class:`UpstreamCorrupt`."""
    try:
        return read()
    except (InputError, OSError, ValueError, EOFError) as err:
        _marker(results, case, stage).unlink(missing_ok=True)
        raise UpstreamCorrupt(stage, str(err).splitlines()[0] if str(err) else type(err).__name__) from err


def run_phantom_shard(shard: int, cases: list[int], config: dict, results: str, manifest_out: str,
                      log: Log = print, token: str = "") -> dict:
    """Generate the phantom (anatomy, attenuation, activity) of every case in the shard."""
    from pvc_core.phantom import generate_case

    def process(case: int) -> None:
        pc = generate_case(case, config["seed"], config)
        f = lambda name: paths.case_file(results, case, name)  # noqa: E731
        save_image(f("truth_sim.nii.gz"), pc.activity_mbq_ml, pc.sim_voxel_mm, "true activity MBq/mL")
        save_image(f("mu_sim.nii.gz"), pc.mu_per_cm, pc.sim_voxel_mm, "mu 1/cm at 208 keV")
        save_image(f("labels_sim.nii.gz"), pc.labels, pc.sim_voxel_mm, "organ labels", dtype=np.uint8)
        save_image(f("truth.nii.gz"), pc.activity_recon_mbq_ml, pc.recon_voxel_mm, "true activity MBq/mL")
        save_image(f("mu.nii.gz"), pc.mu_recon_per_cm, pc.recon_voxel_mm, "mu 1/cm at 208 keV")
        write_json(_marker(results, case, "phantom"), pc.meta)

    return run_shard("phantom", shard, cases, is_done=_done(results, "phantom"), process=process,
                     manifest_path=manifest_out, log=log, token=token)


def run_simulate_shard(shard: int, cases: list[int], config: dict, results: str, upstream: list[str],
                       manifest_out: str, log: Log = print, token: str = "") -> dict:
    """Noise-free projections (photopeak and both scatter windows) of every case in the shard."""
    from pvc_core.spect import simulate_projections, write_projections

    def process(case: int) -> None:
        act, mu = _read_upstream(results, case, "phantom", lambda: (
            load_image(paths.case_file(results, case, "truth_sim.nii.gz"), allow_negative=False, name="activity"),
            load_image(paths.case_file(results, case, "mu_sim.nii.gz"), allow_negative=False, name="mu map")))
        t0 = time.perf_counter()
        proj = simulate_projections(act.data, mu.data, act.voxel_size_mm[0], config)
        write_projections(paths.projections_stem(results, case, "nf"), proj)
        write_json(_marker(results, case, "simulate"), {**proj.meta, "seconds": time.perf_counter() - t0})

    return run_shard("simulate", shard, cases, is_done=_done(results, "simulate"), process=process,
                     manifest_path=manifest_out, upstream_failed=failed_cases(upstream), log=log, token=token)


def run_noise_shard(shard: int, cases: list[int], config: dict, results: str, upstream: list[str],
                    manifest_out: str, log: Log = print, token: str = "") -> dict:
    """Poisson realisation of every window, seeded by (seed, case id)."""
    from pvc_core.spect import add_poisson_noise, read_projections, write_projections

    def process(case: int) -> None:
        nf = _read_upstream(results, case, "simulate",
                            lambda: read_projections(str(paths.projections_stem(results, case, "nf")) + ".hdr"))
        noisy = add_poisson_noise(nf, rng_for(config["seed"], case, "noise"))
        write_projections(paths.projections_stem(results, case, "n"), noisy)
        write_json(_marker(results, case, "noise"),
                   {"seed": config["seed"], "case_id": case,
                    "counts": {w: float(np.sum(a)) for w, a in noisy.windows.items()}})

    return run_shard("noise", shard, cases, is_done=_done(results, "noise"), process=process,
                     manifest_path=manifest_out, upstream_failed=failed_cases(upstream), log=log, token=token)


def run_reconstruct_shard(shard: int, cases: list[int], method: str, config: dict, results: str,
                          upstream: list[str], manifest_out: str, log: Log = print, token: str = "") -> dict:
    """OSEM reconstruction (``method`` = noRR or RR) of the noisy and noise-free projections."""
    from pvc_core.spect import read_projections, reconstruct

    stage = f"recon_{method}"
    outputs = tuple(paths.recon_name(f"{method}_{n}") for n in paths.NOISE_LEVELS)

    def process(case: int) -> None:
        mu = _read_upstream(results, case, "phantom", lambda: load_image(
            paths.case_file(results, case, "mu.nii.gz"), allow_negative=False, name="mu map"))
        seconds = {}
        for noise in paths.NOISE_LEVELS:
            producer = "simulate" if noise == "nf" else "noise"
            proj = _read_upstream(results, case, producer, lambda: read_projections(
                str(paths.projections_stem(results, case, noise)) + ".hdr"))
            t0 = time.perf_counter()
            image = reconstruct(proj, mu.data, method, config)
            seconds[noise] = time.perf_counter() - t0
            save_image(paths.case_file(results, case, paths.recon_name(f"{method}_{noise}")), image, mu.affine,
                       f"SPECT {method} OSEM MBq/mL")
        write_json(_marker(results, case, stage), {"method": method, "settings": config["reconstruction"][method],
                                                   "seconds": seconds})

    return run_shard(stage, shard, cases, is_done=_done(results, stage, outputs), process=process,
                     manifest_path=manifest_out, upstream_failed=failed_cases(upstream), log=log, token=token)


def read_case_meta(results: str, case: int) -> dict:
    """The phantom metadata of a case."""
    return read_json(paths.case_file(results, case, "phantom.json"))
