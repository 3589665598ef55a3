"""The SPECT system matrix, built once per case and cached: rotate (splat), attenuate, blur, sum.

``H f`` maps activity (MBq per voxel) on a cubic-voxel grid to expected photopeak counts per
detector pixel and view (primary photons only):

    (H f)[view] = c * sum_depth CDR_depth( exp(-tau) * Splat_view(f) )

with ``c`` = sensitivity (cps/MBq) x time per view (s). ``CDR`` is omitted for the noRR model.

Why our own system matrix instead of PyTomography's ``SPECTSystemMatrix`` with
``SPECTAttenuationTransform``/``SPECTPSFTransform``: PyTomography rotates the object and the
attenuation map with ``grid_sample`` view by view and recomputes ``exp(-cumsum(mu))`` for every
view on every forward and back projection; on 2 CPU cores one full forward plus back projection
of a 64^3 object with 120 views took 2.4 s (3.6 s with PSF), about 90 s for the four
reconstructions of a case. Here, per case,

- the views are grouped into *blocks* (views ``k, k + L, k + 2L, ...``; ``L`` the least common
  multiple of the subset counts in use, so every OSEM subset is a union of blocks);
- per block, the splat map (sparse CSR; the torch path also keeps its exact transpose for back
  projection, the CPU kernels scatter with the map itself), the
  rotated attenuation factors ``exp(-tau)`` and the CDR depth ladder are computed once and kept,
  and reused by every window of the simulation, every OSEM iteration, both noise levels and
  both methods;
- all views of a block are processed together (batched tensors).

The object is reconstructed by :func:`pvc_core.spect.osem.osem` (PyTomography's OSEM update);
:func:`make_pytomography_system_matrix` adapts this class to PyTomography's ``SystemMatrix``
interface for its own algorithms (and for the test that compares the two OSEMs).
On the CPU the projections run as fused numba kernels (:mod:`pvc_core.spect.kernels`,
:mod:`pvc_core.spect.rotation_kernels`); elsewhere as the torch operations below.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Hashable, Protocol

import numpy as np
import torch

from pvc_core.spect.cdr import DepthLadder
from pvc_core.spect.geometry import Frame, attenuation_factors, depth_range, sample_rotated, splat_matrices

#: Default memory budget (bytes) of one block's rotated tensor; blocks larger than this are split.
DEFAULT_BLOCK_BYTES = 256 * 2 ** 20


class DistanceResponse(Hashable, Protocol):
    """A distance-dependent Gaussian collimator-detector response, as the projector uses it.

    Implemented by :class:`~pvc_core.spect.collimator.Collimator` (the simulator's formula) and
    :class:`~pvc_core.spect.response_fit.FittedResponse` (the RR reconstruction's measured model).
    Hashable: the CDR ladders of a system are kept per response.
    """

    def variance_mm2(self, distance_mm: np.ndarray | float) -> np.ndarray:
        """Gaussian variance (mm^2) per detector axis at ``distance_mm`` from the collimator face."""
        ...


@dataclass
class Block:
    """Cached per-block data: its views, splat maps, attenuation factors and the CDR ladder of
    each response used with it (the geometry is shared by every response)."""

    views: np.ndarray
    planes: tuple[int, int]  # (first depth plane, number of planes) of this block
    splat: torch.Tensor
    splat_t: torch.Tensor | None
    attenuation: torch.Tensor  # (n_views, n_planes, n_u, n_z): exp(-tau)
    ladders: dict = field(default_factory=dict)  # response -> DepthLadder

    def csr(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row pointers, columns, values) of the splat map as numpy views (CPU)."""
        return self.splat.crow_indices().numpy(), self.splat.col_indices().numpy(), self.splat.values().numpy()

    def plane_weights(self, ladder: "DepthLadder | None") -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """(node, w_lo, w_hi, n_nodes) per (view, plane): the ladder's, or one node of weight 1 (no CDR)."""
        if ladder is not None:
            return ladder.plane_lo, ladder.plane_w_lo, ladder.plane_w_hi, ladder.n_nodes
        shape = (len(self.views), self.planes[1])
        return np.zeros(shape, np.int64), np.ones(shape, np.float32), np.zeros(shape, np.float32), 1


class SPECTSystem:
    """Projector and back projector of one case (one attenuation map, one orbit).

    Parameters
    ----------
    mu_per_cm:
        Attenuation map (n, n, n_z) in 1/cm at the photon energy, on the grid of the object.
    voxel_mm:
        Cubic voxel edge in mm; also the detector pixel size.
    angles_deg, radii_mm:
        View angles (see :mod:`pvc_core.spect.geometry`) and the collimator-face distance from
        the rotation axis per view.
    collimator:
        The distance-dependent collimator-detector response (:class:`DistanceResponse`), used
        when ``psf=True``; None for a system that only projects without it (noRR).
        :meth:`with_response` gives the same system with another response.
    counts_per_mbq:
        Sensitivity x time per view: expected counts per MBq per view in air.
    subset_counts:
        OSEM subset counts that will be requested; the view blocks are built so that each
        subset is a union of blocks.
    device:
        torch device for all tensors.
    cache:
        Keep block data after first use (True for reconstruction; False streams blocks, for
        one-pass simulation of large grids).
    block_bytes:
        Memory budget of one block's rotated tensor (float32).
    activity_support:
        Mask of voxels that may hold activity ((n, n) or (n, n, n_z)); default the field of view
        (the cylinder inscribed in the grid, where reconstructions live). Depth planes that hold
        neither activity nor attenuation in front of it are skipped.
    backend:
        ``numba`` (the fused CPU kernels of :mod:`pvc_core.spect.kernels`) or ``torch`` (sparse
        matrix products and tensor operations; any device). Default: numba on the CPU, torch
        otherwise. Both compute the same operator (to float32 rounding).
    """

    def __init__(self, mu_per_cm: np.ndarray | torch.Tensor, voxel_mm: float, angles_deg: np.ndarray,
                 radii_mm: np.ndarray, collimator: DistanceResponse | None, counts_per_mbq: float = 1.0,
                 subset_counts: tuple[int, ...] = (1,), device: torch.device | str | None = None,
                 cache: bool = True, block_bytes: int = DEFAULT_BLOCK_BYTES,
                 activity_support: np.ndarray | None = None, backend: str | None = None) -> None:
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.backend = backend or ("numba" if self.device.type == "cpu" else "torch")
        if self.backend not in ("numba", "torch") or (self.backend == "numba" and self.device.type != "cpu"):
            raise ValueError(f"backend {self.backend!r} on {self.device}: expected 'torch', or 'numba' on the CPU")
        mu = torch.as_tensor(np.asarray(mu_per_cm, dtype=np.float32) if not torch.is_tensor(mu_per_cm) else mu_per_cm)
        if mu.ndim != 3 or mu.shape[0] != mu.shape[1]:
            raise ValueError(f"attenuation map must be (n, n, n_z) with a square transaxial plane, got {tuple(mu.shape)}")
        self.mu = mu.to(self.device, torch.float32).contiguous()
        self.frame = Frame(int(mu.shape[0]), int(mu.shape[2]), float(voxel_mm))
        self.angles_deg = np.asarray(angles_deg, dtype=float)
        self.radii_mm = np.asarray(radii_mm, dtype=float)
        if self.radii_mm.shape != self.angles_deg.shape:
            raise ValueError("angles_deg and radii_mm must have one entry per view")
        self.collimator = collimator
        self.counts_per_mbq = float(counts_per_mbq)
        self.cache = cache
        self.n_views = len(self.angles_deg)
        self.period = math.lcm(*[max(1, int(m)) for m in subset_counts])
        if activity_support is None:
            far = self._fov_disc()
        else:
            far = np.asarray(activity_support, dtype=bool)
            far = far.any(axis=2) if far.ndim == 3 else far
        near = far | (self.mu > 0).any(dim=2).cpu().numpy()
        self._support = far
        self._blocks: list[np.ndarray] = []
        self._planes: list[tuple[int, int]] = []
        for k in range(min(self.period, self.n_views)):
            views = np.arange(k, self.n_views, self.period)
            planes = depth_range(self.frame, self.angles_deg[views], far, near)
            per_view = planes[1] * self.frame.n_u * self.frame.n_z * 4
            max_views = max(1, int(block_bytes // per_view))
            for start in range(0, len(views), max_views):
                chunk = views[start:start + max_views]
                self._blocks.append(chunk)
                self._planes.append(depth_range(self.frame, self.angles_deg[chunk], far, near))
        self._block_residue = [int(b[0] % self.period) for b in self._blocks]
        self._cache: dict[int, Block] = {}
        self._norm: dict[tuple, torch.Tensor] = {}

    def with_response(self, collimator: DistanceResponse | None) -> "SPECTSystem":
        """This system with another collimator-detector response.

        The twin shares the cached geometry (splat maps, attenuation factors) and the noRR
        normalisations; CDR ladders and the RR normalisations are kept per response. Used so
        that the simulator (the collimator formula) and the RR reconstruction (its fitted model)
        reuse one system.
        """
        if collimator == self.collimator:
            return self
        twin = copy.copy(self)
        twin.collimator = collimator
        return twin

    def _ladder(self, blk: Block) -> DepthLadder:
        """The CDR depth ladder of ``blk`` for this system's response (built on first use)."""
        if self.collimator is None:
            raise ValueError("this system has no collimator-detector response; build it with one "
                             "(or use with_response) to project with psf=True")
        ladder = blk.ladders.get(self.collimator)
        if ladder is None:
            v2 = self.frame.voxel_mm ** 2
            k0, n_planes = blk.planes
            dist = self.radii_mm[blk.views][:, None] - self.frame.depth_mm()[None, k0:k0 + n_planes]
            var = np.asarray(self.collimator.variance_mm2(dist), dtype=float) / v2
            base = float(self.collimator.variance_mm2(0.0)) / v2
            ladder = DepthLadder.build(var, base, self.device)
            blk.ladders[self.collimator] = ladder
        return ladder

    # ------------------------------------------------------------------ blocks
    @property
    def n_blocks(self) -> int:
        return len(self._blocks)

    def block(self, index: int, psf: bool = False) -> Block:
        """Block ``index`` with its splat maps, attenuation and (if ``psf``) this response's CDR ladder."""
        blk = self._cache.get(index)
        if blk is None:
            views, planes = self._blocks[index], self._planes[index]
            angles = self.angles_deg[views]
            if self.backend == "numba":
                from pvc_core.spect import rotation_kernels  # lazy: numba kernels (~0.2 s), CPU back end only

                splat, splat_t = rotation_kernels.splat_matrix(self.frame, angles, planes, self._support), None
                att = rotation_kernels.attenuation(self.mu, self.frame, angles, planes, splat)
            else:
                splat, splat_t = splat_matrices(self.frame, angles, self.device, transpose=self.cache, planes=planes)
                att = attenuation_factors(sample_rotated(self.mu, self.frame, angles, planes), self.frame.voxel_mm)
            blk = Block(views=views, planes=planes, splat=splat, splat_t=splat_t, attenuation=att)
            if self.cache:
                self._cache[index] = blk
        if psf:
            self._ladder(blk)
        return blk

    def subset_views(self, n_subsets: int | None, subset: int | None) -> np.ndarray:
        """Views of OSEM subset ``subset`` of ``n_subsets`` (all views if None): ``subset::n_subsets``."""
        if not n_subsets or n_subsets <= 1 or subset is None:
            return np.arange(self.n_views)
        return np.arange(subset, self.n_views, n_subsets)

    def _blocks_of(self, n_subsets: int | None, subset: int | None) -> list[int]:
        if not n_subsets or n_subsets <= 1 or subset is None:
            return list(range(self.n_blocks))
        if self.period % n_subsets:
            raise ValueError(f"{n_subsets} subsets do not divide the block period {self.period}; "
                             f"build the system with subset_counts including {n_subsets}")
        return [i for i, r in enumerate(self._block_residue) if r % n_subsets == subset]

    def _positions(self, views: np.ndarray, n_subsets: int | None, subset: int | None) -> torch.Tensor:
        """Row of each of ``views`` in the subset's ascending view order."""
        if not n_subsets or n_subsets <= 1 or subset is None:
            pos = views
        else:
            pos = (views - subset) // n_subsets
        return torch.as_tensor(pos, dtype=torch.int64, device=self.device)

    # ------------------------------------------------------------- projectors
    def forward(self, activity_mbq: torch.Tensor, n_subsets: int | None = None, subset: int | None = None,
                psf: bool = False) -> torch.Tensor:
        """Expected primary photopeak counts (n_views_in_subset, n_u, n_z) of ``activity_mbq`` (MBq/voxel).

        ``activity_mbq`` may carry a leading batch axis (B, n, n, n_z) (objects projected
        together, e.g. both noise levels of a case); the result then has one too.
        """
        batched = activity_mbq.ndim == 4
        if self.backend == "numba":
            out = self._forward_numba(activity_mbq if batched else activity_mbq[None], n_subsets, subset, psf)
            return out if batched else out[0]
        if batched:
            return torch.stack([self.forward(a, n_subsets, subset, psf) for a in activity_mbq])
        fr = self.frame
        f2 = self._object_rows(activity_mbq)
        n_out = len(self.subset_views(n_subsets, subset))
        out = torch.empty(n_out, fr.n_u, fr.n_z, device=self.device, dtype=torch.float32)
        for bi in self._blocks_of(n_subsets, subset):
            blk = self.block(bi, psf)
            planes = torch.sparse.mm(blk.splat, f2).view(len(blk.views), blk.planes[1], fr.n_u, fr.n_z)
            planes.mul_(blk.attenuation)
            proj = self._ladder(blk).forward(planes) if psf else planes.sum(dim=1)
            out.index_copy_(0, self._positions(blk.views, n_subsets, subset), proj)
        return out.mul_(self.counts_per_mbq)

    def backward(self, proj: torch.Tensor, n_subsets: int | None = None, subset: int | None = None,
                 psf: bool = False) -> torch.Tensor:
        """Adjoint of :meth:`forward`: projections of the subset -> object (n, n, n_z) (batched as forward)."""
        batched = proj.ndim == 4
        if self.backend == "numba":
            out = self._backward_numba(proj if batched else proj[None], n_subsets, subset, psf)
            return out if batched else out[0]
        if batched:
            return torch.stack([self.backward(q, n_subsets, subset, psf) for q in proj])
        fr = self.frame
        proj = proj.to(self.device, torch.float32)
        out = torch.zeros(fr.n_xy * fr.n_xy, fr.n_z, device=self.device, dtype=torch.float32)
        for bi in self._blocks_of(n_subsets, subset):
            blk = self.block(bi, psf)
            if blk.splat_t is None:
                raise RuntimeError("back projection needs a system built with cache=True")
            q = proj.index_select(0, self._positions(blk.views, n_subsets, subset))
            if psf:
                planes = self._ladder(blk).backward(q, blk.planes[1])
                planes.mul_(blk.attenuation)
            else:
                planes = blk.attenuation * q.unsqueeze(1)
            out.add_(torch.sparse.mm(blk.splat_t, planes.view(-1, fr.n_z)))
        return out.view(fr.n_xy, fr.n_xy, fr.n_z).mul_(self.counts_per_mbq)

    # ------------------------------------------- per-block helpers of the simulator
    def _object_rows(self, activity_mbq: torch.Tensor) -> torch.Tensor:
        fr = self.frame
        return activity_mbq.to(self.device, torch.float32).reshape(fr.n_xy * fr.n_xy, fr.n_z)

    def project_to_nodes(self, activity_mbq: torch.Tensor, blk: Block, node: np.ndarray, w_lo: np.ndarray,
                         w_hi: np.ndarray, n_nodes: int) -> torch.Tensor:
        """Attenuated planes of block ``blk`` summed into ``n_nodes`` classes per view.

        Plane ``s`` of view ``v`` adds ``w_lo[v, s]`` of itself to class ``node[v, s]`` and
        ``w_hi[v, s]`` to the next: (n_views_of_block, n_nodes, n_u, n_z), counts per MBq unscaled.
        """
        fr = self.frame
        nv = len(blk.views)
        f2 = self._object_rows(activity_mbq)
        if self.backend == "numba":
            kernels = _cpu_kernels()
            out = np.zeros((1, nv, n_nodes, fr.n_u, fr.n_z), np.float32)
            kernels.splat_to_nodes(*blk.csr(), f2.numpy()[None], blk.attenuation.numpy(),
                                   np.ascontiguousarray(node, dtype=np.int64), np.ascontiguousarray(w_lo, np.float32),
                                   np.ascontiguousarray(w_hi, np.float32), out)
            return torch.from_numpy(out[0])
        planes = torch.sparse.mm(blk.splat, f2).view(nv, blk.planes[1], fr.n_u, fr.n_z).mul_(blk.attenuation)
        w = np.zeros((nv, blk.planes[1], n_nodes + 1), np.float32)
        np.put_along_axis(w, node[..., None], np.asarray(w_lo, np.float32)[..., None], axis=2)
        np.add.at(w, (np.arange(nv)[:, None], np.arange(blk.planes[1])[None, :], node + 1), w_hi)
        return torch.einsum("bsk,bsuz->bkuz", torch.from_numpy(w[..., :n_nodes]).to(self.device), planes)

    def depth_classes(self, activity_mbq: torch.Tensor, blk: Block, depth_nodes_cm: np.ndarray,
                      mu_water_per_cm: float) -> torch.Tensor:
        """Attenuated planes of ``blk`` spread over water-equivalent depth classes (hat functions of
        ``-ln(exp(-tau)) / mu_water``): (n_views_of_block, n_classes, n_u, n_z)."""
        fr = self.frame
        nv = len(blk.views)
        nodes_cm = np.asarray(depth_nodes_cm, dtype=np.float64)
        f2 = self._object_rows(activity_mbq)
        if self.backend == "numba":
            kernels = _cpu_kernels()
            out = np.zeros((nv, len(nodes_cm), fr.n_u, fr.n_z), np.float32)
            kernels.depth_classes(*blk.csr(), f2.numpy(), blk.attenuation.numpy(), nodes_cm, float(mu_water_per_cm), out)
            return torch.from_numpy(out)
        nodes = torch.as_tensor(nodes_cm, dtype=torch.float32, device=self.device)
        planes = torch.sparse.mm(blk.splat, f2).view(nv, blk.planes[1], fr.n_u, fr.n_z).mul_(blk.attenuation)
        depth_cm = torch.clamp(blk.attenuation, min=1e-30).log_().neg_().div_(mu_water_per_cm)
        idx = torch.clamp(torch.bucketize(depth_cm, nodes, right=True) - 1, 0, len(nodes) - 2)
        lo = nodes[idx]
        frac = torch.clamp((depth_cm - lo) / (nodes[idx + 1] - lo), 0.0, 1.0)
        del depth_cm, lo
        classes = torch.zeros(nv, len(nodes), fr.n_u, fr.n_z, device=self.device)
        classes.scatter_add_(1, idx, planes * (1.0 - frac))
        classes.scatter_add_(1, idx + 1, planes * frac)
        return classes

    def _forward_numba(self, activity_mbq: torch.Tensor, n_subsets, subset, psf: bool) -> torch.Tensor:
        kernels = _cpu_kernels()
        fr = self.frame
        n_b = activity_mbq.shape[0]
        f = np.ascontiguousarray(activity_mbq.detach().to("cpu", torch.float32).numpy().reshape(n_b, fr.n_xy * fr.n_xy, fr.n_z))
        views_out = self.subset_views(n_subsets, subset)
        out = np.empty((n_b, len(views_out), fr.n_u, fr.n_z), np.float32)
        for bi in self._blocks_of(n_subsets, subset):
            blk = self.block(bi, psf)
            ladder = self._ladder(blk) if psf else None
            lo, w_lo, w_hi, n_nodes = blk.plane_weights(ladder)
            nv = len(blk.views)
            nodes = np.zeros((n_b, nv, n_nodes, fr.n_u, fr.n_z), np.float32)
            kernels.splat_to_nodes(*blk.csr(), f, blk.attenuation.numpy(), lo, w_lo, w_hi, nodes)
            rows = self._positions(blk.views, n_subsets, subset).numpy()
            if ladder is None:
                out[:, rows] = nodes[:, :, 0]
            else:
                proj = np.empty((n_b * nv, fr.n_u, fr.n_z), np.float32)
                n_base, a_base = ladder.base_steps
                kernels.ladder_forward(nodes.reshape(n_b * nv, n_nodes, fr.n_u, fr.n_z), ladder.step_px2 / 2.0,
                                       n_base, a_base, proj)
                out[:, rows] = proj.reshape(n_b, nv, fr.n_u, fr.n_z)
        return torch.from_numpy(out).mul_(self.counts_per_mbq)

    def _backward_numba(self, proj: torch.Tensor, n_subsets, subset, psf: bool) -> torch.Tensor:
        kernels = _cpu_kernels()
        fr = self.frame
        n_b = proj.shape[0]
        q_all = proj.detach().to("cpu", torch.float32).numpy()
        partial = np.zeros((kernels.VIEW_GROUPS, n_b, fr.n_xy * fr.n_xy, fr.n_z), np.float32)
        for bi in self._blocks_of(n_subsets, subset):
            blk = self.block(bi, psf)
            ladder = self._ladder(blk) if psf else None
            lo, w_lo, w_hi, n_nodes = blk.plane_weights(ladder)
            nv = len(blk.views)
            q = np.ascontiguousarray(q_all[:, self._positions(blk.views, n_subsets, subset).numpy()])
            if ladder is None:
                nodes = q[:, :, None]
            else:
                nodes = np.empty((n_b * nv, n_nodes, fr.n_u, fr.n_z), np.float32)
                n_base, a_base = ladder.base_steps
                kernels.ladder_backward(q.reshape(n_b * nv, fr.n_u, fr.n_z), ladder.step_px2 / 2.0, n_base, a_base,
                                        nodes)
                nodes = nodes.reshape(n_b, nv, n_nodes, fr.n_u, fr.n_z)
            kernels.nodes_to_object(*blk.csr(), nodes, blk.attenuation.numpy(), lo, w_lo, w_hi, partial)
        out = partial.sum(axis=0)
        return torch.from_numpy(out.reshape(n_b, fr.n_xy, fr.n_xy, fr.n_z)).mul_(self.counts_per_mbq)

    def normalization(self, n_subsets: int | None = None, subset: int | None = None, psf: bool = False) -> torch.Tensor:
        """Sensitivity image H_m^T 1 of a subset (cached: shared by both noise levels)."""
        key = (n_subsets if n_subsets and n_subsets > 1 else 1, subset if n_subsets and n_subsets > 1 else None, psf,
               self.collimator if psf else None)
        if key not in self._norm:
            ones = torch.ones(len(self.subset_views(n_subsets, subset)), self.frame.n_u, self.frame.n_z,
                              device=self.device)
            self._norm[key] = self.backward(ones, n_subsets, subset, psf)
        return self._norm[key]

    def _fov_disc(self) -> np.ndarray:
        c = self.frame.centres_mm()
        return (c[:, None] ** 2 + c[None, :] ** 2) <= (self.frame.n_xy * self.frame.voxel_mm / 2.0) ** 2

    def fov_mask(self) -> torch.Tensor:
        """Voxels inside the reconstructed field of view: the cylinder inscribed in the grid."""
        m = torch.from_numpy(self._fov_disc().astype(np.float32)).to(self.device)
        return m[:, :, None].expand(-1, -1, self.frame.n_z).contiguous()


def _cpu_kernels():
    """The numba CPU kernels (:mod:`pvc_core.spect.kernels`), their threads set as torch's."""
    from pvc_core.spect import kernels  # lazy: numba and its kernels (~0.2 s), CPU back end only

    kernels.use_threads()
    return kernels


def make_pytomography_system_matrix(system: SPECTSystem, psf: bool):
    """Wrap ``system`` as a PyTomography ``SystemMatrix`` (for PyTomography's OSEM and likelihoods)."""
    # lazy: PyTomography (~0.3 s after torch) for this adapter only; the projector itself does without it
    from pvc_core.spect._pytomography import pytomography  # noqa: F401  (quiet import)
    from pytomography.metadata.SPECT import SPECTObjectMeta, SPECTProjMeta
    from pytomography.projectors import SystemMatrix

    class PyTomographySystemMatrix(SystemMatrix):
        """PyTomography ``SystemMatrix`` backed by a cached :class:`SPECTSystem`."""

        def __init__(self) -> None:
            fr = system.frame
            cm = fr.voxel_mm / 10.0
            object_meta = SPECTObjectMeta([cm, cm, cm], (fr.n_xy, fr.n_xy, fr.n_z))
            proj_meta = SPECTProjMeta((fr.n_u, fr.n_z), [cm, cm], system.angles_deg, system.radii_mm / 10.0)
            super().__init__(object_meta, proj_meta, [], [])
            self.n_subsets = 1

        def set_n_subsets(self, n_subsets: int) -> None:
            self.n_subsets = int(n_subsets)

        def get_subset_splits(self, n_subsets: int) -> list:
            return [system.subset_views(n_subsets, k) for k in range(n_subsets)]

        def get_projection_subset(self, projections: torch.Tensor, subset_idx: int | None) -> torch.Tensor:
            if subset_idx is None:
                return projections
            views = torch.as_tensor(system.subset_views(self.n_subsets, subset_idx), device=projections.device)
            return projections.index_select(projections.ndim - 3, views)  # (B,) views, u, z

        def get_weighting_subset(self, subset_idx: int | None) -> float:
            if subset_idx is None:
                return 1.0
            return len(system.subset_views(self.n_subsets, subset_idx)) / system.n_views

        def compute_normalization_factor(self, subset_idx: int | None = None) -> torch.Tensor:
            return system.normalization(self.n_subsets if subset_idx is not None else 1, subset_idx, psf)

        def forward(self, object: torch.Tensor, subset_idx: int | None = None) -> torch.Tensor:  # noqa: A002
            return system.forward(object, self.n_subsets if subset_idx is not None else 1, subset_idx, psf)

        def backward(self, proj: torch.Tensor, subset_idx: int | None = None) -> torch.Tensor:
            return system.backward(proj, self.n_subsets if subset_idx is not None else 1, subset_idx, psf)

        def _get_object_initial(self, device=None) -> torch.Tensor:
            return system.fov_mask()

    return PyTomographySystemMatrix()
