"""Correct one SPECT image: read, check, resample to the model's grid, correct, resample back, write.

Steps of :func:`apply_one` (each image independent; a bad one never stops the others), after
:mod:`pvc_core.apply.plan` has settled where its output goes:

1. **Read** a NIfTI file (values in MBq/mL, the unit of every dlpvc image) or a DICOM file or
   folder (:mod:`pvc_core.io.dicom`: NM or PT, rescale applied, Bq/mL converted to MBq/mL; counts
   refused). Tiny negatives of OSEM (>= -1e-6 x max) are set to 0 with a note; an image whose
   negative activity exceeds :data:`NEGATIVE_MASS_LIMIT` of its positive activity, or without any
   positive voxel, is refused; smaller negatives are set to 0 with a note saying how much
   activity that removed.
2. **Check** what is physically impossible (:mod:`pvc_core.apply.domain`: voxel size, matrix,
   image total) and refuse it; gather what the input states about itself (``--reconstruction``,
   its JSON sidecar, DICOM ReconstructionMethod ...) and compare it with the model's domain:
   ``inside``, ``outside`` or ``unknown``, a warning (or, with ``strict``, a refusal).
3. **Resample** (activity-conserving, :func:`pvc_core.geometry.resample.resample_activity`) onto
   the model's grid (:mod:`pvc_core.apply.model_grid`): the training voxel size.
4. **Correct** with the network in windows of its training matrix laid on the activity
   (:mod:`pvc_core.apply.fov`), so that a voxel gets the same correction whatever the field of
   view; a model with the CT channel gets the CT as mu at 208 keV on the same grid
   (:mod:`pvc_core.apply.ct`).
5. **Resample back** onto the input grid and, for a total-conserving (``sum``) model, scale the
   result so that its total activity equals the input's: the output total equals the input total
   to float rounding.
6. **Hollow guard** (:mod:`pvc_core.apply.hollow`): a hot region that the output turned hollow
   while the input was not is named in a warning.
7. **Write** the output with the input's affine: NIfTI (``.nii``/``.nii.gz``, MBq/mL), or a DICOM
   series in Bq/mL beside a DICOM input (:func:`pvc_core.io.dicom.write_spect_series`, ImageType
   DERIVED/SECONDARY), then the JSON sidecar, each through :func:`pvc_core.io.atomic.atomic_path`:
   whole or not at all, never replacing a file unless the plan allows it.

With ``--uncertainty`` (:mod:`pvc_core.apply.uncertainty`) step 4 also corrects with each orbit
symmetry alone, and step 7 writes, between the output and its sidecar, the voxel-wise SD over the
symmetries (``<stem>_sd.nii.gz``, MBq/mL, the input's affine) with its own sidecar and, with
``--labels``, the regions' CSV; the output's sidecar, written last, then names them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from pvc_core.apply.ct import ct_mu_on_grid
from pvc_core.apply.domain import (INSIDE, OUTSIDE, InputFacts, activity_problem, check_domain, facts_from_dicom,
                                   facts_from_sidecar, geometry_problem)
from pvc_core.apply.hollow import hollow_regions
from pvc_core.apply.model import ApplyModel
from pvc_core.apply.model_grid import model_grid
from pvc_core.apply.plan import (CORRECT, DICOM, NIFTI, SIDECAR_FORMAT, Job, UncertaintyPaths, content_digest,
                                 input_sidecar, plan_apply, read_sidecar, sidecar_path)
from pvc_core.apply.uncertainty import (SD_READING, SD_WHAT, SymmetrySpread, cost_facts, read_labels,
                                        symmetry_list, write_regions_csv)
from pvc_core.errors import InputError
from pvc_core.geometry.resample import resample_activity
from pvc_core.io import Image, load_image, save_image, write_json
from pvc_core.io.atomic import atomic_path, remove_path
from pvc_core.io.dicom import is_dicom_path, read_ct_dicom, read_spect_dicom, write_spect_series
from pvc_core.io.nifti import TINY_NEGATIVE_FRACTION
from pvc_core.io.outputs import is_nifti_name

#: Negative activity (sum of negative voxels) above this fraction of the positive activity is refused.
NEGATIVE_MASS_LIMIT = 0.01
#: The mark every output of ``dlpvc apply`` carries (sidecar, DICOM ImageComments).
RESEARCH_USE = "research use only, not for diagnosis"

Say = Callable[[str], object]

__all__ = ["NEGATIVE_MASS_LIMIT", "RESEARCH_USE", "SIDECAR_FORMAT", "SpectInput", "read_spect", "read_ct",
           "input_facts", "correct_image", "apply_one", "sidecar_path"]


@dataclass
class SpectInput:
    """A SPECT image in MBq/mL with its affine, where it came from, and what its header says."""

    image: Image
    path: Path
    kind: str                          # "nifti" or "dicom"
    dicom: object | None = None        # pvc_core.io.dicom.DicomSeries for a DICOM input
    stated: dict = field(default_factory=dict)   # facts the input states (sidecar, DICOM header)
    stated_by: str | None = None       # where they were read from
    notes: list[str] = field(default_factory=list)

    @property
    def total_mbq(self) -> float:
        return float(self.image.data.sum(dtype=np.float64)) * self.image.voxel_volume_ml


def _stated_by_sidecar(path: Path) -> tuple[dict, str | None]:
    """Facts from the JSON sidecar beside a NIfTI input (``<stem>.json``: dlpvc's or BIDS)."""
    side = input_sidecar(path)
    data = read_sidecar(side)
    if data is None or data.get("format") == SIDECAR_FORMAT:
        return {}, None
    facts = facts_from_sidecar(data)
    return facts, (str(side) if facts else None)


def _check_activity(data: np.ndarray, source: Path, say: Say) -> np.ndarray:
    """The activity image with tiny (and small) negatives set to 0; refuse what is not activity."""
    if not np.all(np.isfinite(data)):
        raise InputError(f"holds {int((~np.isfinite(data)).sum())} NaN or infinite voxels", source)
    top = float(data.max())
    if top <= 0:
        raise InputError("holds no positive value (all zero or negative): not an activity image", source)
    negative = data < 0
    if negative.any():
        tiny = negative & (data >= -TINY_NEGATIVE_FRACTION * top)
        rest = negative & ~tiny
        neg_mass = float(-data[rest].sum(dtype=np.float64))
        pos_mass = float(data[data > 0].sum(dtype=np.float64))
        if neg_mass > NEGATIVE_MASS_LIMIT * pos_mass:
            raise InputError(f"negative values hold {100 * neg_mass / pos_mass:.1f} % of the positive activity "
                             f"(min {float(data.min()):.4g}); DL-PVC needs a non-negative activity image "
                             "(e.g. OSEM)", source)
        if tiny.any():
            say(f"{source}: set {int(tiny.sum())} voxels with tiny negative values (>= -{TINY_NEGATIVE_FRACTION:g} x max) "
                "to 0")
        if rest.any():
            say(f"{source}: set {int(rest.sum())} negative voxels to 0 ({100 * neg_mass / pos_mass:.3f} % of the "
                "activity)")
        data = np.where(negative, np.float32(0), data).astype(np.float32)
    return data


def read_spect(path: str | os.PathLike, say: Say) -> SpectInput:
    """Read a SPECT image (NIfTI in MBq/mL, or DICOM NM/PT in Bq/mL) and check it (module docstring, steps 1-2)."""
    path = Path(path)
    if not os.fspath(path) or not path.exists():
        raise InputError("file or folder not found", path)
    if path.is_file() and not is_nifti_name(path) and not is_dicom_path(path):
        raise InputError("neither NIfTI (.nii, .nii.gz) nor DICOM", path)
    if is_nifti_name(path):
        img = load_image(path, name="SPECT image")
        image, kind, series = img, NIFTI, None
        stated, stated_by = _stated_by_sidecar(path)
    else:
        series = read_spect_dicom(path)
        image, kind = series.image, DICOM
        stated, stated_by = facts_from_dicom(series.datasets[0]), "DICOM header"
    problem = geometry_problem(image.data.shape, image.voxel_size_mm)
    if problem:
        raise InputError(problem, path)
    data = _check_activity(image.data.astype(np.float32, copy=False), path, say)
    spect = SpectInput(Image(data, image.affine), path, kind, series, stated, stated_by)
    problem = activity_problem(spect.total_mbq)
    if problem:
        raise InputError(problem, path)
    return spect


def read_ct(path: str | os.PathLike) -> Image:
    """A CT in HU (NIfTI or DICOM CT series) with its affine."""
    path = Path(path)
    if not path.exists():
        raise InputError("CT file or folder not found", path)
    if is_nifti_name(path):
        return load_image(path, name="CT")
    if is_dicom_path(path):
        return read_ct_dicom(path).image
    raise InputError("CT is neither NIfTI (.nii, .nii.gz) nor DICOM", path)


def input_facts(spect: SpectInput, reconstruction: str | None = None) -> InputFacts:
    """What ``spect`` states about itself; ``reconstruction`` (``--reconstruction``) overrides its kind."""
    stated = dict(spect.stated)
    sources = {k: spect.stated_by for k in stated}
    if reconstruction is not None:
        stated["reconstruction"] = reconstruction
        sources["reconstruction"] = "--reconstruction"
    keys = ("reconstruction", "iterations", "subsets", "scatter_correction", "attenuation_correction",
            "post_filter_fwhm_mm", "collimator", "isotope")
    return InputFacts(voxel_mm=spect.image.voxel_size_mm, matrix=tuple(int(n) for n in spect.image.data.shape),
                      total_mbq=spect.total_mbq, sources=sources, **{k: stated.get(k) for k in keys})


def correct_image(model: ApplyModel, image: Image, ct: Image | None = None, ct_source: str = "--ct", *,
                  each_symmetry: Callable[[np.ndarray], object] | None = None) -> tuple[np.ndarray, dict]:
    """The corrected image (float32, MBq/mL) on ``image``'s grid, and facts for the sidecar.

    ``each_symmetry`` (``--uncertainty``): the image is also corrected with each orbit symmetry of
    the network input on its own (:func:`pvc_core.apply.uncertainty.predict_symmetries`: the same
    network runs a test-time-augmented model makes anyway), and each of those corrections
    (float32, MBq/mL, on ``image``'s grid, resampled back and total-conserved like the corrected
    image) is passed to it in turn; the corrected image returned is the same as without it.
    """
    # lazy: the network's side (torch, ~1.2 s) loads when an image is corrected, never for a refused input
    from pvc_core.apply.fov import blend_windows
    from pvc_core.apply.uncertainty import predict_symmetries, symmetry_count
    from pvc_core.training.predict import predict_image

    voxel = tuple(model.trained_for.get("voxel_mm") or image.voxel_size_mm)
    shape, affine = model_grid(image.data.shape, image.affine, voxel)
    x = resample_activity(image.data, image.affine, shape, affine).astype(np.float32)
    mu, ct_coverage = None, None
    if model.takes_ct:
        mu, ct_coverage = ct_mu_on_grid(ct, shape, affine, ct_source)
    window = model.trained_for.get("matrix")
    if each_symmetry is None:
        channels = 1

        def predict(v: np.ndarray, m: np.ndarray | None) -> np.ndarray:
            return predict_image(model.module, model.cfg, v, device=model.device, mu_cm=m)[None]
    else:  # [0] the corrected image, [1:] one per symmetry
        channels = 1 + symmetry_count(tuple(window) if window else shape)

        def predict(v: np.ndarray, m: np.ndarray | None) -> np.ndarray:
            return predict_symmetries(model.module, model.cfg, v, device=model.device, mu_cm=m)
    if window:  # windows of the training matrix on the activity: the field of view changes nothing
        stack = blend_windows(predict, channels, model.cfg, x, window, mu)
    else:  # a card without the training matrix: the whole grid at once, as before [3.1]
        stack = predict(x, mu)
    total_in = float(image.data.sum(dtype=np.float64))
    corrected = None
    for c in range(channels):
        back = resample_activity(stack[c], affine, image.data.shape, image.affine)
        total_back = float(back.sum())
        if model.cfg.get("normalisation") == "sum" and total_back > 0:
            back *= total_in / total_back
        if c == 0:
            corrected = back.astype(np.float32)
        else:
            each_symmetry(back.astype(np.float32))
    facts = {"model_grid": {"shape": list(shape), "voxel_mm": list(voxel), "affine": affine.tolist(),
                            "window": list(window) if window else None},
             "ct_coverage_fraction": ct_coverage}
    return corrected, facts


def _total_mbq(image: Image) -> float:
    return float(image.data.sum(dtype=np.float64)) * image.voxel_volume_ml


@dataclass
class Outcome:
    """What :func:`apply_one` did: the sidecar it wrote, and its warnings (one line each)."""

    sidecar: dict
    warnings: list[str]


def apply_one(model: ApplyModel, spect_path: str | os.PathLike | Job, output: str | os.PathLike | None = None,
              ct_path: str | os.PathLike | None = None, say: Say = print, *, reconstruction: str | None = None,
              strict: bool = False, replace: bool = False, spect: SpectInput | None = None,
              warn: Say | None = None, uncertainty: bool = False,
              labels_path: str | os.PathLike | None = None) -> dict:
    """Correct one image and write it with its sidecar; returns the sidecar's content.

    ``spect_path`` is a planned :class:`~pvc_core.apply.plan.Job` (what ``dlpvc apply`` passes),
    or an input path with ``output`` (a NIfTI name, or a folder for a DICOM input; planned here
    alone, with ``uncertainty`` and ``labels_path`` as ``--uncertainty`` and ``--labels``). ``say``
    gets notes, ``warn`` warnings (default: ``say``), one line each, without a prefix. ``strict``
    refuses input outside the model's domain or of unknown reconstruction. ``replace``: the plan
    allows replacing an existing output. ``spect``: the input, already read.

    Raises :class:`InputError` (naming the file or option) before anything is written when the
    input, the CT or the output path is bad; a failure while writing leaves nothing behind.
    """
    t0 = time.perf_counter()
    warn = warn or say
    if isinstance(spect_path, Job):
        job = spect_path
    else:
        plan = plan_apply([os.fspath(spect_path)], [os.fspath(output)],
                          None if ct_path is None else [os.fspath(ct_path)], overwrite=replace,
                          uncertainty=uncertainty, labels=None if labels_path is None else [os.fspath(labels_path)])
        job = plan.jobs[0]
        if job.action != CORRECT:
            raise InputError("; ".join(job.reasons))
    src = job.input
    if model.takes_ct and job.ct is None:
        raise InputError(f"model {model.name} takes the CT as a second input channel; give --ct", "--ct")
    if not model.takes_ct and job.ct is not None:
        raise InputError(f"model {model.name} was trained without the CT channel; leave --ct out", "--ct")
    notes: list[str] = list(job.notes)
    warnings: list[str] = []
    for text in job.notes:
        say(text)

    def note(text: str) -> None:
        notes.append(text)
        say(text)

    def warning(text: str) -> None:
        warnings.append(text)
        warn(text)

    spect = spect or read_spect(src, note)
    ct = read_ct(job.ct) if job.ct is not None else None
    facts = input_facts(spect, reconstruction)
    status, reasons = check_domain(facts, model.domain)
    where = "outside the domain of" if status == OUTSIDE else "not known to lie inside the domain of"
    if status != INSIDE and strict:
        raise InputError(f"{where} model {model.name} (--strict refuses it): " + "; ".join(reasons), src)
    spread = None
    if job.uncertainty:  # the labels are checked before the network runs
        labels = read_labels(job.labels, spect.image, str(src)) if job.labels is not None else None
        spread = SymmetrySpread(spect.image.data.shape, spect.image.voxel_volume_ml, labels)
    t_correct = time.perf_counter()
    also = {} if spread is None else {"each_symmetry": spread.add}
    corrected, grid_facts = correct_image(model, spect.image, ct, str(job.ct), **also)
    t_correct = time.perf_counter() - t_correct
    if status != INSIDE:
        warning(f"{src}: {where} model {model.name}: " + "; ".join(reasons))
    out_image = Image(corrected, spect.image.affine)
    hollow = hollow_regions(spect.image.data, corrected, spect.image.affine)
    for region in hollow:
        warning(f"{src}: the output is hollow where the input is not (hot sphere come out as a shell?): "
                f"{region.describe()}")
    sidecar = {
        "format": SIDECAR_FORMAT,
        "status": "done",
        "research_use_only": RESEARCH_USE,
        "input": str(src), "input_kind": spect.kind, "input_sha256": content_digest(src),
        "output": str(job.output), "output_kind": job.output_kind,
        "ct": None if job.ct is None else str(job.ct),
        "model": {"name": model.name, "path": str(model.path), "sha256": model.sha256, **model.summary()},
        "input_total_mbq": spect.total_mbq, "output_total_mbq": _total_mbq(out_image),
        "input_voxel_mm": list(spect.image.voxel_size_mm), "input_shape": list(spect.image.data.shape),
        "input_facts": facts.as_dict(),
        "domain": {"status": status, "reasons": reasons},
        "hollow_regions": [r.as_dict() for r in hollow],
        **grid_facts,
        "device": str(model.device),
        "warnings": warnings, "notes": notes,
    }
    extra = None
    if spread is not None:
        extra = _uncertainty_outputs(job, model, spread, out_image, grid_facts, sidecar, t_correct)
        cost = extra.cost
        times = (f"{cost['network_runs_per_window']} network runs per window instead of 1: "
                 f"{cost['time_factor_of_the_network']:g}x the network time" if cost["time_factor_of_the_network"] > 1
                 else "the model's test-time augmentation runs them anyway: no extra network time")
        say(f"{src}: --uncertainty: corrected with each of {spread.n} symmetries ({times}; {t_correct:.1f} s in all) "
            f"-> {extra.paths.sd}")
    _write_outputs(job, out_image, spect, sidecar, t0, replace or job.replace, extra)
    return sidecar


@dataclass
class _Uncertainty:
    """The ``--uncertainty`` files of one image, ready to write."""

    paths: UncertaintyPaths
    sd: Image
    sd_sidecar: dict
    regions: list
    cost: dict


def _uncertainty_outputs(job: Job, model: ApplyModel, spread: SymmetrySpread, corrected: Image, grid_facts: dict,
                         sidecar: dict, seconds: float) -> _Uncertainty:
    """The SD image, its sidecar and the regions of ``spread``; adds their summary to ``sidecar``."""
    paths = job.uncertainty_files
    grid = grid_facts["model_grid"]
    sd = spread.sd()
    regions = spread.regions(corrected.data)
    cost = cost_facts(spread.n, bool(model.cfg.get("tta")), seconds)
    main = "their mean (the model's test-time augmentation)" if model.cfg.get("tta") else \
        "the model's plain prediction (the identity symmetry; the model does not use test-time augmentation)"
    facts = {"sd": str(paths.sd), "sd_sidecar": str(paths.sd_sidecar),
             "regions_csv": None if paths.regions is None else str(paths.regions),
             "labels": None if job.labels is None else str(job.labels),
             "labels_sha256": None if job.labels is None else content_digest(job.labels),
             "n_symmetries": spread.n,
             "corrected_image_is": main, "reading": SD_READING, "cost": cost,
             "regions": [r.as_dict() for r in regions]}
    sd_sidecar = {
        "format": SIDECAR_FORMAT,
        "derived": True, "image": "uncertainty_sd", "what": SD_WHAT, "unit": "MBq/mL",
        "research_use_only": RESEARCH_USE,
        "derived_from": {"corrected_image": str(job.output), "input": sidecar["input"],
                         "input_sha256": sidecar["input_sha256"], "sidecar": str(job.sidecar)},
        "model": sidecar["model"],
        **{k: v for k, v in facts.items() if k not in ("sd", "sd_sidecar")},
        "symmetries": symmetry_list(grid["window"] or grid["shape"]),
        "sd_max_mbq_ml": float(sd.max()),
    }
    sidecar["uncertainty"] = facts
    return _Uncertainty(paths, Image(sd, corrected.affine), sd_sidecar, regions, cost)


def _write_outputs(job: Job, image: Image, spect: SpectInput, sidecar: dict, t0: float, replace: bool,
                   extra: _Uncertainty | None = None) -> None:
    """Write the image, the ``--uncertainty`` files, then the image's sidecar, each whole or not at
    all; on failure remove what was written."""
    out = job.output
    written: list[Path] = []
    try:
        if job.output_kind == NIFTI:
            save_image(out, image.data, image.affine, "DL-PVC activity MBq/mL (research use only)", replace=replace)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(out, folder=True, replace=replace) as tmp:
                write_spect_series(spect.dicom, image.data, tmp, "DL-PVC (dlpvc)",
                                   comment=f"partial-volume corrected by dlpvc: {RESEARCH_USE}")
        written.append(out)
        if extra is not None:
            save_image(extra.paths.sd, extra.sd.data, extra.sd.affine,
                       f"DL-PVC SD over {extra.sd_sidecar['n_symmetries']} symmetries MBq/mL (research use only)",
                       replace=replace)
            written.append(extra.paths.sd)
            write_json(extra.paths.sd_sidecar, extra.sd_sidecar, replace=replace)
            written.append(extra.paths.sd_sidecar)
            if extra.paths.regions is not None:
                write_regions_csv(extra.paths.regions, extra.regions, replace=replace)
                written.append(extra.paths.regions)
        sidecar["seconds"] = round(time.perf_counter() - t0, 3)
        write_json(job.sidecar, sidecar, replace=replace)
    except BaseException:
        # an image without its sidecar is removed; once the sidecar is committed (a signal may land
        # while its folder is synced) all are whole and stay
        if written and not _sidecar_committed(job.sidecar, sidecar):
            for path in written:
                remove_path(path)
        raise


def _sidecar_committed(path: Path, content: dict) -> bool:
    """Whether ``path`` holds the sidecar ``content`` (this very write, committed)."""
    side = read_sidecar(path)
    return side is not None and all(side.get(k) == content.get(k) for k in ("input_sha256", "output", "seconds"))
