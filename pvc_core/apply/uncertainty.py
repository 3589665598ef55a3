"""``dlpvc apply --uncertainty``: where the correction is unsure, from the spread of its symmetries.

A SPECT acquisition with a 360-degree orbit, and the training data (augmented with them,
:mod:`pvc_core.training.augmentation`), are symmetric under the flips of array axes 0 and 2 and
the quarter turns in the axial plane: 16 orbit symmetries (8 for a non-square axial plane), the
test-time augmentations (TTA) of a model with ``tta``. A perfect network would give the same
correction for each of them; a trained one does not, and how much the corrections of one voxel
disagree says where the network is unsure.

With ``--uncertainty`` every window the network corrects is run once per symmetry
(:func:`predict_symmetries`: transformed, corrected, transformed back). The corrected image
written stays what ``apply`` writes without it (for a TTA model the mean of the 16, for another
one the plain prediction, which is the identity symmetry's). Each symmetry's correction alone is
blended, resampled back and total-conserved like the corrected image, and :class:`SymmetrySpread`
gathers, voxel by voxel, their standard deviation (population SD, divided by n) in MBq/mL, and,
with a label image, each region's total activity over the symmetries:

* ``<stem>_sd.nii.gz`` (float32, MBq/mL, the input's affine) with ``<stem>_sd.json``;
* ``<stem>_regions.csv`` (with ``--labels``): ``label, voxels, volume_ml, activity_mbq, sd_mbq,
  cv`` per label > 0: the corrected image's total (MBq), the SD of the 16 symmetries' totals and
  ``cv = sd_mbq / mean`` of those totals (empty where the mean is 0).

The spread is a lower bound on the error, not a calibrated confidence interval: the symmetries
share the network's bias (a hot sphere that every symmetry underestimates by 20 % has SD 0).

Cost: a model without TTA runs the network 16 times instead of once (16x the time); a TTA model
runs the 16 anyway, so only the resampling of each (seconds) is added.
"""

from __future__ import annotations

import csv
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pvc_core.errors import InputError
from pvc_core.io import Image, load_labels, require_same_grid
from pvc_core.io.atomic import atomic_path
from pvc_core.training.augmentation import inverse_symmetry, symmetries, symmetry
from pvc_core.training.normalisation import attenuation_input, input_scale, rescale_output

#: Columns of ``<stem>_regions.csv``, in this order.
REGION_COLUMNS = ("label", "voxels", "volume_ml", "activity_mbq", "sd_mbq", "cv")
#: What the SD image is, for its sidecar and NIfTI header.
SD_WHAT = ("voxel-wise standard deviation (population, divided by n) of the corrections with each orbit symmetry "
           "of the network input (flips of the model grid's array axes 0 and 2, quarter turns in its axial plane: "
           "the test-time augmentations), MBq/mL, on the input's grid")
#: How to read it, in the sidecar and docs/apply.md.
SD_READING = ("the spread of the symmetries is a lower bound on the error, not a calibrated confidence interval: "
              "an error that every symmetry shares (the network's bias) does not show")

__all__ = ["REGION_COLUMNS", "SD_WHAT", "SD_READING", "RegionSpread", "SymmetrySpread", "symmetry_count",
           "symmetry_list", "predict_symmetries", "read_labels", "write_regions_csv", "cost_facts"]


def symmetry_count(shape: tuple[int, ...]) -> int:
    """How many orbit symmetries an array of ``shape`` has (16 for a square axial plane, else 8)."""
    return len(symmetries(tuple(shape)))


def symmetry_list(shape: tuple[int, ...]) -> list[dict]:
    """The symmetries of ``shape`` in the order they are run, for a sidecar."""
    return [{"axial_quarter_turns": k, "flipped_axes": list(f)} for k, f in symmetries(tuple(shape))]


def predict_symmetries(module, model_cfg: dict, image: np.ndarray, device=None,
                       mu_cm: np.ndarray | None = None) -> np.ndarray:
    """``(1 + n, *image.shape)`` float32, MBq/mL: ``[0]`` exactly
    :func:`pvc_core.training.predict.predict_image`'s output for ``image`` (MBq/mL) and ``[1 + k]``
    the output with symmetry ``k`` of :func:`~pvc_core.training.augmentation.symmetries` alone
    (input transformed, network, output transformed back, un-normalised as ``predict_image`` does).

    Each symmetry's network run is made once: ``[0]`` is their mean for a model with ``tta``
    (the same arithmetic as ``predict_image``), else the identity symmetry's (``[1]``), which is
    the plain prediction. ``mu_cm``: the attenuation map for a model with ``attenuation_channel``.
    """
    # lazy: torch and the network (~1.2 s) load only when an image is corrected
    from pvc_core.training.predict import predict_normalised, resolve_device, takes_attenuation

    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3:
        raise InputError(f"image must be a 3-D volume, got shape {image.shape}")
    if takes_attenuation(model_cfg) != (mu_cm is not None):
        raise InputError("the attenuation map (CT channel) must be given exactly for a model that takes it")
    mu = None if mu_cm is None else attenuation_input(mu_cm)
    if mu is not None and mu.shape != image.shape:
        raise InputError(f"attenuation map of shape {mu.shape} differs from the image's {image.shape}")
    group = symmetries(image.shape)
    out = np.zeros((1 + len(group), *image.shape), np.float32)
    scale = input_scale(image)
    if scale <= 0:
        return out
    dev = resolve_device(device) if device is not None else next(module.parameters()).device
    was_training = module.training
    module.to(dev).eval()
    x = image / scale
    acc = np.zeros(x.shape, np.float64)
    try:
        for n, (turns, flips) in enumerate(group):
            xs = np.ascontiguousarray(symmetry(x, turns, flips))
            ms = None if mu is None else np.ascontiguousarray(symmetry(mu, turns, flips))
            # contiguous, so that every symmetry's total is summed in one order: an equivariant
            # network gives bit-identical corrections (SD exactly 0)
            y = np.ascontiguousarray(inverse_symmetry(predict_normalised(module, model_cfg, xs, dev, mu=ms),
                                                      turns, flips))
            acc += y
            out[1 + n] = rescale_output(y, scale, image, model_cfg["normalisation"])
    finally:
        module.train(was_training)
    if model_cfg.get("tta"):
        out[0] = rescale_output((acc / len(group)).astype(np.float32), scale, image, model_cfg["normalisation"])
    else:
        out[0] = out[1]
    return out


@dataclass(frozen=True)
class RegionSpread:
    """One label's row of ``<stem>_regions.csv``: the corrected image's total activity in the region
    and the spread of the symmetries' totals."""

    label: int
    voxels: int
    volume_ml: float
    activity_mbq: float                # total of the corrected image (the written one)
    mean_mbq: float                    # mean of the symmetries' totals
    sd_mbq: float                      # their SD (population, divided by n)
    cv: float | None                   # sd_mbq / mean_mbq; None where the mean is 0

    def as_dict(self) -> dict:
        return asdict(self)


class SymmetrySpread:
    """The running mean and SD (Welford, float64) of the symmetries' corrections on the input grid,
    and with ``labels`` (integers on the same grid, 0 = background) each region's total per symmetry.

    Identical corrections give an SD of exactly 0 (each update adds ``0 * 0``).
    """

    def __init__(self, shape: tuple[int, ...], voxel_volume_ml: float, labels: np.ndarray | None = None) -> None:
        self.shape = tuple(shape)
        self.voxel_volume_ml = float(voxel_volume_ml)
        self.n = 0
        self._mean = np.zeros(self.shape, np.float64)
        self._m2 = np.zeros(self.shape, np.float64)
        self._totals: list[np.ndarray] = []
        self._values = self._index = None
        if labels is not None:
            if tuple(labels.shape) != self.shape:
                raise InputError(f"label image of shape {labels.shape} differs from the image's {self.shape}")
            self._values, index = np.unique(labels, return_inverse=True)
            self._index = index.ravel()

    def add(self, image: np.ndarray) -> None:
        """Take one symmetry's correction (MBq/mL, on the input grid)."""
        x = np.asarray(image, dtype=np.float64)
        if x.shape != self.shape:
            raise ValueError(f"correction of shape {x.shape} differs from {self.shape}")
        self.n += 1
        delta = x - self._mean
        self._mean += delta / self.n
        self._m2 += delta * (x - self._mean)
        if self._index is not None:
            self._totals.append(self._region_totals(x))

    def sd(self) -> np.ndarray:
        """Voxel-wise SD over the symmetries taken (population: divided by n), float32, MBq/mL."""
        if self.n == 0:
            raise ValueError("no symmetry's correction was taken")
        return np.sqrt(np.maximum(self._m2, 0.0) / self.n).astype(np.float32)

    def regions(self, corrected: np.ndarray) -> list[RegionSpread]:
        """Per label > 0: voxels, volume (mL), the total activity of ``corrected`` (MBq) and the
        mean, SD and CV of the symmetries' totals."""
        if self._index is None:
            return []
        activity = self._region_totals(np.asarray(corrected, dtype=np.float64))
        totals = np.stack(self._totals)                        # (n, labels), MBq
        counts = np.bincount(self._index, minlength=len(self._values))
        rows = []
        for i, label in enumerate(self._values):
            if label <= 0:
                continue
            mean, sd = float(totals[:, i].mean()), float(totals[:, i].std())
            rows.append(RegionSpread(int(label), int(counts[i]), float(counts[i]) * self.voxel_volume_ml,
                                     float(activity[i]), mean, sd, sd / mean if mean > 0 else None))
        return rows

    def _region_totals(self, x: np.ndarray) -> np.ndarray:
        """Total activity (MBq) of ``x`` (MBq/mL) in each label, in the order of ``self._values``."""
        return np.bincount(self._index, weights=x.ravel(), minlength=len(self._values)) * self.voxel_volume_ml


def read_labels(path: str | os.PathLike, image: Image, image_name: str) -> np.ndarray:
    """The label image at ``path`` (``--labels``: NIfTI, integers >= 0) as an array on ``image``'s grid.

    Raises :class:`InputError` naming the file for an unreadable file, values that are not labels,
    a grid other than ``image``'s (``image_name``: the input, for the message) or no label > 0.
    """
    labels = load_labels(path, name="label image")
    require_same_grid(labels, str(path), image, image_name)
    if not (labels.data > 0).any():
        raise InputError("label image holds no label > 0 (only the background 0); give the regions as 1, 2, ...",
                         path)
    return labels.data


def write_regions_csv(path: Path, regions: list[RegionSpread], replace: bool = False) -> None:
    """Write ``<stem>_regions.csv`` (:data:`REGION_COLUMNS`), whole or not at all."""
    with atomic_path(path, replace=replace) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(REGION_COLUMNS)
        for r in regions:
            writer.writerow([r.label, r.voxels, repr(r.volume_ml), repr(r.activity_mbq), repr(r.sd_mbq),
                             "" if r.cv is None else repr(r.cv)])


def cost_facts(n_symmetries: int, tta: bool, seconds: float) -> dict:
    """What ``--uncertainty`` cost: network runs per window with and without it, and the time."""
    without = n_symmetries if tta else 1
    return {"network_runs_per_window": n_symmetries, "network_runs_per_window_without_uncertainty": without,
            "time_factor_of_the_network": n_symmetries / without, "correction_seconds": round(seconds, 3)}
