"""The models a configuration trains: the default and those of the staged sweep (``training.sweep``).

A *model* (a DL-PVC method, ``dl:<model>`` in the tables) is a trained network applied with a
normalisation; a *training* is the network. The normalisation (sum or max) acts only at
inference (:mod:`pvc_core.training.normalisation`), so the sum and max models of one
architecture, dataset and input share one training, the paper's "normalisation evaluated from one
training". Its best epoch is chosen on validation predictions normalised as
:data:`SELECTION_NORMALISATION` (the paper's choice).

Every model here is a :class:`~pvc_core.model_spec.ModelSpec`, completed once (schema defaults
filled in, validated) from ``training.default`` and the sweep's changes; its names come from it:
readable plus a short hash of the full specification, so runs of other settings never overwrite
each other: ``unet_RR_n_full-1a2b3c4d`` (training, ``models/<training>/``) and
``unet_RR_n_sum_full-1a2b3c4d`` (model, ``predictions/<model>/``), with the training's hash.
The functions below also take a plain mapping (a configuration's ``training.default``), which they
complete first.
"""

from __future__ import annotations

from collections.abc import Mapping

from pvc_core.domain import dataset_parts
# A model's spec, its names and the keys that define it live on the settings floor; re-exported.
from pvc_core.model_spec import (INFERENCE_KEYS, NAME_HASH_DIGITS, RUNTIME_KEYS,  # noqa: F401
                                 SELECTION_NORMALISATION, ModelSpec, model_identity)
from pvc_core.phantom.materials import PHOTOPEAK_KEV
from pvc_core.specs import COLLIMATORS

#: Where a model of the configuration's ``training`` section is named in an error.
_SOURCE = "training.default"


def _spec(spec: Mapping) -> ModelSpec:
    return ModelSpec.complete(spec, _SOURCE)


def training_name(spec: Mapping) -> str:
    """Folder name of the training behind a model, e.g. ``unet_RR_n_full-1a2b3c4d``."""
    return _spec(spec).training_name


def model_name(spec: Mapping) -> str:
    """Name of a model (training + how it is applied), e.g. ``unet_RR_n_sum_full-1a2b3c4d``, or
    ``unet_RR_n_sum_full_tta-1a2b3c4d`` with test-time augmentation; the hash is the training's."""
    return _spec(spec).model_name


def trainings(specs: Mapping[str, Mapping]) -> dict[str, ModelSpec]:
    """Training name -> training specification of the models ``specs`` (each distinct training once)."""
    return {s.training_name: s.training_spec() for s in map(_spec, specs.values())}


#: The sweep's stages in order: stage -> the ``training.sweep`` key whose values it compares
#: (``extras`` compares each named variant with the default model).
SWEEP_STAGES = {"normalisation": "normalisations", "input": "inputs", "architecture": "architectures",
                "extras": "extras"}

#: Label of the default model in the ``extras`` stage.
BASELINE_VARIANT = "default"


def main_models(training: Mapping) -> dict[str, ModelSpec]:
    """The report's models (its Table 1): ``training.default`` on each dataset of
    ``training.datasets`` (name -> specification), the default model's own dataset first."""
    base = _spec(training["default"])
    datasets = [base["dataset"]] + [d for d in training.get("datasets", ()) if d != base["dataset"]]
    specs = (base.with_changes("training.datasets", dataset=d) for d in datasets)
    return {spec.model_name: spec for spec in specs}


def model_specs(training: Mapping) -> tuple[dict[str, ModelSpec], list[str]]:
    """(name -> model specification of every model, names of the sweep's models in order).

    The report's models (:func:`main_models`, the default first) come first; the sweep's models
    are those of :func:`sweep_stages`.
    """
    specs = main_models(training)
    sweep_names: list[str] = []
    for variants in sweep_stages(training).values():
        for variant in variants:
            specs.setdefault(variant["model"], variant["spec"])
            if variant["model"] not in sweep_names:
                sweep_names.append(variant["model"])
    return specs, sweep_names


def sweep_stages(training: Mapping) -> dict[str, list[dict]]:
    """The paper's staged sweep: stage -> its variants, each ``{"dataset", "variant", "model", "spec"}``.

    Each stage changes one choice of the default model (``training.default``) and keeps the
    others, on every dataset of ``training.sweep.datasets`` (default: the default model's):

    * ``normalisation``: each of ``normalisations`` (sum and max share one training, since the
      normalisation acts only at inference);
    * ``input``: each of ``inputs`` (full field of view vs 32^3 patches);
    * ``architecture``: each of ``architectures``;
    * ``extras`` (beyond the paper, opt-in): the default model and each named variant of
      ``extras`` (model keys overriding the default: ``attenuation_channel``, ``loss``, ``tta``, ...).

    A stage whose key is absent or lists one value compares nothing and is left out. Models that
    two stages share (the default one in each) are one model and, with it, one training.
    """
    sweep = training.get("sweep") or {}
    base = _spec(training["default"])
    datasets = sweep.get("datasets", [base["dataset"]])
    stages: dict[str, list[dict]] = {}
    for stage, key in SWEEP_STAGES.items():
        values = sweep.get(key)
        if not values or len(values) < (1 if stage == "extras" else 2):
            continue
        if stage == "extras":
            overrides = {BASELINE_VARIANT: {}, **{name: dict(v) for name, v in values.items()}}
        else:
            field = key.removesuffix("s")
            overrides = {str(v): {field: v} for v in values}
        stages[stage] = [{"dataset": d, "variant": label, "model": spec.model_name, "spec": spec}
                         for d in datasets for label, change in overrides.items()
                         for spec in [base.with_changes(f"training.sweep.{key}", dataset=d, **change)]]
    return stages


def trained_for(settings, dataset: str) -> dict:
    """What a model of ``dataset`` trained under ``settings`` (a :class:`pvc_core.specs.Settings`)
    is made for: the model card's ``trained_for``, which ``dlpvc apply`` compares with its input.

    Voxel size and matrix of the reconstruction grid, the reconstruction (OSEM iterations, subsets
    and corrections), collimator, isotope, acquisition and count level (total activity range),
    phantom source. With ``randomise`` the axes drawn per case are stated as what was trained on:
    a number as its [min, max] (iterations, subsets, time per view, intrinsic FWHM, orbit
    clearance, post-filter, the voxel reconstructed at), the scatter corrections and orbits as
    their lists, the collimators' labels joined by "or", and ``randomised`` with the axes as
    configured.
    """
    reconstruction, noise = dataset_parts(dataset)
    recon = settings.reconstructions[reconstruction]
    randomise = getattr(settings, "randomise", None)
    camera_axes = randomise.camera_axes() if randomise is not None else {}
    recon_axes = randomise.recon_axes(reconstruction) if randomise is not None else {}
    scatter = list(recon_axes["scatter_correction"].levels) if "scatter_correction" in recon_axes else None
    corrections = ["attenuation (CT-based mu map)", f"scatter ({' or '.join(scatter) if scatter else recon.scatter_correction})"]
    if recon.psf:
        corrections.append("resolution recovery (collimator-detector response)")
    activity = settings.phantom.total_activity_mbq
    acquisition = {"n_views": int(settings.camera.n_views), "time_per_view_s": float(settings.camera.time_per_view_s)}
    osem = {"iterations": int(recon.iterations), "subsets": int(recon.subsets)}
    if "time_per_view_s" in camera_axes:
        acquisition["time_per_view_s"] = _bounds(camera_axes["time_per_view_s"])
    if "intrinsic_fwhm_mm" in camera_axes:
        acquisition["intrinsic_fwhm_mm"] = _bounds(camera_axes["intrinsic_fwhm_mm"])
    if "orbit" in camera_axes:
        acquisition["orbit"] = list(camera_axes["orbit"].levels)
    if "orbit_clearance_mm" in camera_axes:
        acquisition["orbit_clearance_mm"] = _bounds(camera_axes["orbit_clearance_mm"])
    collimator = settings.camera.collimator_name
    if "collimator" in camera_axes:
        collimator = " or ".join(COLLIMATORS[c][0] for c in camera_axes["collimator"].levels)
    if "iterations_subsets" in recon_axes:
        pairs = recon_axes["iterations_subsets"].levels
        osem = {"iterations": [min(p[0] for p in pairs), max(p[0] for p in pairs)],
                "subsets": [min(p[1] for p in pairs), max(p[1] for p in pairs)]}
    voxel = [float(settings.grid.recon_voxel_mm)] * 3
    if "voxel_mm" in recon_axes:  # reconstructed at these, resampled to the model grid
        osem["reconstructed_voxel_mm"] = _bounds(recon_axes["voxel_mm"])
    out = {
        "voxel_mm": voxel,
        "matrix": [int(settings.grid.recon_matrix)] * 3,
        "isotope": "Lu-177",
        "photopeak_kev": PHOTOPEAK_KEV,
        "collimator": collimator,
        "acquisition": acquisition,
        "reconstruction": {"name": reconstruction, "method": "OSEM", **osem, "corrections": corrections},
        "noise": "Poisson" if noise == "n" else "noise-free",
        "count_level": {"total_activity_mbq": [float(activity.low), float(activity.high)],
                        "distribution": activity.kind},
        "phantom_source": settings.phantom.source,
        "dataset": dataset,
    }
    if scatter:
        out["reconstruction"]["scatter_correction"] = scatter
    if "post_filter_fwhm_mm" in recon_axes:
        out["reconstruction"]["post_filter_fwhm_mm"] = _bounds(recon_axes["post_filter_fwhm_mm"])
    if camera_axes or recon_axes:
        out["randomised"] = {**{a: ax.as_dict() for a, ax in camera_axes.items()},
                             "reconstruction": {a: ax.as_dict() for a, ax in recon_axes.items()}}
    return out


def _bounds(axis) -> list[float]:
    """[min, max] of a randomised numeric axis (its levels or its range)."""
    values = axis.levels if axis.levels is not None else axis.range
    return [float(min(values)), float(max(values))]
