"""Where every artefact lives: each path is spelled here once.

Layout under the results folder::

    cases/00017/truth_sim.nii.gz       true activity, phantom grid, MBq/mL
    cases/00017/mu_sim.nii.gz          attenuation, phantom grid, 1/cm at 208 keV
    cases/00017/labels_sim.nii.gz      organ labels, phantom grid
    cases/00017/truth.nii.gz           true activity, reconstruction grid, MBq/mL
    cases/00017/mu.nii.gz              attenuation, reconstruction grid, 1/cm
    cases/00017/phantom.json           phantom metadata (written last: the case's phantom is done)
    cases/00017/proj_nf.*  proj_n.*    projections (Interfile), counts
    cases/00017/spect_RR_n.nii.gz      reconstructions, MBq/mL (RR|noRR x n|nf)
    manifests/<stage>/shard0003.json   what a shard job did: done, skipped, failed cases
"""

from __future__ import annotations

from pathlib import Path

#: Reconstruction methods and noise levels; a "dataset" is "<method>_<noise>", e.g. RR_n.
METHODS = ("noRR", "RR")
NOISE_LEVELS = ("n", "nf")
DATASETS = tuple(f"{m}_{n}" for m in METHODS for n in NOISE_LEVELS)
CASE_STAGES = ("phantom", "simulate", "noise", "recon_noRR", "recon_RR")


def case_dir(results: str | Path, case_id: int) -> Path:
    return Path(results) / "cases" / f"{case_id:05d}"


def case_file(results: str | Path, case_id: int, name: str) -> Path:
    """A case's file, e.g. ``case_file(r, 17, 'truth.nii.gz')``."""
    return case_dir(results, case_id) / name


def recon_name(dataset: str) -> str:
    """File name of a reconstruction, e.g. ``spect_RR_n.nii.gz``."""
    return f"spect_{dataset}.nii.gz"


def projections_stem(results: str | Path, case_id: int, noise: str) -> Path:
    """Stem of a case's Interfile projections (``noise`` = 'n' or 'nf')."""
    return case_dir(results, case_id) / f"proj_{noise}"


def manifest(results: str | Path, stage: str, shard: int) -> Path:
    return Path(results) / "manifests" / stage / f"shard{shard:04d}.json"


def split_file(results: str | Path) -> Path:
    return Path(results) / "splits.json"


def resolution_file(results: str | Path, method: str) -> Path:
    return Path(results) / "resolution" / f"{method}.json"


def model_dir(results: str | Path, model: str) -> Path:
    return Path(results) / "models" / model


def prediction_file(results: str | Path, model: str, case_id: int) -> Path:
    return Path(results) / "predictions" / model / f"{case_id:05d}.nii.gz"


def iy_file(results: str | Path, dataset: str, mask: str, case_id: int) -> Path:
    return Path(results) / "iy" / f"{dataset}_{mask}" / f"{case_id:05d}.nii.gz"


def model_name(spec: dict) -> str:
    """Name of a model from its specification, e.g. ``unet_RR_n_sum_full``."""
    return f"{spec['architecture']}_{spec['dataset']}_{spec['normalisation']}_{spec['input']}"
