"""The grid a model sees: its training voxel size, in the input's own orientation, covering the input.

Training images are RAS+ (array axis 0 = +x Right, 1 = +y Anterior, 2 = +z Superior, the orbit
(axial) axis; :func:`pvc_core.geometry.frames.simulation_frame`) with cubic voxels of the model's
``trained_for.voxel_mm``. An input is resampled (activity-conserving) onto the model grid, built
in two steps:

1. **Closest RAS+ orientation** (:func:`closest_ras_orientation`, exact: no interpolation). The
   input's voxel axes are permuted and flipped so that array axis 0 points closest to +x, 1 to
   +y and 2 to +z (the signed permutation nearest to the rotation part of the affine, like
   nibabel's ``io_orientation``/``as_closest_canonical``; ties, exactly 45 degrees, keep the
   stored order). What remains is a rotation of at most 45 degrees about each axis.
2. **The input's own frame, the model's voxel size.** The model grid has the reoriented input's
   direction cosines (that residual rotation is kept, not undone) and voxels of ``voxel_mm``,
   starting at the input box's lower corner with as many voxels as cover it.

Why the input's frame and not the world axes: the blur the network learned to undo lives in the
image's own grid (a SPECT image is reconstructed on a grid whose axis 2 is the orbit axis; its
resolution is the same in every direction of the transaxial plane), so the same array stored
with a rotated affine must give the same network input. The index map between the input grid
and the model grid is then a scaled signed permutation, which
:func:`pvc_core.geometry.resample.resample_activity` resamples by exact overlap integration (fast)
in both directions; an input already at the model's voxel size maps voxel for voxel (no
interpolation at all). An axis-aligned world grid instead sends an oblique input through the
supersampling path twice (about 10x slower, and two trilinear deposits blur its peaks).

Symmetry and the 45 degree rule: a SPECT acquisition (and the training data, augmented with
quarter turns about axis 2 and flips) is symmetric only for rotations about the axial z axis, so
the axial axis must stay array axis 2. A residual rotation about z (any angle, the transaxial
plane turning) changes nothing for the network. A tilt about x or y of up to 45 degrees keeps
array axis 2 as the axis closest to +z, so the network's axial axis stays the image's own axial
axis; only a tilt above 45 degrees makes another array axis the closest to +z (the patient's
superior direction), and step 1 then reorders the axes so that the array axis 2 the network sees
is the one along the patient's long axis, as in training.

Kept guarantees: every input voxel's box lies inside the model grid (which extends past the input
box by less than one model voxel on the upper side of each axis); an axis-aligned input (any axis
order and flips) gets the same model grid as before, the RAS+ grid starting at the lower corner
of its world bounding box, and one on the model's voxels maps onto it voxel for voxel. Input voxel
sizes within :data:`_SAME_VOXEL_TOL` of the model's are kept as they are (4.8 mm read back from a
float32 NIfTI affine is 4.8000002 mm), so that such an input passes with its values unchanged.

A CT (models with the attenuation channel) is averaged onto this grid too: aligned, fast, when it
shares the SPECT's orientation (a hybrid SPECT/CT), by supersampling when it does not.

Fallback: an input whose reoriented voxel axes are not orthogonal (sheared beyond
:data:`_ORTHO_TOL`) gets a grid in the rotation nearest to its axes (polar decomposition) covering
its box in that frame, and one whose reoriented axes are left-handed (no proper rotation within 45
degrees of RAS+; only possible for a degenerate affine) the RAS+ grid covering its world bounding
box; both are resampled by supersampling.
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["world_bounding_box", "closest_ras_orientation", "reorient_affine", "model_grid"]

#: A bounding box extent within this fraction of a whole number of voxels is that number.
_WHOLE_TOL = 1e-4
#: Input voxel sizes within this relative difference of the model's are the model's: the grid then
#: has the input's own spacing and maps voxel for voxel (NIfTI affines carry float32 rounding).
_SAME_VOXEL_TOL = 1e-5
#: |cos| of the angle between two reoriented voxel axes below which they count as orthogonal
#: (float32 affines, DICOM orientations written to 6 decimals); beyond it the input is sheared.
_ORTHO_TOL = 1e-4


def world_bounding_box(shape: tuple[int, int, int], affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) world corners (mm) of the box around every voxel of a grid (voxel boxes, not centres)."""
    corners = np.array([[i - 0.5 for i in c] for c in itertools.product(*[(0, n) for n in shape])], float)
    world = (np.asarray(affine, float)[:3, :3] @ corners.T).T + np.asarray(affine, float)[:3, 3]
    return world.min(axis=0), world.max(axis=0)


def _nearest_rotation(lin: np.ndarray) -> np.ndarray:
    """Orthogonal factor ``U V^T`` of the polar decomposition of ``lin`` (scaling and shear removed)."""
    u, _, vt = np.linalg.svd(lin)
    return u @ vt


def closest_ras_orientation(affine: np.ndarray) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """``(world_axis, sign)`` per input voxel axis: the signed permutation closest to the affine's rotation.

    Input axis ``a`` runs along world axis ``world_axis[a]`` (0 = x, 1 = y, 2 = z) in direction
    ``sign[a]`` (+1 / -1), chosen over all 48 signed permutations to be nearest (Frobenius) to the
    orthogonal factor of ``affine[:3, :3]``: the residual rotation is at most 45 degrees about each
    axis. Exactly 45 degrees (a tie) keeps the stored order (the identity permutation first).
    """
    rot = _nearest_rotation(np.asarray(affine, float)[:3, :3])
    best, best_score = (0, 1, 2), -np.inf
    for perm in itertools.permutations(range(3)):  # (0, 1, 2) first
        score = sum(abs(rot[perm[a], a]) for a in range(3))
        if score > best_score + 1e-9:
            best, best_score = perm, score
    signs = tuple(1 if rot[best[a], a] >= 0 else -1 for a in range(3))
    return tuple(int(b) for b in best), signs


def reorient_affine(shape: tuple[int, int, int], affine: np.ndarray) -> tuple[tuple[int, int, int], np.ndarray]:
    """``(shape, affine)`` of the input grid with its voxel axes permuted and flipped to the closest RAS+.

    Exact: the reoriented grid holds the same voxel boxes (``data`` reoriented would be
    ``np.flip``/``np.transpose`` of the input; the resampling functions need no such copy, they
    read the signed permutation off the index map).
    """
    affine = np.asarray(affine, float)
    world_axis, sign = closest_ras_orientation(affine)
    # t: reoriented voxel index (homogeneous) -> input voxel index
    t = np.zeros((4, 4))
    t[3, 3] = 1.0
    new_shape = [0, 0, 0]
    for a in range(3):
        b = world_axis[a]
        new_shape[b] = int(shape[a])
        t[a, b] = float(sign[a])
        t[a, 3] = 0.0 if sign[a] > 0 else float(shape[a] - 1)
    return tuple(new_shape), affine @ t


def _whole_voxels(extent: np.ndarray) -> np.ndarray:
    """Voxels covering ``extent`` (in voxels): the whole number when within :data:`_WHOLE_TOL`, else rounded up."""
    n = np.where(np.abs(extent - np.round(extent)) < _WHOLE_TOL, np.round(extent), np.ceil(extent)).astype(int)
    return np.maximum(n, 1)


def _grid_in_frame(shape, affine, rot: np.ndarray, v: np.ndarray) -> tuple[tuple[int, int, int], np.ndarray]:
    """Grid with axes ``rot`` (orthonormal columns) and voxels ``v`` covering the input's box in that frame."""
    corners = np.array([[i - 0.5 for i in c] for c in itertools.product(*[(0, n) for n in shape])], float)
    world = corners @ np.asarray(affine, float)[:3, :3].T + np.asarray(affine, float)[:3, 3]
    local = world @ rot  # coordinates along rot's columns
    lower, upper = local.min(axis=0), local.max(axis=0)
    n = _whole_voxels((upper - lower) / v)
    out = np.eye(4)
    out[:3, :3] = rot * v
    out[:3, 3] = rot @ (lower + v / 2)
    return tuple(int(k) for k in n), out


def model_grid(shape: tuple[int, int, int], affine: np.ndarray,
               voxel_mm: tuple[float, float, float]) -> tuple[tuple[int, int, int], np.ndarray]:
    """``(shape, affine)`` of the grid the network sees for an input grid (see the module docstring).

    ``voxel_mm[k]`` is the model's voxel size along its array axis ``k`` (RAS+ order). The grid
    has the input's direction cosines after reorientation to the closest RAS+ and starts at the
    lower corner of the input's box in that frame.
    """
    v = np.asarray(voxel_mm, float)
    r_shape, r_aff = reorient_affine(shape, affine)
    lin = r_aff[:3, :3]
    if not np.linalg.det(lin) > 0:  # left-handed after reorientation (or singular): world axes
        return _grid_in_frame(shape, affine, np.eye(3), v)
    s = np.linalg.norm(lin, axis=0)  # input voxel sizes along the reoriented axes
    unit = lin / s
    if np.abs(unit.T @ unit - np.eye(3)).max() > _ORTHO_TOL:  # sheared: the nearest rotation
        return _grid_in_frame(shape, affine, _nearest_rotation(lin), v)
    # the model's voxel size along the input's own (reoriented) axes; the input's where equal
    v = np.where(np.abs(s / v - 1) <= _SAME_VOXEL_TOL, s, v)
    scale = v / s  # model voxels per input voxel, per axis
    n = _whole_voxels(np.asarray(r_shape) / scale)
    out = np.eye(4)
    out[:3, :3] = lin * scale
    # model voxel 0's centre: half a model voxel inside the input box's lower corner (index -1/2)
    out[:3, 3] = lin @ ((scale - 1) / 2) + r_aff[:3, 3]
    return tuple(int(k) for k in n), out
