"""Label maps for iterative Yang: from the ground truth, or from the SPECT image alone.

Both functions return an int32 label map of the input's shape in which 0 is the background
region (every voxel outside the foreground; a region like any other in IY) and 1, 2, ... are
foreground regions. Pass it straight to :func:`pvc_core.pvc.iterative_yang` (or to PETPVC through
``pvc_make4d``).

Which mask the paper used: "10 iterations of IY-PVC were performed using the PETPVC toolbox with
spatial resolution and ground-truth activity mask as input" (Leube et al. 2024), i.e. a binary
mask of the voxels with true activity (label 1) against the rest (label 0). That is
``truth_labels(truth)``'s default. The paper itself calls this a bias in favour of IY, because no
clinical user has it; ``threshold_labels`` is the realistic alternative, made from the SPECT image.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from pvc_core.errors import InputError
from pvc_core.pvc._checks import image_3d

_FULL_CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)  # 26-connectivity
_SPLITS = ("activity", "component", "level")


def truth_labels(truth: np.ndarray, *, split: str = "activity", threshold: float = 0.0,
                 max_regions: int = 255) -> np.ndarray:
    """Label map from the true activity distribution (background label 0).

    Parameters
    ----------
    truth:
        3-D true activity (e.g. MBq/mL) on the image grid.
    split:
        How the active voxels (``truth > threshold``) become regions:

        - ``"activity"`` (default, the paper's setting): all active voxels are label 1;
        - ``"component"``: each 26-connected component of active voxels is its own label 1..K, in
          ``scipy.ndimage.label`` order, so separate lesions get separate means;
        - ``"level"``: each distinct activity value is its own label 1..K in ascending order of
          value (exact regions for piecewise-constant phantoms such as the validation phantoms).
    threshold:
        Voxels with ``truth > threshold`` are active (default 0: any activity).
    max_regions:
        Upper bound on K for ``"component"`` and ``"level"``; more raises :class:`InputError`
        (a continuous truth would otherwise give one region per voxel value).

    Returns
    -------
    int32 label map, 0 = background (inactive voxels).
    """
    t = image_3d(truth, "truth")
    if split not in _SPLITS:
        raise InputError(f"split must be one of {', '.join(_SPLITS)}, got {split!r}")
    active = t > float(threshold)
    if not active.any():
        raise InputError(f"truth has no voxel above {float(threshold):g}; nothing to label")
    labels = np.zeros(t.shape, dtype=np.int32)
    if split == "activity":
        labels[active] = 1
        return labels
    if split == "component":
        comp, count = ndimage.label(active, structure=_FULL_CONNECTIVITY)
        _check_count(count, max_regions, "connected components", "split='activity'")
        return comp.astype(np.int32)
    values, inverse = np.unique(t[active], return_inverse=True)
    _check_count(values.size, max_regions, "distinct activity values", "split='activity' or 'component'")
    labels[active] = inverse.astype(np.int32) + 1
    return labels


def threshold_labels(image: np.ndarray, fraction: float = 0.4, *, local: bool = False,
                     floor_fraction: float = 0.1, separate: bool = False, min_voxels: int = 1) -> np.ndarray:
    """Label map from the SPECT image alone: a fixed-fraction-of-maximum threshold (background 0).

    Global (default): foreground = ``image >= fraction * max(image)``, the common "40 % of the
    maximum" segmentation. Local (``local=True``): candidate blobs are the 26-connected components of
    ``image >= floor_fraction * max(image)``; within each blob, foreground = voxels ``>= fraction``
    times that blob's own maximum, so a faint lesion is not lost beside a hot one.

    Parameters
    ----------
    image:
        3-D reconstructed activity (e.g. MBq/mL).
    fraction:
        Threshold as a fraction of the (global or blob) maximum, 0 < fraction <= 1.
    local:
        Threshold each blob at its own maximum instead of the global one.
    floor_fraction:
        With ``local``: the fraction of the global maximum that delimits blobs (0 < floor <= fraction).
    separate:
        Give each 26-connected foreground component its own label 1..K (default: all foreground 1).
    min_voxels:
        Foreground components with fewer voxels are dropped to background (noise specks).

    Returns
    -------
    int32 label map, 0 = background.
    """
    img = image_3d(image, "image")
    fraction = float(fraction)
    if not 0.0 < fraction <= 1.0:
        raise InputError(f"fraction must be in (0, 1], got {fraction:g}")
    if int(min_voxels) < 1:
        raise InputError(f"min_voxels must be >= 1, got {min_voxels!r}")
    peak = float(img.max())
    if peak <= 0:
        raise InputError("image has no positive voxel; cannot threshold at a fraction of its maximum")
    if not local:
        fg = img >= fraction * peak
    else:
        floor = float(floor_fraction)
        if not 0.0 < floor <= fraction:
            raise InputError(f"floor_fraction must be in (0, fraction={fraction:g}], got {floor:g}")
        blobs, count = ndimage.label(img >= floor * peak, structure=_FULL_CONNECTIVITY)
        blob_max = np.asarray(ndimage.maximum(img, labels=blobs, index=np.arange(1, count + 1)), dtype=np.float32)
        cutoff = np.concatenate([[np.inf], fraction * blob_max]).astype(np.float32)
        fg = img >= cutoff[blobs]
    comp, count = ndimage.label(fg, structure=_FULL_CONNECTIVITY)
    sizes = np.bincount(comp.ravel(), minlength=count + 1)
    keep = sizes >= int(min_voxels)
    keep[0] = False
    if not keep.any():
        raise InputError(f"no foreground component with >= {int(min_voxels)} voxels at fraction {fraction:g}")
    if separate:
        new_id = np.zeros(count + 1, dtype=np.int32)
        new_id[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
        return new_id[comp]
    return keep[comp].astype(np.int32)


def _check_count(count: int, max_regions: int, what: str, hint: str) -> None:
    if count > int(max_regions):
        raise InputError(f"truth has {count} {what}, more than max_regions={int(max_regions)}; use {hint} "
                         f"or raise max_regions")
