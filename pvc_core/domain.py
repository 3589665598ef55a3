"""The project's vocabulary, spelled once.

- A **reconstruction** is one of :data:`RECONSTRUCTIONS`: ``noRR`` (OSEM without resolution
  modelling, the paper's CASToR 10 x 2) or ``RR`` (OSEM with the collimator-detector response
  modelled, the paper's STIR 6 x 6).
- A **noise level** is ``n`` (Poisson noise) or ``nf`` (noise-free expected counts).
- A **dataset** is ``<reconstruction>_<noise level>``, e.g. ``RR_n`` (the paper's four datasets).
- A **PVC method** (the word "method" means this and nothing else) is what corrected an image:
  ``none`` (the reconstruction itself), ``iy_truth`` / ``iy_spect`` (iterative Yang with the true
  or a SPECT-derived mask), ``rl`` / ``vc`` (the mask-free deconvolutions Richardson-Lucy and
  reblurred Van Cittert), or ``dl:<model>`` (a trained network).
"""

from __future__ import annotations

RECONSTRUCTIONS = ("noRR", "RR")
NOISE_LEVELS = ("n", "nf")
DATASETS = tuple(f"{r}_{n}" for r in RECONSTRUCTIONS for n in NOISE_LEVELS)

#: Iterative-Yang masks: the ground truth (the paper's setting) and one from the SPECT image alone.
IY_MASKS = ("truth", "spect")
NO_PVC = "none"
#: Mask-free deconvolutions (PETPVC's RL and VC), the baselines that need no segmentation.
DECONVOLUTIONS = ("rl", "vc")
PVC_METHODS = (NO_PVC,) + tuple(f"iy_{m}" for m in IY_MASKS) + DECONVOLUTIONS
DL_PREFIX = "dl:"


def dataset_name(reconstruction: str, noise: str) -> str:
    """``'RR', 'n'`` -> ``'RR_n'``."""
    if reconstruction not in RECONSTRUCTIONS or noise not in NOISE_LEVELS:
        raise ValueError(f"unknown reconstruction {reconstruction!r} or noise level {noise!r}")
    return f"{reconstruction}_{noise}"


def dataset_parts(dataset: str) -> tuple[str, str]:
    """``'RR_n'`` -> ``('RR', 'n')``."""
    reconstruction, _, noise = dataset.partition("_")
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
    return reconstruction, noise


def dl_method(model: str) -> str:
    """PVC-method name of a trained model, e.g. ``dl:unet_RR_n_sum_full``."""
    return f"{DL_PREFIX}{model}"
