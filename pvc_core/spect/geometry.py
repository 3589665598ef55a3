"""Acquisition geometry: view directions, the rotated (detector) frame and resampling into it.

Conventions (fixed, shared by simulation, reconstruction and the Interfile writer):

- Arrays are indexed (x, y, z): axis 0 left-right, axis 1 anterior-posterior, axis 2 axial.
  The camera rotates about axis 2 through the centre of the grid; voxel ``i`` of an axis with
  ``n`` voxels of size ``v`` has its centre at ``(i - (n - 1) / 2) v``.
- View angle ``theta`` (degrees): the detector lies in direction ``e = (sin theta, -cos theta)``
  from the axis, i.e. at theta = 0 it faces the object from the low-index side of axis 1 and at
  theta = 90 from the high-index side of axis 0; angles increase counter-clockwise seen from +z.
- Detector pixel ``j`` (transaxial) lies at ``u = (j - (n_u - 1) / 2) v`` along
  ``t = (cos theta, sin theta)``; detector rows are the z slices. Projections are stored
  (n_views, n_u, n_z).
- The rotated frame samples the field of view in planes parallel to the detector at depths
  ``s_k = (k - (n_s - 1) / 2) v`` along ``e`` (k increases toward the detector), with
  ``n_s >= sqrt(2) n`` so that the whole square grid fits at every angle. A plane at depth ``s`` is
  ``radius - s`` from the collimator face.

Activity enters the rotated frame by *splatting* (each voxel spreads its activity over the four
nearest rotated-grid nodes with bilinear weights that sum to one), so counts are conserved exactly
at every angle; attenuation coefficients enter by *sampling* (bilinear interpolation), so line
integrals of mu are exact for axis-aligned slabs. Both are sparse linear maps built once per view
block; the splat map's transpose is the exact adjoint used in back projection.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Frame:
    """Sizes of the object grid and of its rotated frame (all in voxels) and the voxel size (mm)."""

    n_xy: int
    n_z: int
    voxel_mm: float

    @property
    def n_u(self) -> int:
        return self.n_xy

    @property
    def n_s(self) -> int:
        n = int(np.ceil(self.n_xy * np.sqrt(2.0)))
        return n + ((n - self.n_xy) % 2)  # same parity as n_xy: grids coincide at 0/90/180/270 deg

    def depth_mm(self) -> np.ndarray:
        """Depth s_k (mm) of each rotated-frame plane, increasing toward the detector."""
        return (np.arange(self.n_s) - (self.n_s - 1) / 2.0) * self.voxel_mm

    def centres_mm(self) -> np.ndarray:
        """Voxel centre coordinates (mm) along a transaxial axis."""
        return (np.arange(self.n_xy) - (self.n_xy - 1) / 2.0) * self.voxel_mm


def detector_directions(angles_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(e, t): unit vectors toward the detector and along its transaxial axis, each (n_views, 2)."""
    th = np.deg2rad(np.asarray(angles_deg, dtype=float))
    s, c = np.sin(th), np.cos(th)
    s[np.abs(s) < 1e-12] = 0.0
    c[np.abs(c) < 1e-12] = 0.0
    return np.stack([s, -c], axis=1), np.stack([c, s], axis=1)


def _snap(x: np.ndarray) -> np.ndarray:
    """Round values within 1e-9 of an integer, so that aligned grids give exact weights."""
    r = np.round(x)
    return np.where(np.abs(x - r) < 1e-9, r, x)


def _csr(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int],
         device: torch.device) -> torch.Tensor:
    """CSR tensor from COO triplets whose columns are already ordered within each row."""
    crow = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=crow[1:])
    return _csr_tensor(crow, cols, vals, shape, device)


def _csr_tensor(crow: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int],
                device: torch.device) -> torch.Tensor:
    """CSR tensor from row pointers, columns and values."""
    with warnings.catch_warnings():  # "sparse CSR support is in beta": we only use mm and .to()
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(torch.from_numpy(crow), torch.from_numpy(cols.astype(np.int64, copy=False)),
                                       torch.from_numpy(vals.astype(np.float32, copy=False)), shape,
                                       check_invariants=False).to(device)


def _bilinear(a: np.ndarray, c: np.ndarray, n_a: int, n_c: int):
    """Corner offsets and weights of bilinear interpolation at continuous indices (a, c).

    Returns (a_idx, c_idx, weight, valid), each (..., 4); corners ordered (0,0), (0,1), (1,0),
    (1,1) so that flat indices ``a * n_c + c`` increase along the last axis.
    """
    a0, c0 = np.floor(a), np.floor(c)
    fa, fc = a - a0, c - c0
    da = np.array([0, 0, 1, 1])
    dc = np.array([0, 1, 0, 1])
    ai = a0[..., None] + da
    ci = c0[..., None] + dc
    w = np.where(da == 1, fa[..., None], 1 - fa[..., None]) * np.where(dc == 1, fc[..., None], 1 - fc[..., None])
    valid = (w > 1e-12) & (ai >= 0) & (ai < n_a) & (ci >= 0) & (ci < n_c)
    return ai.astype(np.int64), ci.astype(np.int64), w, valid


def splat_matrices(frame: Frame, angles_deg: np.ndarray, device: torch.device, transpose: bool = True,
                   planes: tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Sparse CSR maps object -> rotated frame (splat) and (if ``transpose``) its transpose.

    ``planes = (k0, n)`` restricts the rotated frame to depth planes ``k0 .. k0 + n - 1`` (default
    all ``frame.n_s``). The forward map has shape (n_views * n * n_u, n_xy * n_xy) and acts on the
    object reshaped to (n_xy * n_xy, n_z). Weights of voxels that fall outside the detector (or
    outside the planes) are dropped.
    """
    k0, n_planes = planes if planes is not None else (0, frame.n_s)
    e, t = detector_directions(angles_deg)
    xc = frame.centres_mm()
    px, py = np.meshgrid(xc, xc, indexing="ij")
    p = np.stack([px.ravel(), py.ravel()], axis=1)  # (n_vox, 2), row = i * n_xy + j
    v = frame.voxel_mm
    a = _snap(p @ e.T / v + (frame.n_s - 1) / 2.0) - k0  # (n_vox, n_views) depth index in the block
    c = _snap(p @ t.T / v + (frame.n_u - 1) / 2.0)  # detector index
    ai, ci, w, ok = _bilinear(a, c, n_planes, frame.n_u)  # (n_vox, n_views, 4)
    n_vox, n_views = a.shape
    node = (np.arange(n_views)[None, :, None] * n_planes + ai) * frame.n_u + ci
    vox = np.broadcast_to(np.arange(n_vox)[:, None, None], node.shape)
    # voxel-major order: rows of the transpose are sorted and their columns increase
    node, vox, w = node[ok], vox[ok], w[ok]
    shape = (n_views * n_planes * frame.n_u, n_vox)
    order = np.argsort(node, kind="stable")  # stable: voxels stay increasing within a node
    fwd = _csr(node[order], vox[order], w[order], shape, device)
    bwd = _csr(vox, node, w, (shape[1], shape[0]), device) if transpose else None
    return fwd, bwd


def sample_rotated(volume: torch.Tensor, frame: Frame, angles_deg: np.ndarray,
                   planes: tuple[int, int] | None = None) -> torch.Tensor:
    """Bilinear samples of ``volume`` (n_xy, n_xy, n_z) at the rotated-frame nodes: (n_views, n, n_u, n_z).

    ``planes = (k0, n)`` as in :func:`splat_matrices`. Nodes outside the grid read zero.
    Implemented as a sparse interpolation matrix so that the result comes out directly in the
    (view, depth, u, z) layout.
    """
    k0, n_planes = planes if planes is not None else (0, frame.n_s)
    e, t = detector_directions(angles_deg)
    s = frame.depth_mm()[k0:k0 + n_planes]
    u = (np.arange(frame.n_u) - (frame.n_u - 1) / 2.0) * frame.voxel_mm
    pos = s[None, :, None, None] * e[:, None, None, :] + u[None, None, :, None] * t[:, None, None, :]
    idx = _snap(pos / frame.voxel_mm + (frame.n_xy - 1) / 2.0)  # (n_views, n_s, n_u, 2)
    ai, ci, w, ok = _bilinear(idx[..., 0], idx[..., 1], frame.n_xy, frame.n_xy)
    n_nodes = len(e) * n_planes * frame.n_u
    node = np.broadcast_to(np.arange(n_nodes).reshape(idx.shape[:-1])[..., None], ai.shape)
    vox = ai * frame.n_xy + ci
    interp = _csr(node[ok], vox[ok], w[ok], (n_nodes, frame.n_xy * frame.n_xy), volume.device)
    flat = torch.sparse.mm(interp, volume.reshape(frame.n_xy * frame.n_xy, frame.n_z))
    return flat.view(len(e), n_planes, frame.n_u, frame.n_z)


def depth_range(frame: Frame, angles_deg: np.ndarray, far: np.ndarray, near: np.ndarray) -> tuple[int, int]:
    """Planes (k0, n) of the rotated frame that a block of views needs.

    ``far``: 2-D mask of voxels that may hold activity (sets the deepest plane); ``near``: voxels
    that may hold activity or attenuate (sets the plane nearest the detector). Planes outside
    hold neither activity nor anything that attenuates it, so dropping them changes nothing.
    """
    if not far.any():
        return 0, 1
    e, _ = detector_directions(angles_deg)
    c = frame.centres_mm()
    half = (frame.n_s - 1) / 2.0

    def depths(mask: np.ndarray) -> np.ndarray:
        ii, jj = np.nonzero(mask)
        return np.stack([c[ii], c[jj]], axis=1) @ e.T / frame.voxel_mm + half

    k0 = max(int(np.floor(depths(far).min())) - 1, 0)
    k1 = min(int(np.ceil(depths(near | far).max())) + 1, frame.n_s - 1)
    return k0, k1 - k0 + 1


def attenuation_factors(mu_rotated_per_cm: torch.Tensor, voxel_mm: float) -> torch.Tensor:
    """exp(-tau): survival probability from each rotated-frame node to the detector (in place).

    ``tau_k = (sum_{k' > k} mu_k' + mu_k / 2) * dv`` along the depth axis (dim 1): half of the
    node's own voxel (the PyTomography/STIR convention for a source at the voxel centre). A
    loop over planes is used because ``torch.cumsum`` along a middle axis is slow on CPU.
    """
    dv_cm = voxel_mm / 10.0
    acc = torch.zeros_like(mu_rotated_per_cm[:, 0])
    for k in range(mu_rotated_per_cm.shape[1] - 1, -1, -1):
        plane = mu_rotated_per_cm[:, k]
        nxt = acc + plane
        plane.mul_(0.5).add_(acc)  # tau_k / dv, written over mu_k
        acc = nxt
    return mu_rotated_per_cm.mul_(-dv_cm).exp_()
