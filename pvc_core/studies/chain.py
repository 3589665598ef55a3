"""The chain a study's phantom goes through: acquisition and reconstruction as the cases', then
the PVC methods the paper compares (no PVC, iterative Yang with the true and a SPECT-derived
mask, DL-PVC with the run's default model).

The acquisition, noise and OSEM are the one acquisition chain's
(:class:`pvc_core.spect.acquisition.AcquisitionChain`) with the run's camera, grid and the default
model's reconstruction and calibration factor, so a study's image is what a test case of that
dataset would be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pvc_core.domain import NO_PVC, dataset_parts
from pvc_core.io import read_json
from pvc_core.pvc import iterative_yang, threshold_labels, truth_labels
from pvc_core.specs import Settings
from pvc_core.spect.acquisition import AcquisitionChain, NoiseSeed
from pvc_core.training import load_model, predict_image
from pvc_core.training.predict import takes_attenuation

#: The methods of a study, in display order: no PVC, IY (true mask), IY (SPECT mask), DL-PVC.
STUDY_METHODS = (NO_PVC, "iy_truth", "iy_spect", "dl")

#: Display names of :data:`STUDY_METHODS`.
STUDY_METHOD_LABELS = {NO_PVC: "no PVC", "iy_truth": "IY-PVC (true mask)", "iy_spect": "IY-PVC (SPECT mask)",
                       "dl": "DL-PVC"}


@dataclass
class StudyChain:
    """Acquire, reconstruct and correct a study phantom like a test case of ``dataset``.

    ``module`` and ``model_cfg``: the default model (:func:`pvc_core.training.load_model`) with
    its inference keys applied; ``fwhm_mm``: the matched-filter FWHM of the reconstruction (IY's
    PSF); ``calibration_factor``: the reconstruction's calibration (images are divided by it).
    """

    settings: Settings
    dataset: str
    calibration_factor: float
    fwhm_mm: float
    module: Any
    model_cfg: dict

    @classmethod
    def for_run(cls, settings: Settings, model_path: str, inference: dict, resolution_path: str,
                calibration_path: str) -> "StudyChain":
        """The chain of a run: its default model (``model_path`` with its ``inference`` keys), the
        resolution and calibration files of that model's reconstruction."""
        module, cfg = load_model(model_path, device="auto")
        cfg = {**cfg, **dict(inference)}
        return cls(settings, cfg["dataset"], float(read_json(calibration_path)["factor"]),
                   float(read_json(resolution_path)["fwhm_mm"]), module, cfg)

    @property
    def voxel_mm(self) -> float:
        return float(self.settings.grid.recon_voxel_mm)

    def acquire(self, activity_sim_mbq_ml: np.ndarray, mu_sim_per_cm: np.ndarray, stream: str,
                index: int) -> tuple[np.ndarray, np.ndarray]:
        """(reconstruction in MBq/mL, mu in 1/cm), both on the reconstruction grid, of a phantom
        on the simulation grid; the Poisson noise (noisy datasets) comes from
        ``rng_for(seed, index, stream)``, so every study image is reproducible from the run's seed."""
        s = self.settings
        reconstruction, noise = dataset_parts(self.dataset)
        chain = AcquisitionChain(s.camera, s.grid, (s.reconstructions[reconstruction],))
        acquired = chain.acquire(activity_sim_mbq_ml, mu_sim_per_cm, NoiseSeed(s.seed, index, stream),
                                 calibration={reconstruction: self.calibration_factor}, noise_levels=(noise,))
        return acquired.images[self.dataset], acquired.mu_recon_per_cm

    def correct(self, image: np.ndarray, truth: np.ndarray, mu_per_cm: np.ndarray,
                methods: tuple[str, ...] = STUDY_METHODS) -> dict[str, np.ndarray]:
        """The ``methods`` (of :data:`STUDY_METHODS`) applied to ``image`` (MBq/mL): the truth
        gives IY its mask (``iy_truth``); ``iy_spect`` thresholds the image itself at 40 % of its
        maximum; ``dl`` is the default model."""
        vox = (self.voxel_mm,) * 3
        iters = self.settings.pvc.iy_iterations
        steps = {
            NO_PVC: lambda: image,
            "iy_truth": lambda: iterative_yang(image, truth_labels(truth), self.fwhm_mm, vox, iterations=iters),
            "iy_spect": lambda: iterative_yang(image, threshold_labels(image), self.fwhm_mm, vox, iterations=iters),
            "dl": lambda: predict_image(self.module, self.model_cfg, image,
                                        mu_cm=mu_per_cm if takes_attenuation(self.model_cfg) else None),
        }
        return {m: steps[m]() for m in methods}
