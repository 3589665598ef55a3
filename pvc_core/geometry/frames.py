"""World frames (NIfTI RAS+, mm) of the grids the simulator works on.

NIfTI world coordinates are RAS+: x increases toward the patient's Right, y toward Anterior, z
toward Superior (``nibabel.orientations.aff2axcodes(np.eye(4)) == ('R', 'A', 'S')``; the codes
name the end an axis points to). DICOM's patient frame is LPS+, i.e. x and y reversed; a volume
stored "LPS" in NIfTI has an affine like ``diag(-v, -v, v)`` (array axes toward L and P) while its
world coordinates stay RAS+. An affine maps a voxel index ``(i, j, k)`` to world mm as
``affine @ (i, j, k, 1)``; the index is that of the voxel *centre*.

The simulation and reconstruction grids are axis-aligned with the world: array axis 0 runs along
+x, axis 1 along +y, axis 2 along +z (the camera's rotation axis). Both are centred on the same
world point, so that voxel ``i`` of an axis with ``n`` voxels of ``v`` mm lies at
``centre + (i - (n - 1) / 2) v``, the convention of :mod:`pvc_core.spect.geometry`.
"""

from __future__ import annotations

import numpy as np


def fov_centre_mm(shape: tuple[int, int, int], affine: np.ndarray) -> np.ndarray:
    """World position (mm, RAS+) of the centre of the voxel-centre bounding box of a grid.

    The box of voxel centres spans indices ``0 .. n - 1`` per axis; an affine maps its centre
    ``(n - 1) / 2`` to the centre of the world bounding box of those centres, whatever the
    orientation (flips, permutations, rotations).
    """
    aff = np.asarray(affine, dtype=float)
    half = (np.asarray(shape, dtype=float) - 1.0) / 2.0
    return aff[:3, :3] @ half + aff[:3, 3]


def centred_affine(centre_mm: np.ndarray, shape: tuple[int, int, int], voxel_mm: float) -> np.ndarray:
    """Axis-aligned (RAS+) affine of a grid of ``shape`` voxels of ``voxel_mm`` mm centred on ``centre_mm``."""
    vs = np.broadcast_to(np.asarray(voxel_mm, dtype=float), (3,))
    aff = np.eye(4)
    aff[:3, :3] = np.diag(vs)
    aff[:3, 3] = np.asarray(centre_mm, dtype=float) - vs * (np.asarray(shape, dtype=float) - 1.0) / 2.0
    return aff


def simulation_frame(input_shape: tuple[int, int, int], input_affine: np.ndarray, matrix: int,
                     voxel_mm: float) -> np.ndarray:
    """Affine of the ``matrix^3`` grid of ``voxel_mm`` mm voxels that the camera sees.

    Axis-aligned with the world (axis 0 = +x Right, 1 = +y Anterior, 2 = +z Superior, the rotation
    axis) and centred on :func:`fov_centre_mm` of the input grid. The simulation grid
    (``recon_matrix * sim_factor`` voxels of ``recon_voxel_mm / sim_factor``) and the
    reconstruction grid built with this function share that centre, so every reconstruction voxel
    is exactly a block of ``sim_factor^3`` simulation voxels.
    """
    return centred_affine(fov_centre_mm(input_shape, input_affine), (matrix,) * 3, voxel_mm)
