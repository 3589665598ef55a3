"""Where every artefact of a run lives, and the order of its stages: :class:`RunLayout`, the one
object that owns them. The rules, the job scripts, the stages and ``dlpvc plan`` read it; a file
name is spelled here once.

Two roots. ``results`` (config ``results_dir``) keeps what a run is for and what is costly to
remake: phantoms, reconstructions, markers, models, tables, the report. ``scratch`` (config
``scratch_dir``; default: the results folder) takes the intermediates that are large, fast to
write and needed only until both reconstructions of a case exist: the projections (three windows,
noisy and noise-free, Interfile). On a cluster, put it on the node-local or parallel scratch disk;
a projection lost to a scratch purge is remade (the noise or reconstruct stage finds it
unreadable and invalidates its producer's marker, :mod:`pvc_core.pipeline.case_stages`).

Layout under the results folder (``scratch:`` marks what lives under the scratch root)::

    cases/00017/truth_sim.nii.gz       true activity, phantom grid, MBq/mL
    cases/00017/mu_sim.nii.gz          attenuation, phantom grid, 1/cm at 208 keV
    cases/00017/labels_sim.nii.gz      organ labels, phantom grid
    cases/00017/truth.nii.gz           true activity, reconstruction grid, MBq/mL
    cases/00017/mu.nii.gz              attenuation, reconstruction grid, 1/cm
    cases/00017/phantom.json           marker of a per-case stage (phantom metadata, fingerprint);
    cases/00017/simulate.json ...      written last: the case's stage is done
    scratch: cases/00017/proj_nf.*     projections (Interfile), counts; proj_n.* with Poisson noise
    cases/00017/spect_RR_n.nii.gz      reconstructions, MBq/mL (RR|noRR x n|nf)
    cases/00017/spect_RR_n.json        its sidecar: units, reconstruction, calibration factor
    manifests/<stage>/shard0003.json   what a shard job did: done, skipped, failed cases
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

Methods return a :class:`~pathlib.Path`; the rules turn them into strings (with ``{wildcards}``
where a rule needs a pattern).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pvc_core.domain import RECONSTRUCTIONS
from pvc_core.model_files import ModelFolder

TRUTH_SIM = "truth_sim.nii.gz"
MU_SIM = "mu_sim.nii.gz"
LABELS_SIM = "labels_sim.nii.gz"
TRUTH = "truth.nii.gz"
MU = "mu.nii.gz"
DONE = "done.json"
#: What ``dlpvc simulate`` writes beside its images.
SIMULATION_SUMMARY = "simulation.json"

#: The per-case stages in the order a case goes through them (one marker each).
CASE_STAGES = ("phantom", "simulate", "noise") + tuple(f"recon_{r}" for r in RECONSTRUCTIONS)
#: The studies of [2.6] (fan-in rules of rules/studies.smk), in the report's order.
STUDIES = ("min_feature_size", "validation_phantoms")
#: Every stage of a run in the order the DAG runs them (``{recon}``, ``{training}``, ``{model}``,
#: ``{dataset}``, ``{study}``: one job or one per-case stage each); the Snakefile includes the
#: rules in this order (a test checks it), and ``dlpvc plan`` reports in it.
STAGES = ("phantom", "simulate", "noise", "calibration_{recon}", "recon_{recon}", "prune", "split", "resolution_{recon}",
          "train_{training}", "predict_{model}", "iy_{dataset}", "deconv_{dataset}", "study_{study}", "evaluate",
          "montage", "report")


def recon_name(dataset: str) -> str:
    """File name of a reconstruction, e.g. ``spect_RR_n.nii.gz``."""
    return f"spect_{dataset}.nii.gz"


def recon_sidecar_name(dataset: str) -> str:
    """JSON sidecar of a reconstruction (units, reconstruction, calibration), e.g. ``spect_RR_n.json``."""
    return f"spect_{dataset}.json"


def projections_name(noise: str) -> str:
    """Stem (file name without extension) of projections of a noise level, e.g. ``proj_nf``."""
    return f"proj_{noise}"


def _case(case_id: int) -> str:
    return f"{case_id:05d}"


@dataclass(frozen=True)
class RunLayout:
    """Every path of one run: persistent results under ``results``, projections under ``scratch``.

    ``RunLayout("results")`` keeps both under one folder (the default, and what tests use).
    """

    results: Path
    scratch: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "results", Path(self.results))
        object.__setattr__(self, "scratch", Path(self.scratch) if self.scratch is not None else self.results)

    def as_dict(self) -> dict[str, str]:
        """``{"results", "scratch"}`` as strings (JSON); ``RunLayout(**d)`` makes it again."""
        return {"results": str(self.results), "scratch": str(self.scratch)}

    @classmethod
    def of(cls, settings) -> "RunLayout":
        """The layout of a :class:`pvc_core.specs.Settings` (``results_dir``, ``scratch_dir``)."""
        return cls(Path(settings.results_dir), Path(settings.scratch_dir) if settings.scratch_dir else None)

    # -- per case -------------------------------------------------------------------------
    def case_dir(self, case_id: int) -> Path:
        return self.results / "cases" / _case(case_id)

    def case_file(self, case_id: int, name: str) -> Path:
        """A case's file in the results folder, e.g. ``case_file(17, TRUTH)``."""
        return self.case_dir(case_id) / name

    def scratch_case_dir(self, case_id: int) -> Path:
        """A case's folder under the scratch root (the results folder's unless configured)."""
        return self.scratch / "cases" / _case(case_id)

    def marker_file(self, case_id: int, stage: str) -> Path:
        """The marker of a per-case stage (``phantom.json``, ``simulate.json``, ``recon_RR.json``, ...)."""
        return self.case_file(case_id, f"{stage}.json")

    def projections_stem(self, case_id: int, noise: str) -> Path:
        """Stem of a case's Interfile projections (``noise`` = 'n' or 'nf'), under the scratch root."""
        return self.scratch_case_dir(case_id) / projections_name(noise)

    def projections_header(self, case_id: int, noise: str) -> Path:
        """The Interfile header of a case's projections."""
        return self.projections_stem(case_id, noise).with_suffix(".hdr")

    def manifest(self, stage: str, shard: int | str) -> Path:
        shard = shard if isinstance(shard, str) else f"{shard:04d}"
        return self.results / "manifests" / stage / f"shard{shard}.json"

    # -- per reconstruction and dataset ---------------------------------------------------
    def calibration_file(self, reconstruction: str) -> Path:
        """The calibration of a reconstruction (factor and what it was measured on)."""
        return self.results / "calibration" / f"{reconstruction}.json"

    def calibration_levels_dir(self) -> Path:
        """The calibrations of a randomised run's drawn levels, ``<reconstruction>-<fingerprint>.json``
        (:func:`pvc_core.pipeline.calibration_stage.cached_calibration`)."""
        return self.results / "calibration" / "levels"

    def split_file(self) -> Path:
        return self.results / "splits.json"

    def resolution_file(self, reconstruction: str) -> Path:
        return self.results / "resolution" / f"{reconstruction}.json"

    # -- trainings and models -------------------------------------------------------------
    def model_folder(self, training: str) -> ModelFolder:
        """A training's folder (weights, card, history, checkpoint: :class:`~pvc_core.model_files.ModelFolder`)."""
        return ModelFolder(self.results / "models" / training)

    def training_cache_dir(self, dataset: str) -> Path:
        """The normalised-case cache of a dataset's trainings (:mod:`pvc_core.training.case_cache`)."""
        return self.results / "cache" / "training" / dataset

    def prediction_file(self, model: str, case_id: int) -> Path:
        return self.results / "predictions" / model / f"{_case(case_id)}.nii.gz"

    def predictions_done(self, model: str) -> Path:
        return self.results / "predictions" / model / DONE

    # -- baselines, evaluation, studies, report -------------------------------------------
    def iy_file(self, dataset: str, mask: str, case_id: int) -> Path:
        return self.results / "iy" / f"{dataset}_{mask}" / f"{_case(case_id)}.nii.gz"

    def iy_done(self, dataset: str) -> Path:
        return self.results / "iy" / f"{dataset}.json"

    def deconvolution_file(self, dataset: str, method: str, case_id: int) -> Path:
        """A test case corrected by a mask-free deconvolution (``rl`` or ``vc``)."""
        return self.results / "deconvolution" / f"{dataset}_{method}" / f"{_case(case_id)}.nii.gz"

    def deconvolution_done(self, dataset: str) -> Path:
        return self.results / "deconvolution" / f"{dataset}.json"

    def metrics_table(self, suite: str) -> Path:
        return self.results / "tables" / f"metrics_{suite}.csv"

    def summary_table(self, suite: str) -> Path:
        return self.results / "tables" / f"summary_{suite}.csv"

    def sweep_table(self, stage: str) -> Path:
        """The staged sweep's paired comparisons of one stage (:mod:`pvc_core.pipeline.sweep_tables`)."""
        return self.results / "tables" / f"sweep_{stage}.csv"

    def montage_file(self) -> Path:
        return self.results / "figures" / "phantoms.png"

    def study_dir(self) -> Path:
        return self.results / "studies"

    def study_file(self, name: str) -> Path:
        """A study's table or figure (``min_feature_size.csv``, ...), beside its manifest."""
        return self.study_dir() / name

    def study_table(self, study: str) -> Path:
        """A study's main table (``studies/<study>.csv``)."""
        return self.study_dir() / f"{study}.csv"

    def study_manifest(self, study: str) -> Path:
        """A study's manifest: JSON ``{"title", "paragraphs": [...], "tables": [{"caption", "csv"}],
        "figures": [{"caption", "png"}]}`` with file names relative to :meth:`study_dir`; the report
        renders every manifest it is given in this form."""
        return self.study_dir() / f"{study}.json"

    def report_file(self) -> Path:
        return self.results / "report" / "report.html"

    def fan_in_record(self, job: str) -> Path:
        """What a fan-in job was computed from (``fingerprints/<job>.json``, read by ``dlpvc plan``)."""
        return self.results / "fingerprints" / f"{job}.json"

    def log_file(self, stage: str, name: str) -> Path:
        return self.results / "logs" / stage / f"{name}.log"

    def bench_file(self, stage: str, name: str) -> Path:
        return self.results / "benchmarks" / stage / f"{name}.tsv"
