"""Where every artefact lives: each path is spelled here once.

Layout under the results folder::

    cases/00017/truth_sim.nii.gz       true activity, phantom grid, MBq/mL
    cases/00017/mu_sim.nii.gz          attenuation, phantom grid, 1/cm at 208 keV
    cases/00017/labels_sim.nii.gz      organ labels, phantom grid
    cases/00017/truth.nii.gz           true activity, reconstruction grid, MBq/mL
    cases/00017/mu.nii.gz              attenuation, reconstruction grid, 1/cm
    cases/00017/phantom.json           marker of a per-case stage (phantom metadata, fingerprint);
    cases/00017/simulate.json ...      written last: the case's stage is done
    cases/00017/proj_nf.*  proj_n.*    projections (Interfile), counts
    cases/00017/spect_RR_n.nii.gz      reconstructions, MBq/mL (RR|noRR x n|nf)
    manifests/<stage>/shard0003.json   what a shard job did: done, skipped, failed cases
    cases/00017/spect_RR_n.json        its sidecar: units, reconstruction, calibration factor
    calibration/RR.json                calibration cylinder: factor of a reconstruction
    splits.json                        train / validation / test case lists
    resolution/RR.json                 matched-filter FWHM of a reconstruction
    models/<training>/model.pt         trained network, its model_card.json and history.csv
    models/<training>/checkpoint.pt    the training's state after its last epoch (resume)
    cache/training/RR_n/               normalised training cases as .npy (shared by the dataset's models)
    predictions/<model>/00017.nii.gz   DL-PVC of a test case (predictions/<model>/done.json)
    iy/RR_n_truth/00017.nii.gz         iterative Yang with the true or SPECT-derived mask (iy/RR_n.json)
    deconvolution/RR_n_rl/00017.nii.gz Richardson-Lucy or Van Cittert (deconvolution/RR_n.json)
    tables/metrics_main.csv            metrics per case x dataset x PVC method (summary_main.csv)
    tables/sweep_architecture.csv      a sweep stage's paired Wilcoxon comparisons (Holm-adjusted)
    figures/phantoms.png               phantom montage
    studies/min_feature_size.json      a study's manifest (title, text, tables, figures), its CSVs and PNGs beside it
    report/report.html                 the report
    fingerprints/<job>.json            what a fan-in job was computed from (for ``dlpvc plan``)
    logs/<stage>/<name>.log            benchmarks/<stage>/<name>.tsv

Functions take ``results`` (the results folder) and return a :class:`~pathlib.Path`; the
``*_pattern`` functions return the Snakemake patterns (with ``{wildcards}``) of the same paths.
"""

from __future__ import annotations

from pathlib import Path

from pvc_core.domain import DATASETS, NOISE_LEVELS, RECONSTRUCTIONS  # noqa: F401 (re-exported vocabulary)
# A training's file names are spelled where the training writes them (the floor below); re-exported.
from pvc_core.training.files import HISTORY, MODEL_CARD, MODEL_WEIGHTS, TRAINING_CHECKPOINT  # noqa: F401

TRUTH_SIM = "truth_sim.nii.gz"
MU_SIM = "mu_sim.nii.gz"
LABELS_SIM = "labels_sim.nii.gz"
TRUTH = "truth.nii.gz"
MU = "mu.nii.gz"
DONE = "done.json"
#: What ``dlpvc simulate`` writes beside its images.
SIMULATION_SUMMARY = "simulation.json"


def case_dir(results: str | Path, case_id: int) -> Path:
    return Path(results) / "cases" / f"{case_id:05d}"


def case_file(results: str | Path, case_id: int, name: str) -> Path:
    """A case's file, e.g. ``case_file(r, 17, TRUTH)``."""
    return case_dir(results, case_id) / name


def marker_file(results: str | Path, case_id: int, stage: str) -> Path:
    """The marker of a per-case stage (``phantom.json``, ``simulate.json``, ``recon_RR.json``, ...)."""
    return case_file(results, case_id, f"{stage}.json")


def recon_name(dataset: str) -> str:
    """File name of a reconstruction, e.g. ``spect_RR_n.nii.gz``."""
    return f"spect_{dataset}.nii.gz"


def projections_stem(results: str | Path, case_id: int, noise: str) -> Path:
    """Stem of a case's Interfile projections (``noise`` = 'n' or 'nf')."""
    return case_dir(results, case_id) / projections_name(noise)


def projections_name(noise: str) -> str:
    """Stem (file name without extension) of projections of a noise level, e.g. ``proj_nf``."""
    return f"proj_{noise}"


def projections_header(results: str | Path, case_id: int, noise: str) -> Path:
    """The Interfile header of a case's projections."""
    return projections_stem(results, case_id, noise).with_suffix(".hdr")


def manifest(results: str | Path, stage: str, shard: int | str) -> Path:
    shard = shard if isinstance(shard, str) else f"{shard:04d}"
    return Path(results) / "manifests" / stage / f"shard{shard}.json"


def recon_sidecar_name(dataset: str) -> str:
    """JSON sidecar of a reconstruction (units, reconstruction, calibration), e.g. ``spect_RR_n.json``."""
    return f"spect_{dataset}.json"


def calibration_file(results: str | Path, reconstruction: str) -> Path:
    """The calibration of a reconstruction (factor and what it was measured on)."""
    return Path(results) / "calibration" / f"{reconstruction}.json"


def split_file(results: str | Path) -> Path:
    return Path(results) / "splits.json"


def resolution_file(results: str | Path, reconstruction: str) -> Path:
    return Path(results) / "resolution" / f"{reconstruction}.json"


def model_dir(results: str | Path, model: str) -> Path:
    return Path(results) / "models" / model


def model_file(results: str | Path, model: str) -> Path:
    return model_dir(results, model) / MODEL_WEIGHTS


def model_card_file(results: str | Path, model: str) -> Path:
    return model_dir(results, model) / MODEL_CARD


def history_file(results: str | Path, model: str) -> Path:
    return model_dir(results, model) / HISTORY


def training_cache_dir(results: str | Path, dataset: str) -> Path:
    """The normalised-case cache of a dataset's trainings (:mod:`pvc_core.training.case_cache`)."""
    return Path(results) / "cache" / "training" / dataset


def prediction_file(results: str | Path, model: str, case_id: int) -> Path:
    return Path(results) / "predictions" / model / f"{case_id:05d}.nii.gz"


def predictions_done(results: str | Path, model: str) -> Path:
    return Path(results) / "predictions" / model / DONE


def iy_file(results: str | Path, dataset: str, mask: str, case_id: int) -> Path:
    return Path(results) / "iy" / f"{dataset}_{mask}" / f"{case_id:05d}.nii.gz"


def iy_done(results: str | Path, dataset: str) -> Path:
    return Path(results) / "iy" / f"{dataset}.json"


def deconvolution_file(results: str | Path, dataset: str, method: str, case_id: int) -> Path:
    """A test case corrected by a mask-free deconvolution (``rl`` or ``vc``)."""
    return Path(results) / "deconvolution" / f"{dataset}_{method}" / f"{case_id:05d}.nii.gz"


def deconvolution_done(results: str | Path, dataset: str) -> Path:
    return Path(results) / "deconvolution" / f"{dataset}.json"


def metrics_table(results: str | Path, suite: str) -> Path:
    return Path(results) / "tables" / f"metrics_{suite}.csv"


def summary_table(results: str | Path, suite: str) -> Path:
    return Path(results) / "tables" / f"summary_{suite}.csv"


def sweep_table(results: str | Path, stage: str) -> Path:
    """The staged sweep's paired comparisons of one stage (:mod:`pvc_core.pipeline.sweep_tables`)."""
    return Path(results) / "tables" / f"sweep_{stage}.csv"


def montage_file(results: str | Path) -> Path:
    return Path(results) / "figures" / "phantoms.png"


#: The studies of [2.6] (fan-in rules of rules/studies.smk), in the report's order.
STUDIES = ("min_feature_size", "validation_phantoms")


def study_dir(results: str | Path) -> Path:
    return Path(results) / "studies"


def study_file(results: str | Path, name: str) -> Path:
    """A study's table or figure (``min_feature_size.csv``, ...), beside its manifest."""
    return study_dir(results) / name


def study_table(results: str | Path, study: str) -> Path:
    """A study's main table (``studies/<study>.csv``)."""
    return study_dir(results) / f"{study}.csv"


def study_manifest(results: str | Path, study: str) -> Path:
    """A study's manifest: JSON ``{"title", "paragraphs": [...], "tables": [{"caption", "csv"}],
    "figures": [{"caption", "png"}]}`` with file names relative to :func:`study_dir`; the report
    renders every manifest it is given in this form."""
    return study_dir(results) / f"{study}.json"


def report_file(results: str | Path) -> Path:
    return Path(results) / "report" / "report.html"


def log_file(results: str | Path, stage: str, name: str) -> Path:
    return Path(results) / "logs" / stage / f"{name}.log"


def bench_file(results: str | Path, stage: str, name: str) -> Path:
    return Path(results) / "benchmarks" / stage / f"{name}.tsv"
