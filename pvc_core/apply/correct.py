"""Correct one SPECT image: read, check, resample to the model's grid, correct, resample back, write.

Steps of :func:`apply_one` (each image independent; a bad one never stops the others):

1. **Read** a NIfTI file (values in MBq/mL, the unit of every dlpvc image) or a DICOM file or
   folder (:mod:`pvc_core.io.dicom`: NM or PT, rescale applied, Bq/mL converted to MBq/mL; counts
   refused). Tiny negatives of OSEM (>= -1e-6 x max) are set to 0 with a note; an image whose
   negative activity exceeds :data:`NEGATIVE_MASS_LIMIT` of its positive activity, or without any
   positive voxel, is refused; smaller negatives are set to 0 with a note saying how much
   activity that removed.
2. **Resample** (activity-conserving, :func:`pvc_core.geometry.resample.resample_activity`) onto
   the model's grid (:mod:`pvc_core.apply.model_grid`): the training voxel size and orientation.
3. **Correct** with the network (:func:`pvc_core.training.predict.predict_image`); a model with
   the CT channel gets the CT as mu at 208 keV on the same grid (:mod:`pvc_core.apply.ct`).
4. **Resample back** onto the input grid and, for a total-conserving (``sum``) model, scale the
   result so that its total activity equals the input's (the model grid may extend past the input
   box by less than a voxel; what the network put there is folded back by this scale): the output
   total equals the input total to float rounding.
5. **Write** the output with the input's affine: NIfTI (``.nii``/``.nii.gz``, MBq/mL), or a DICOM
   series in Bq/mL beside a DICOM input (:func:`pvc_core.io.dicom.write_spect_series`), and a JSON
   sidecar. Output and sidecar are written to temporary names and renamed, so a failure leaves
   nothing behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from pvc_core.apply.ct import ct_mu_on_grid
from pvc_core.apply.model import ApplyModel
from pvc_core.apply.model_grid import model_grid
from pvc_core.errors import InputError
from pvc_core.geometry.resample import resample_activity
from pvc_core.io import Image, load_image, require_nifti_output, require_output_folder, save_image, write_json
from pvc_core.io.nifti import TINY_NEGATIVE_FRACTION
from pvc_core.io.outputs import is_nifti_name, nifti_stem

#: Negative activity (sum of negative voxels) above this fraction of the positive activity is refused.
NEGATIVE_MASS_LIMIT = 0.01
#: Relative difference of voxel size above which the input is flagged as unlike the training data.
VOXEL_TOLERANCE = 0.05
#: Sidecar format identifier.
SIDECAR_FORMAT = "dlpvc-apply"

Say = Callable[[str], object]

__all__ = ["NEGATIVE_MASS_LIMIT", "VOXEL_TOLERANCE", "SpectInput", "OutputPlan", "read_spect", "read_ct",
           "plan_output", "correct_image", "apply_one", "sidecar_path"]


@dataclass
class SpectInput:
    """A SPECT image in MBq/mL with its affine, where it came from, and what its header says."""

    image: Image
    path: Path
    kind: str                          # "nifti" or "dicom"
    dicom: object | None = None        # pvc_core.io.dicom.DicomSeries for a DICOM input
    reconstruction: dict | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class OutputPlan:
    """Where the corrected image goes: a NIfTI file or a DICOM folder, and its sidecar."""

    path: Path
    kind: str                          # "nifti" or "dicom"
    sidecar: Path


def _reconstruction_of_nifti(path: Path) -> dict | None:
    """The ``reconstruction`` entry of a JSON sidecar beside a NIfTI input (dlpvc writes one)."""
    side = path.with_name(nifti_stem(path) + ".json")
    if not side.is_file():
        return None
    try:
        data = json.loads(side.read_text())
    except (OSError, ValueError):
        return None
    rec = data.get("reconstruction") if isinstance(data, dict) else None
    return rec if isinstance(rec, dict) else None


def _reconstruction_of_dicom(series) -> dict | None:
    """Iterations and subsets parsed from DICOM's ReconstructionMethod (0054,1103), e.g. 'OSEM 6i6s'."""
    ds = series.datasets[0]
    text = str(getattr(ds, "ReconstructionMethod", "") or "")
    if not text:
        return None
    out: dict = {"method_text": text}
    it = re.search(r"(\d+)\s*i", text, re.I)
    sub = re.search(r"(\d+)\s*s", text, re.I)
    if it:
        out["iterations"] = int(it.group(1))
    if sub:
        out["subsets"] = int(sub.group(1))
    return out


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
    """Read a SPECT image (NIfTI in MBq/mL, or DICOM NM/PT in Bq/mL) and check it (see the module docstring)."""
    from pvc_core.io.dicom import is_dicom_path, read_spect_dicom

    path = Path(path)
    if not os.fspath(path) or not path.exists():
        raise InputError("file or folder not found", path)
    if path.is_file() and not is_nifti_name(path) and not is_dicom_path(path):
        raise InputError("neither NIfTI (.nii, .nii.gz) nor DICOM", path)
    if is_nifti_name(path):
        img = load_image(path, name="SPECT image")
        data = _check_activity(img.data, path, say)
        return SpectInput(Image(data, img.affine), path, "nifti", reconstruction=_reconstruction_of_nifti(path))
    series = read_spect_dicom(path)
    data = _check_activity(series.image.data.astype(np.float32), path, say)
    return SpectInput(Image(data, series.image.affine), path, "dicom", dicom=series,
                      reconstruction=_reconstruction_of_dicom(series))


def read_ct(path: str | os.PathLike) -> Image:
    """A CT in HU (NIfTI or DICOM CT series) with its affine."""
    from pvc_core.io.dicom import is_dicom_path, read_ct_dicom

    path = Path(path)
    if not path.exists():
        raise InputError("CT file or folder not found", path)
    if is_nifti_name(path):
        return load_image(path, name="CT")
    if is_dicom_path(path):
        return read_ct_dicom(path).image
    raise InputError("CT is neither NIfTI (.nii, .nii.gz) nor DICOM", path)


def sidecar_path(output: Path, kind: str) -> Path:
    """``out.nii.gz`` -> ``out.json``; a DICOM folder ``out/`` -> ``out.json`` beside it."""
    if kind == "nifti":
        return output.with_name(nifti_stem(output) + ".json")
    return output.with_name(output.name + ".json")


def plan_output(spect_path: str | os.PathLike, output: str | os.PathLike, input_is_dicom: bool) -> OutputPlan:
    """Check an output path before any computation: NIfTI for a ``.nii``/``.nii.gz`` name, else a
    new DICOM folder (only for a DICOM input). Refuses the input itself and unwritable folders."""
    out = Path(output)
    src = Path(spect_path)
    if os.fspath(output) and out.resolve() == src.resolve():  # hard links: require_nifti_output's samefile
        raise InputError(f"{out} is the input; writing would replace it, give another name", "--output")
    if is_nifti_name(out) or not input_is_dicom:
        path = require_nifti_output(out, "--output", inputs=[src])
        return OutputPlan(path, "nifti", sidecar_path(path, "nifti"))
    if src.is_dir() and src.resolve() in out.resolve().parents:
        raise InputError(f"{out} lies inside the input DICOM folder {src}; give a folder elsewhere", "--output")
    path = require_output_folder(out, "--output")
    return OutputPlan(path, "dicom", sidecar_path(path, "dicom"))


def _voxel_warnings(spect: SpectInput, model: ApplyModel) -> list[str]:
    """What differs between the input and the data the model was trained on (one line each)."""
    out = []
    tf = model.trained_for
    want = tf.get("voxel_mm")
    have = spect.image.voxel_size_mm
    if want:
        rel = max(abs(h - w) / w for h, w in zip(have, want))
        if rel > VOXEL_TOLERANCE:
            out.append(f"voxel size {'x'.join(f'{v:.2f}' for v in have)} mm differs from the model's training voxels "
                       f"{'x'.join(f'{v:.2f}' for v in want)} mm: the image is resampled, but the resolution the "
                       "network learned to undo is that of its training reconstruction")
    rec_want = tf.get("reconstruction") or {}
    rec = spect.reconstruction
    if rec_want and rec:
        for key in ("iterations", "subsets"):
            if key in rec and key in rec_want and int(rec[key]) != int(rec_want[key]):
                out.append(f"reconstruction {key} {rec[key]} differs from the model's training reconstruction "
                           f"({rec_want.get('method', 'OSEM')} {rec_want.get('iterations')} iterations x "
                           f"{rec_want.get('subsets')} subsets)")
    return out


def correct_image(model: ApplyModel, image: Image, ct: Image | None = None, ct_source: str = "--ct") -> tuple[np.ndarray, dict]:
    """The corrected image (float32, MBq/mL) on ``image``'s grid, and facts for the sidecar."""
    from pvc_core.training.predict import predict_image

    voxel = tuple(model.trained_for.get("voxel_mm") or image.voxel_size_mm)
    shape, affine = model_grid(image.data.shape, image.affine, voxel)
    x = resample_activity(image.data, image.affine, shape, affine).astype(np.float32)
    mu, ct_coverage = None, None
    if model.takes_ct:
        mu, ct_coverage = ct_mu_on_grid(ct, shape, affine, ct_source)
    corrected = predict_image(model.module, model.cfg, x, device=model.device, mu_cm=mu)
    back = resample_activity(corrected, affine, image.data.shape, image.affine)
    total_in = float(image.data.sum(dtype=np.float64))
    total_back = float(back.sum())
    if model.cfg.get("normalisation") == "sum" and total_back > 0:
        back *= total_in / total_back
    facts = {"model_grid": {"shape": list(shape), "voxel_mm": list(voxel), "affine": affine.tolist()},
             "ct_coverage_fraction": ct_coverage}
    return back.astype(np.float32), facts


def _total_mbq(image: Image) -> float:
    return float(image.data.sum(dtype=np.float64)) * image.voxel_volume_ml


def apply_one(model: ApplyModel, spect_path: str | os.PathLike, output: str | os.PathLike,
              ct_path: str | os.PathLike | None = None, say: Say = print) -> dict:
    """Correct one image and write it with its sidecar; returns the sidecar's content.

    Raises :class:`InputError` (naming the file or option) before anything is written when the
    input, the CT or the output path is bad; a failure while writing removes what was written.
    """
    t0 = time.perf_counter()
    from pvc_core.io.dicom import is_dicom_path

    src = Path(spect_path)
    if not src.exists():
        raise InputError("file or folder not found", src)
    if model.takes_ct and ct_path is None:
        raise InputError(f"model {model.name} takes the CT as a second input channel; give --ct", "--ct")
    if not model.takes_ct and ct_path is not None:
        raise InputError(f"model {model.name} was trained without the CT channel; leave --ct out", "--ct")
    plan = plan_output(src, output, is_dicom_path(src))
    notes: list[str] = []

    def note(text: str) -> None:
        notes.append(text)
        say(text)

    spect = read_spect(src, note)
    ct = read_ct(ct_path) if ct_path is not None else None
    warnings = _voxel_warnings(spect, model)
    for w in warnings:
        say(f"WARNING: {src}: {w}")
    corrected, facts = correct_image(model, spect.image, ct, str(ct_path))
    out_image = Image(corrected, spect.image.affine)
    sidecar = {
        "format": SIDECAR_FORMAT,
        "input": str(src), "input_kind": spect.kind, "output": str(plan.path), "output_kind": plan.kind,
        "ct": None if ct_path is None else str(ct_path),
        "model": {"name": model.name, "path": str(model.path), "sha256": model.sha256, **model.summary()},
        "input_total_mbq": _total_mbq(spect.image), "output_total_mbq": _total_mbq(out_image),
        "input_voxel_mm": list(spect.image.voxel_size_mm), "input_shape": list(spect.image.data.shape),
        "input_reconstruction": spect.reconstruction,
        **facts,
        "device": str(model.device),
        "warnings": warnings, "notes": notes,
    }
    _write_outputs(plan, out_image, spect, sidecar, t0)
    return sidecar


def _write_outputs(plan: OutputPlan, image: Image, spect: SpectInput, sidecar: dict, t0: float) -> None:
    """Write the image (atomically) and then the sidecar; on failure remove both."""
    from pvc_core.io.dicom import write_spect_series

    written: list[Path] = []
    try:
        if plan.kind == "nifti":
            save_image(plan.path, image.data, image.affine, "DL-PVC activity MBq/mL")
            written.append(plan.path)
        else:
            tmp = Path(tempfile.mkdtemp(prefix=f".{plan.path.name}.", dir=plan.path.parent if plan.path.parent.exists()
                                        else None))
            try:
                write_spect_series(spect.dicom, image.data, tmp, "DL-PVC (dlpvc)")
                if plan.path.exists():
                    plan.path.rmdir()  # checked empty by plan_output
                plan.path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, plan.path)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
            written.append(plan.path)
        sidecar["seconds"] = round(time.perf_counter() - t0, 3)
        write_json(plan.sidecar, sidecar)
    except BaseException:
        for path in written:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink()
        if plan.sidecar.exists():
            plan.sidecar.unlink()
        raise
