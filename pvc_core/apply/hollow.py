"""The hollow guard: hot regions that the network turned into a shell (rim brighter than centre).

A network trained to undo partial-volume blur can overshoot at the edge of a hot object and
undershoot inside it, so that a blurred solid sphere comes out as a hollow shell. This module finds
such regions by comparing the input image with the corrected output (both MBq/mL on one grid):

1. **Hot regions of the input.** Local maxima of the input (:data:`PEAK_NEIGHBOURHOOD`-wide
   maximum filter, value >= :data:`PEAK_FRACTION` x the global maximum, so low background noise
   has none) are taken from the highest down. A peak's region is the component of the voxels >=
   half its value that are 26-connected to it, with the cavities it encloses (6-connected, not
   open to the outside or the image edge) filled: the cold centre of a necrotic lesion belongs
   to the lesion. A peak whose component reaches the region
   of a higher peak belongs to that peak and has no region of its own: every peak of a hot object,
   and the background around it, merge into its highest. Regions of fewer than ``min_voxels``
   voxels are not judged and absorb nothing (a hot voxel on a lesion's shoulder does not hide
   the lesion).
2. **Core and shell.** The core is the region eroded ``core_depth_voxels`` times by the
   6-neighbour cross (voxels whose city-block distance to the region's outside is more than
   ``core_depth_voxels``; voxels on the edge of the image count as the boundary); the shell is
   the rest of the region, its outer ``core_depth_voxels`` layers. A region with an empty core is
   not judged.
3. **Verdict.** An image is hollow on a region when mean(core) < ``hollow_ratio`` x mean(shell)
   (and mean(shell) > 0). A region is flagged when the output is hollow there and the input is
   not: an object hollow in the input (a necrotic lesion) is never flagged.

Hand-written (numpy and ``scipy.ndimage`` only): no library kept by the project checks a
correction for this artefact. Each region is grown in a box around its peak, doubled until the
region no longer reaches the box's inner faces: tens of milliseconds for ten blurred spheres in
128^3 voxels, a few hundred with a noisy body background around them. Zero-mean noise reaching
:data:`PEAK_FRACTION` of the maximum (not a ``dlpvc apply`` input: it refuses that much negative
activity) has thousands of peaks whose half-maximum components percolate: seconds, and regions
of noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pvc_core.errors import InputError

__all__ = ["PEAK_FRACTION", "PEAK_NEIGHBOURHOOD", "HollowRegion", "hollow_regions"]

#: Local maxima below this fraction of the input's global maximum seed no region.
PEAK_FRACTION = 0.05
#: Width (voxels) of the cube in which a peak is the maximum (3: its 26 neighbours).
PEAK_NEIGHBOURHOOD = 3
#: Voxels of a region: 26-connectivity.
_FULL = np.ones((3, 3, 3), bool)
#: Erosion of a region into its core: the 6-neighbour cross.
_CROSS = ndimage.generate_binary_structure(3, 1)
#: Half width (voxels) of the first box a region is grown in (noise peaks stop there).
_FIRST_HALF_WIDTH = 2


@dataclass(frozen=True)
class HollowRegion:
    """A hot region of the input that the output made hollow.

    ``centre_voxel`` is the region's peak (the local maximum of the input that grew it, its
    maximum but for hot specks too small to be regions; on a flat top, the first such voxel in C
    order), ``centre_mm`` its world position (mm, through the affine); ``voxels`` counts
    the region; the ratios are mean(core) / mean(shell) of the input and the output on it.
    """

    centre_voxel: tuple[int, int, int]
    centre_mm: tuple[float, float, float]
    voxels: int
    input_core_to_shell: float
    output_core_to_shell: float

    def describe(self) -> str:
        """One line for a user, e.g. ``hot region at (x, y, z) = (...) mm (voxel i, j, k; n voxels): ...``."""
        x, y, z = self.centre_mm
        i, j, k = self.centre_voxel
        return (f"hot region at (x, y, z) = ({x:.1f}, {y:.1f}, {z:.1f}) mm (voxel {i}, {j}, {k}; "
                f"{self.voxels} voxels): output core/shell {self.output_core_to_shell:.2f}, "
                f"input {self.input_core_to_shell:.2f}")

    def as_dict(self) -> dict[str, object]:
        """Plain ints, floats and lists for a JSON sidecar."""
        return {"centre_voxel": [int(v) for v in self.centre_voxel],
                "centre_mm": [float(v) for v in self.centre_mm],
                "voxels": int(self.voxels),
                "input_core_to_shell": float(self.input_core_to_shell),
                "output_core_to_shell": float(self.output_core_to_shell)}


@dataclass(frozen=True)
class _Region:
    """A judged hot region: its peak, the box it lies in and its core and shell masks in that box."""

    peak: tuple[int, int, int]
    box: tuple[slice, slice, slice]
    core: np.ndarray
    shell: np.ndarray

    @property
    def voxels(self) -> int:
        return int(np.count_nonzero(self.core) + np.count_nonzero(self.shell))


def hollow_regions(input_mbq_ml: np.ndarray, output_mbq_ml: np.ndarray, affine: np.ndarray, *,
                   min_voxels: int = 27, core_depth_voxels: int = 2,
                   hollow_ratio: float = 0.8) -> list[HollowRegion]:
    """Hot regions of ``input_mbq_ml`` that are hollow in ``output_mbq_ml`` but not in the input.

    Both images are 3-D, of one shape, on the grid of ``affine`` (4x4, voxel index to world mm,
    RAS+). Regions come highest input peak first. Raises :class:`InputError` for images of
    different shapes, not 3-D or not finite, an affine that is not a finite 4x4, or bad parameters.
    """
    inp, out, aff = _checked(input_mbq_ml, output_mbq_ml, affine, min_voxels, core_depth_voxels, hollow_ratio)
    found = []
    for region in _hot_regions(inp, min_voxels=min_voxels, core_depth_voxels=core_depth_voxels):
        in_core, in_shell = _core_to_shell_means(inp, region)
        out_core, out_shell = _core_to_shell_means(out, region)
        output_hollow = out_shell > 0 and out_core < hollow_ratio * out_shell
        input_solid = in_shell > 0 and in_core >= hollow_ratio * in_shell
        if output_hollow and input_solid:
            centre_mm = aff[:3, :3] @ np.asarray(region.peak, float) + aff[:3, 3]
            found.append(HollowRegion(centre_voxel=region.peak,
                                      centre_mm=tuple(float(v) for v in centre_mm),
                                      voxels=region.voxels,
                                      input_core_to_shell=in_core / in_shell,
                                      output_core_to_shell=out_core / out_shell))
    return found


def _checked(inp, out, affine, min_voxels, core_depth_voxels, hollow_ratio):
    """The images (floating point) and the affine as arrays, or :class:`InputError`."""
    arrays = []
    for name, a in (("input", inp), ("output", out)):
        a = np.asarray(a)
        if a.ndim != 3:
            raise InputError(f"the {name} image must be 3-D, not of shape {a.shape}")
        if not np.issubdtype(a.dtype, np.floating):
            a = a.astype(np.float64)
        if not np.isfinite(a).all():
            raise InputError(f"the {name} image has values that are not finite (NaN or infinity)")
        arrays.append(a)
    if arrays[0].shape != arrays[1].shape:
        raise InputError(f"input and output images differ in shape: {arrays[0].shape} and {arrays[1].shape}")
    aff = np.asarray(affine, float)
    if aff.shape != (4, 4) or not np.isfinite(aff).all():
        raise InputError(f"the affine must be a finite 4x4 matrix, not of shape {aff.shape}")
    if int(min_voxels) < 1 or int(core_depth_voxels) < 1:
        raise InputError("min_voxels and core_depth_voxels must be at least 1")
    if not 0 < hollow_ratio <= 1:
        raise InputError(f"hollow_ratio must be in (0, 1], not {hollow_ratio}")
    return arrays[0], arrays[1], aff


def _hot_regions(image: np.ndarray, *, min_voxels: int, core_depth_voxels: int) -> list[_Region]:
    """The judged hot regions of ``image`` (module docstring, steps 1 and 2), highest peak first."""
    top = float(image.max())
    if top <= 0:
        return []
    local_max = ndimage.maximum_filter(image, size=PEAK_NEIGHBOURHOOD, mode="nearest")
    peaks = np.flatnonzero((image == local_max) & (image >= PEAK_FRACTION * top))
    peaks = peaks[np.argsort(-image.ravel()[peaks], kind="stable")]
    claimed = np.zeros(image.shape, bool)
    claimed_flat = claimed.reshape(-1)  # a view
    regions = []
    for flat, seed in zip(peaks, np.column_stack(np.unravel_index(peaks, image.shape)).tolist()):
        if claimed_flat[flat]:
            continue
        seed = tuple(seed)
        box, mask, merged = _grow(image, claimed, seed, 0.5 * float(image[seed]))
        if merged:
            claimed[box] |= mask  # what later (lower) peaks reach through it merges too
            continue
        mask = ndimage.binary_fill_holes(mask)
        if np.count_nonzero(mask) < min_voxels:
            continue
        claimed[box] |= mask
        core = ndimage.binary_erosion(mask, structure=_CROSS, iterations=core_depth_voxels, border_value=0)
        if core.any():
            regions.append(_Region(peak=seed, box=box, core=core, shell=mask & ~core))
    return regions


def _grow(image: np.ndarray, claimed: np.ndarray, seed: tuple[int, int, int],
          threshold: float) -> tuple[tuple[slice, slice, slice], np.ndarray, bool]:
    """``(box, mask, merged)``: the voxels >= ``threshold`` 26-connected to ``seed``, and whether
    they reach a ``claimed`` voxel (the region of a higher peak, or voxels merged into one).

    The box around the seed is doubled until the mask touches none of its faces inside the image
    (a component within a box is part of the whole component: a claimed voxel in it is final,
    and the mask is then the part of the component found so far).
    """
    near = tuple(slice(max(s - 1, 0), s + 2) for s in seed)
    mask = image[near] >= threshold  # all 26-adjacent to the seed: no labelling needed
    if (mask & claimed[near]).any():
        return near, mask, True
    half = _FIRST_HALF_WIDTH
    while True:
        lo = [max(s - half, 0) for s in seed]
        hi = [min(s + half + 1, n) for s, n in zip(seed, image.shape)]
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        labels, _ = ndimage.label(image[box] >= threshold, structure=_FULL)
        mask = labels == labels[tuple(s - a for s, a in zip(seed, lo))]
        if (mask & claimed[box]).any():
            return box, mask, True
        open_face = any((lo[k] > 0 and mask.take(0, axis=k).any()) or
                        (hi[k] < image.shape[k] and mask.take(-1, axis=k).any()) for k in range(3))
        if not open_face:
            # crop to the mask's bounding box and one voxel more (inside the box): the margin
            # keeps the outside of the mask connected around it for hole filling
            inner = ndimage.find_objects(mask.astype(np.uint8))[0]
            crop = tuple(slice(max(c.start - 1, 0), min(c.stop + 1, b.stop - b.start)) for c, b in zip(inner, box))
            box = tuple(slice(b.start + c.start, b.start + c.stop) for c, b in zip(crop, box))
            return box, mask[crop], False
        half *= 2


def _core_to_shell_means(image: np.ndarray, region: _Region) -> tuple[float, float]:
    """(mean over the core, mean over the shell) of ``image`` on ``region``."""
    values = image[region.box]
    return float(values[region.core].mean(dtype=np.float64)), float(values[region.shell].mean(dtype=np.float64))
