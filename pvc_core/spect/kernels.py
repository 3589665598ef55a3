"""Fused CPU kernels of the projector (numba): splat + attenuate + depth ladder in one pass.

Why hand-written kernels: the projector's work is ``n_views x n_planes x n_u x n_z`` (about
2.6e8 nodes per projection at 128^3), and in torch each step (sparse splat, multiply by
``exp(-tau)``, assignment to the variance ladder, the 3-tap blur chain) is a separate pass over a
1 GB tensor. On a 2-core machine the projector is bound by memory traffic, not arithmetic, so
:mod:`pvc_core.spect.system_model` spent most of its time writing and re-reading intermediates
(profile in docs/performance.md). No kept library fuses a sparse gather with a per-element product and a
scatter into depth classes on the CPU (torch's sparse kernels accept one value per non-zero, not
one per z row; PyTomography rotates dense volumes per view). These kernels do the same arithmetic
as the torch path (:class:`~pvc_core.spect.system_model.SPECTSystem` with ``backend="torch"``,
kept for GPUs and as the reference) with each intermediate living in cache:

- :func:`splat_to_nodes`: per view, gather each rotated-frame node from its splat voxels,
  multiply by its attenuation factor and add it to its two ladder nodes (weights per view and
  plane). With one node and weight 1 it is the plain attenuated line sum (noRR).
- :func:`ladder_forward` / :func:`ladder_backward`: the variance ladder of
  :mod:`pvc_core.spect.cdr` per view, on a (n_u, n_z) working plane that stays in cache.
- :func:`nodes_to_object`: the adjoint of :func:`splat_to_nodes`, a scatter per view into a
  fixed number of partial images that are then summed in order.
- :func:`depth_classes`: for the scatter simulator, each node's attenuated activity spread
  over water-equivalent depth classes.

Every kernel parallelises over outputs that one iteration owns alone (a view, a ladder row, or
one of the :data:`VIEW_GROUPS` partial images) and adds in a fixed order, so results are
bit-identical for any number of threads.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from numba import njit, prange

#: numba's own thread pool, not OpenMP: with OpenMP, two single-thread jobs side by side (how the
#: DAG runs per-case stages) were 4x slower each, as idle OpenMP threads spin (measured: a 64^3
#: RR shard of 6 cases 23 s instead of 5.8 s).
numba.config.THREADING_LAYER = "workqueue"


def use_threads() -> None:
    """Run the kernels on as many threads as torch uses (a Snakemake job's ``threads``)."""
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


@njit(cache=True, boundscheck=False, inline="always")
def _gather_row(crow, cols, vals, f, r, tmp):  # pragma: no cover - compiled
    """tmp[z] = sum over row ``r`` of the splat map of weight x f[voxel, z]; False if the row is empty."""
    k0 = crow[r]
    k1 = crow[r + 1]
    if k0 == k1:
        return False
    for z in range(tmp.shape[0]):
        tmp[z] = 0.0
    for k in range(k0, k1):
        w = vals[k]
        c = cols[k]
        for z in range(tmp.shape[0]):
            tmp[z] += w * f[c, z]
    return True


@njit(parallel=True, cache=True, boundscheck=False)
def splat_to_nodes(crow, cols, vals, f, att, lo, w_lo, w_hi, out):  # pragma: no cover - compiled
    """Add the attenuated rotated planes of ``f`` to ladder nodes.

    crow, cols, vals: node-major CSR of the splat map (rows ``(view * n_s + s) * n_u + u`` of the
    block, columns voxel ``i * n_xy + j``); f: (B, n_vox, n_z); att: (V, n_s, n_u, n_z);
    lo, w_lo, w_hi: (V, n_s) ladder node of each plane and its two weights; out:
    (B, V, n_nodes, n_u, n_z), added to.
    """
    n_b = f.shape[0]
    n_v, n_s, n_u, n_z = att.shape
    for v in prange(n_v):
        tmp = np.empty(n_z, dtype=np.float32)
        for s in range(n_s):
            node = lo[v, s]
            wl = w_lo[v, s]
            wh = w_hi[v, s]
            for u in range(n_u):
                r = (v * n_s + s) * n_u + u
                if crow[r + 1] == crow[r]:
                    continue
                for b in range(n_b):
                    _gather_row(crow, cols, vals, f[b], r, tmp)
                    for z in range(n_z):
                        tmp[z] *= att[v, s, u, z]
                        out[b, v, node, u, z] += wl * tmp[z]
                    if wh != 0.0:
                        for z in range(n_z):
                            out[b, v, node + 1, u, z] += wh * tmp[z]


@njit(cache=True, boundscheck=False)
def _blur3(x, y, a):  # pragma: no cover - compiled
    """x <- [a, 1-2a, a] (x) x along both axes (u, z) with zero boundary; y is work space."""
    n_u, n_z = x.shape
    c = 1.0 - 2.0 * a
    if n_u == 1:
        for z in range(n_z):
            y[0, z] = c * x[0, z]
    else:  # along u into y; edges apart so that the z loops vectorise
        for z in range(n_z):
            y[0, z] = c * x[0, z] + a * x[1, z]
        for u in range(1, n_u - 1):
            for z in range(n_z):
                y[u, z] = c * x[u, z] + a * x[u - 1, z] + a * x[u + 1, z]
        for z in range(n_z):
            y[n_u - 1, z] = c * x[n_u - 1, z] + a * x[n_u - 2, z]
    for u in range(n_u):  # along z back into x
        if n_z == 1:
            x[u, 0] = c * y[u, 0]
            continue
        x[u, 0] = c * y[u, 0] + a * y[u, 1]
        for z in range(1, n_z - 1):
            x[u, z] = c * y[u, z] + a * y[u, z - 1] + a * y[u, z + 1]
        x[u, n_z - 1] = c * y[u, n_z - 1] + a * y[u, n_z - 2]


@njit(parallel=True, cache=True, boundscheck=False)
def ladder_forward(nodes, a, n_base, a_base, out):  # pragma: no cover - compiled
    """Variance ladder, far node first: ``acc = K_a(acc) + node_b``; then ``n_base`` steps of
    ``K_{a_base}``. nodes: (R, n_nodes, n_u, n_z) -> out (R, n_u, n_z)."""
    n_r, n_nodes, n_u, n_z = nodes.shape
    for r in prange(n_r):
        acc = np.empty((n_u, n_z), dtype=np.float32)
        work = np.empty((n_u, n_z), dtype=np.float32)
        acc[:, :] = nodes[r, n_nodes - 1]
        for b in range(n_nodes - 2, -1, -1):
            _blur3(acc, work, a)
            for u in range(n_u):
                for z in range(n_z):
                    acc[u, z] += nodes[r, b, u, z]
        for _ in range(n_base):
            _blur3(acc, work, a_base)
        out[r] = acc


@njit(parallel=True, cache=True, boundscheck=False)
def ladder_backward(proj, a, n_base, a_base, nodes):  # pragma: no cover - compiled
    """Adjoint of :func:`ladder_forward`: proj (R, n_u, n_z) -> nodes (R, n_nodes, n_u, n_z)."""
    n_r, n_nodes, n_u, n_z = nodes.shape
    for r in prange(n_r):
        cur = np.empty((n_u, n_z), dtype=np.float32)
        work = np.empty((n_u, n_z), dtype=np.float32)
        cur[:, :] = proj[r]
        for _ in range(n_base):
            _blur3(cur, work, a_base)
        nodes[r, 0] = cur
        for b in range(1, n_nodes):
            _blur3(cur, work, a)
            nodes[r, b] = cur


@njit(parallel=True, cache=True, boundscheck=False)
def depth_classes(crow, cols, vals, f, att, depth_nodes_cm, mu_water_per_cm, out):  # pragma: no cover - compiled
    """Attenuated activity of each node spread over water-equivalent depth classes (hat functions).

    f: (n_vox, n_z); att: (V, n_s, n_u, n_z); depth_nodes_cm: increasing (C,);
    out: (V, C, n_u, n_z), added to. The depth of a node is ``-ln(exp(-tau)) / mu_water``.
    """
    n_v, n_s, n_u, n_z = att.shape
    n_c = depth_nodes_cm.shape[0]
    for v in prange(n_v):
        tmp = np.empty(n_z, dtype=np.float32)
        for s in range(n_s):
            for u in range(n_u):
                r = (v * n_s + s) * n_u + u
                if not _gather_row(crow, cols, vals, f, r, tmp):
                    continue
                for z in range(n_z):
                    t = tmp[z] * att[v, s, u, z]
                    if t == 0.0:
                        continue
                    depth = -np.log(max(att[v, s, u, z], np.float32(1e-30))) / mu_water_per_cm
                    j = np.searchsorted(depth_nodes_cm, depth, side="right") - 1
                    j = min(max(j, 0), n_c - 2)
                    lo = depth_nodes_cm[j]
                    frac = min(max((depth - lo) / (depth_nodes_cm[j + 1] - lo), 0.0), 1.0)
                    out[v, j, u, z] += t * np.float32(1.0 - frac)
                    out[v, j + 1, u, z] += t * np.float32(frac)


#: Partial images of :func:`nodes_to_object` (fixed, so that results do not depend on threads).
VIEW_GROUPS = 2


@njit(parallel=True, cache=True, boundscheck=False)
def nodes_to_object(crow, cols, vals, nodes, att, lo, w_lo, w_hi, partial):  # pragma: no cover - compiled
    """Adjoint of :func:`splat_to_nodes` as a scatter per view into ``partial`` (G, B, n_vox, n_z).

    Views ``g, g + G, ...`` add into ``partial[g]``; the caller sums the G partial images in order.
    A gather per voxel (no partial images) was 3-10x slower: it reads each view's nodes and
    attenuation out of order.
    """
    n_g = partial.shape[0]
    n_b = nodes.shape[0]
    n_v, n_s, n_u, n_z = att.shape
    for g in prange(n_g):
        tmp = np.empty((n_b, n_z), dtype=np.float32)
        for v in range(g, n_v, n_g):
            for s in range(n_s):
                node = lo[v, s]
                wl = w_lo[v, s]
                wh = w_hi[v, s]
                for u in range(n_u):
                    r = (v * n_s + s) * n_u + u
                    k0 = crow[r]
                    k1 = crow[r + 1]
                    if k0 == k1:
                        continue
                    for b in range(n_b):
                        if wh != 0.0:
                            for z in range(n_z):
                                tmp[b, z] = att[v, s, u, z] * (wl * nodes[b, v, node, u, z]
                                                               + wh * nodes[b, v, node + 1, u, z])
                        else:
                            for z in range(n_z):
                                tmp[b, z] = att[v, s, u, z] * (wl * nodes[b, v, node, u, z])
                    for k in range(k0, k1):
                        w = vals[k]
                        c = cols[k]
                        for b in range(n_b):
                            for z in range(n_z):
                                partial[g, b, c, z] += w * tmp[b, z]
