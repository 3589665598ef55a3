"""What every stage depends on, and the fingerprint that says whether its outputs are current.

A stage's *dependencies* are a flat mapping of dotted keys (``camera.time_per_view_s``,
``reconstruction.RR.iterations``, ``code.simulate``, ...) to values: the specs the stage itself
uses, the dependencies of its upstream stages (so a changed phantom setting reaches every later
stage), and a per-stage code version from :data:`CODE_VERSIONS`. The *fingerprint* is a short
SHA-256 of their canonical JSON.

* Per-case stages (phantom, simulate, noise, recon_noRR, recon_RR) write the fingerprint and the
  dependencies into each case's marker; a case counts as done only when its marker's
  fingerprint equals the current one. The rules pass the fingerprint as a parameter, so
  Snakemake reruns a shard exactly when its stage's settings changed (its ``params`` trigger),
  and the shard then redoes only the cases whose markers disagree.
* Fan-in stages (split, resolution, train, predict, iy, evaluate, montage, report) get the same
  fingerprint parameter and record their dependencies under ``fingerprints/`` when they finish.
* A job reruns when an input is rewritten by a job of the same run (Snakemake's own rule), so
  the graph of inputs is kept to what a stage really reads: the split depends on its settings
  alone (not on which cases finished), and every consumer reads the manifests of the one
  reconstruction it uses, from which it also drops unfinished cases. So changing the RR
  iterations redoes RR and what depends on RR, and leaves the noRR resolution and iterative
  Yang alone; a retried case redoes exactly the stages downstream of it.
* The studies (``study_<name>``) depend on the default model's training and prediction keys,
  the resolution of its reconstruction, the PVC and evaluation settings and their own section.

``dlpvc plan`` (:mod:`pvc_core.pipeline.plan`) compares the recorded dependencies with the
current ones and names the settings that changed.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from collections.abc import Mapping
from typing import Any

from pvc_core.domain import DATASETS, dataset_parts
from pvc_core.io import write_json
from pvc_core.specs import CalibrationSpec, CameraSpec, GridSpec, ReconSpec, Settings, flatten, spec_dict
from pvc_core.pipeline.models import INFERENCE_KEYS, model_identity, training_name, trainings
from pvc_core.pipeline.paths import CASE_STAGES, STUDIES, RunLayout  # noqa: F401 (CASE_STAGES re-exported)

#: Bump a stage's number when a code change alters its outputs: every case of that stage and
#: everything downstream is then redone.
CODE_VERSIONS = {
    "phantom": 1, "simulate": 3, "noise": 1, "calibration": 3, "recon": 4, "prune": 1, "split": 1, "resolution": 1,
    "train": 5, "predict": 2, "iy": 1, "deconv": 1, "evaluate": 2, "montage": 1, "study": 1, "report": 2,
    # the fit of the model-based scatter correction (pvc_core.spect.scatter_model.FIT_VERSION, kept
    # equal by a test): a dependency of the reconstructions and calibrations that use it only
    "scatter_model": 2,
}

def recon_keys(recon: ReconSpec) -> dict[str, Any]:
    """A reconstruction's dependency keys (``reconstruction.<name>.*``). Without a post-filter or
    a voxel of its own (0, every configured reconstruction: only ``randomise`` draws them) those
    keys are left out, so reconstructions from before them keep their fingerprints."""
    keys = flatten(spec_dict(recon), f"reconstruction.{recon.name}")
    for key in ("post_filter_fwhm_mm", "voxel_mm"):
        if not getattr(recon, key):
            keys.pop(f"reconstruction.{recon.name}.{key}")
    if recon.scatter_correction == "model":
        keys["code.scatter_model"] = CODE_VERSIONS["scatter_model"]
    return keys


def camera_keys(camera: CameraSpec) -> dict[str, Any]:
    """The camera's dependency keys (``camera.*``). The paper's body-contour orbit leaves
    ``camera.orbit.shape`` out, so results from before the circular orbit keep their fingerprints."""
    keys = flatten(spec_dict(camera), "camera")
    if camera.orbit.shape == "contour":
        keys.pop("camera.orbit.shape")
    return keys


def calibration_dependencies(seed: int, grid: GridSpec, camera: CameraSpec, spec: CalibrationSpec,
                             recon: ReconSpec) -> dict[str, Any]:
    """What the calibration of ``recon`` with ``camera`` depends on: the DAG's ``calibration_<r>``
    stage (the configured camera and reconstruction) and each drawn level of a randomised run
    (:func:`pvc_core.pipeline.calibration_stage.cached_calibration`) alike."""
    return {"seed": seed, **flatten(spec_dict(grid), "grid"), **camera_keys(camera),
            **flatten(spec_dict(spec), "calibration"), **recon_keys(recon),
            "code.calibration": CODE_VERSIONS["calibration"]}


def fingerprint(dependencies: Mapping[str, Any]) -> str:
    """16 hex digits of the SHA-256 of the dependencies' canonical JSON."""
    text = json.dumps(dependencies, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=16)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _files_digest(path: str | None) -> str | None:
    """Content digest of a voxel phantom: the file and its data files (same stem)."""
    if not path:
        return None
    p = Path(path)
    files = sorted(f for f in p.parent.glob(p.name.split(".")[0] + ".*") if f.is_file()) if p.parent.is_dir() else []
    if not files:
        return "missing"
    return ",".join(f"{f.name}:{_file_digest(str(f), f.stat().st_size, f.stat().st_mtime_ns)}" for f in files)


class JobMapping(Mapping):
    """A read-only mapping handed to a job as a rule parameter (a stage's dependencies, a model
    specification) that Snakemake's rerun trigger does not compare.

    Deliberately not a ``dict``: Snakemake compares only plain values of a rule's parameters,
    so the short fingerprint parameter (hashed from canonical, key-sorted JSON) decides, its
    reason stays readable, and a reordering of keys in a YAML file reruns nothing.
    """

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class StageGraph:
    """Dependencies and fingerprints of every stage of one configuration."""

    def __init__(self, settings: Settings, model_specs: Mapping[str, Mapping] | None = None,
                 training_specs: Mapping[str, Mapping] | None = None) -> None:
        self.settings = settings
        self.model_specs = dict(model_specs or {})
        self.training_specs = dict(training_specs) if training_specs is not None else trainings(self.model_specs)

    # --- per-case stages ------------------------------------------------------------------
    @functools.cached_property
    def _phantom(self) -> dict[str, Any]:
        s = self.settings
        deps = {"seed": s.seed, **flatten(spec_dict(s.grid), "grid"), **flatten(spec_dict(s.phantom), "phantom"),
                "code.phantom": CODE_VERSIONS["phantom"]}
        if s.phantom.source == "voxel":
            deps["phantom.voxel.content"] = _files_digest(s.phantom.voxel.path)
        if s.phantom.uptake is None or not s.phantom.uptake.patient_like:
            # every case is the paper's random shapes, which read no uptake key: finished cases of a
            # configuration from before phantom.uptake keep their fingerprints and are not redone
            deps = {k: v for k, v in deps.items() if not k.startswith("phantom.uptake.")}
        return deps

    @property
    def _iy_settings(self) -> dict[str, Any]:
        """The ``pvc`` keys iterative Yang reads (not the deconvolutions' iterations)."""
        return {"pvc.iy_iterations": self.settings.pvc.iy_iterations, "pvc.backend": self.settings.pvc.backend}

    def dependencies(self, stage: str) -> dict[str, Any]:
        """Flat dependencies of ``stage`` (a per-case stage name, or a fan-in job name such as
        ``resolution_RR``, ``train_<training>``, ``predict_<model>``, ``iy_RR_n``, ``evaluate_main``)."""
        s = self.settings
        if stage == "phantom":
            return dict(self._phantom)
        if stage == "simulate":
            # randomise's camera axes only when set: an unrandomised run keeps its fingerprints
            return {**self._phantom, **camera_keys(s.camera), **s.randomise.camera_keys(),
                    "code.simulate": CODE_VERSIONS["simulate"]}
        if stage == "noise":
            return {**self.dependencies("simulate"), "code.noise": CODE_VERSIONS["noise"]}
        if stage.startswith("calibration_"):
            r = stage.removeprefix("calibration_")
            return calibration_dependencies(s.seed, s.grid, s.camera, s.calibration, s.reconstructions[r])
        if stage.startswith("recon_"):
            r = stage.removeprefix("recon_")
            drawn = s.randomise.recon_axes(r).get("scatter_correction")
            model = {"code.scatter_model": CODE_VERSIONS["scatter_model"]} if drawn and "model" in drawn.levels else {}
            return {**self.dependencies("noise"), **self.dependencies(f"calibration_{r}"),
                    **s.randomise.recon_keys(r), **model, "code.recon": CODE_VERSIONS["recon"]}
        if stage == "prune":
            return {**self.dependencies("recon_noRR"), **self.dependencies("recon_RR"),
                    **flatten(spec_dict(s.storage), "storage"), "code.prune": CODE_VERSIONS["prune"]}
        if stage == "split":
            return {"seed": s.seed, "n_cases": s.n_cases, **flatten(spec_dict(s.split), "split"),
                    "code.split": CODE_VERSIONS["split"]}
        if stage.startswith("resolution_"):
            r = stage.removeprefix("resolution_")
            return {**self.dependencies("split"), **self.dependencies(f"recon_{r}"),
                    **flatten(spec_dict(s.resolution), "resolution"), "code.resolution": CODE_VERSIONS["resolution"]}
        if stage.startswith("train_"):
            training = stage.removeprefix("train_")
            spec = self.training_specs[training]
            r, _ = dataset_parts(spec["dataset"])
            return {**self.dependencies("split"), **self.dependencies(f"recon_{r}"),
                    **flatten(model_identity(spec), f"training.{training}"), "evaluation.alpha": s.evaluation.alpha,
                    "code.train": CODE_VERSIONS["train"]}
        if stage.startswith("predict_"):
            model = stage.removeprefix("predict_")
            spec = self.model_specs[model]
            return {**self.dependencies(f"train_{training_name(spec)}"),
                    **{f"model.{model}.{k}": spec[k] for k in INFERENCE_KEYS}, "code.predict": CODE_VERSIONS["predict"]}
        if stage.startswith("iy_"):
            r, _ = dataset_parts(stage.removeprefix("iy_"))
            return {**self.dependencies(f"resolution_{r}"), **self._iy_settings, "code.iy": CODE_VERSIONS["iy"]}
        if stage.startswith("deconv_"):
            r, _ = dataset_parts(stage.removeprefix("deconv_"))
            return {**self.dependencies(f"resolution_{r}"), "pvc.rl_iterations": s.pvc.rl_iterations,
                    "pvc.vc_iterations": s.pvc.vc_iterations, "code.deconv": CODE_VERSIONS["deconv"]}
        if stage.startswith("study_"):
            study = stage.removeprefix("study_")
            model = self.default_model
            r, _ = dataset_parts(self.model_specs[model]["dataset"])
            return {**self.dependencies(f"predict_{model}"), **self.dependencies(f"resolution_{r}"),
                    **self._iy_settings, **flatten(spec_dict(s.evaluation), "evaluation"),
                    **flatten(spec_dict(getattr(s.studies, study)), f"studies.{study}"),
                    "code.study": CODE_VERSIONS["study"]}
        if stage == "montage":
            return {**self._phantom, "code.montage": CODE_VERSIONS["montage"]}
        raise KeyError(f"unknown stage {stage!r}")

    def evaluate_dependencies(self, models: list[str]) -> dict[str, Any]:
        """Evaluation of a suite: every dataset's reconstructions and iterative Yang, the models."""
        deps: dict[str, Any] = {}
        for d in DATASETS:
            deps.update(self.dependencies(f"iy_{d}"))
            deps.update(self.dependencies(f"deconv_{d}"))
        for m in models:
            deps.update(self.dependencies(f"predict_{m}"))
        deps.update(flatten(spec_dict(self.settings.evaluation), "evaluation"))
        deps["code.evaluate"] = CODE_VERSIONS["evaluate"]
        return deps

    @property
    def default_model(self) -> str:
        """The default model (the first of ``model_specs``: :func:`~pvc_core.pipeline.models.model_specs`)."""
        return next(iter(self.model_specs))

    def report_dependencies(self, models: list[str], sweep_models: list[str] = ()) -> dict[str, Any]:
        """The report: the evaluation of its ``models`` (the first is the default model), the
        montage, the studies and, when a sweep is configured, the sweep's evaluation."""
        deps = {**self.evaluate_dependencies(list(models)), **self.dependencies("montage")}
        for study in STUDIES:
            deps.update(self.dependencies(f"study_{study}"))
        if sweep_models:
            deps.update(self.evaluate_dependencies(list(sweep_models)))
        return {**deps, **flatten(spec_dict(self.settings.report), "report"), "code.report": CODE_VERSIONS["report"]}

    def fingerprint(self, stage: str) -> str:
        """Fingerprint of ``stage`` (see :meth:`dependencies`)."""
        return fingerprint(self.dependencies(stage))


def changed_keys(recorded: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    """Dependency keys whose value differs between a recorded and the current mapping."""
    if not recorded:
        return []
    keys = set(recorded) | set(current)
    return sorted(k for k in keys if recorded.get(k) != current.get(k))


def record_fan_in(layout: RunLayout, job: str, fp: str, dependencies: Mapping[str, Any]) -> None:
    """Record what a finished fan-in job was computed from (:meth:`RunLayout.fan_in_record`, not a
    Snakemake output; read by ``dlpvc plan``)."""
    write_json(layout.fan_in_record(job), {"fingerprint": fp, "depends_on": dict(dependencies)})
