"""The projector's CPU kernels (numba) against the torch reference path, and their invariants.

Known answers: the torch path (sparse matrices and tensor ops, the projector before the
kernels) gives the same operator to float32 rounding; the back projector is the exact adjoint;
results do not depend on the number of threads or on how many objects are projected together;
a batch of reconstructions equals each reconstruction alone, bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import REPO
from pvc_core.config import load_config
from pvc_core.spect.collimator import Collimator
from pvc_core.spect.geometry import attenuation_factors, sample_rotated, splat_matrices
from pvc_core.spect.orbit import view_angles_deg
from pvc_core.spect.simulate import simulate_collimator_tail, simulate_scatter
from pvc_core.spect.system_model import SPECTSystem
from pvc_core.specs import CameraSpec

CAMERA = CameraSpec.from_config(load_config(REPO / "config" / "test.yaml"))

N = 24
VIEWS = 12
VOXEL_MM = 9.6


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(3)
    c = np.arange(N) - (N - 1) / 2.0
    x, y = np.meshgrid(c, c, indexing="ij")
    body = (x / (0.38 * N)) ** 2 + (y / (0.28 * N)) ** 2 <= 1.0
    mu = np.where(body[:, :, None], 0.14, 0.0).astype(np.float32) * np.ones((1, 1, N), np.float32)
    mu[N // 2 - 2:N // 2 + 1, N // 2:N // 2 + 3, :] = 0.25  # a denser insert
    act = (rng.random((N, N, N)).astype(np.float32) * body[:, :, None]).astype(np.float32)
    angles = view_angles_deg(VIEWS, 0.0)
    radii = 180.0 + 40.0 * np.abs(np.sin(np.deg2rad(angles)))
    collimator = Collimator.from_spec(CAMERA.collimator)
    systems = {be: SPECTSystem(mu, VOXEL_MM, angles, radii, collimator, 2.5, subset_counts=(1, 2, 6), backend=be)
               for be in ("torch", "numba")}
    fov = torch.from_numpy(systems["torch"]._fov_disc().astype(np.float32))[:, :, None]
    return torch.from_numpy(act), systems, fov


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("psf", [False, True])
@pytest.mark.parametrize("subsets", [(None, None), (2, 1), (6, 4)])
def test_kernels_match_the_torch_projector(case, psf, subsets):
    act, systems, fov = case
    fwd = {be: s.forward(act, *subsets, psf=psf) for be, s in systems.items()}
    assert rel(fwd["numba"], fwd["torch"]) < 1e-5
    g = fwd["torch"] + 1.0
    bwd = {be: s.backward(g, *subsets, psf=psf) for be, s in systems.items()}
    # the kernels back-project into the activity support (the field of view) only
    assert rel(bwd["numba"], bwd["torch"] * fov) < 1e-5
    assert float(bwd["numba"][fov.expand_as(bwd["numba"]) == 0].abs().max()) == 0.0


@pytest.mark.parametrize("psf", [False, True])
def test_kernel_back_projection_is_the_adjoint(case, psf):
    act, systems, fov = case
    s = systems["numba"]
    g = torch.from_numpy(np.random.default_rng(5).random((VIEWS, N, N)).astype(np.float32))
    f = act * fov
    lhs = float((s.forward(f, psf=psf).double() * g.double()).sum())
    rhs = float((f.double() * s.backward(g, psf=psf).double()).sum())
    assert abs(lhs / rhs - 1.0) < 1e-6


def test_kernel_splat_and_attenuation_equal_the_reference(case):
    _, systems, _ = case
    s = systems["numba"]
    fr = s.frame
    for bi in range(s.n_blocks):
        blk = s.block(bi)
        angles = s.angles_deg[blk.views]
        ref, _ = splat_matrices(fr, angles, torch.device("cpu"), transpose=False, planes=blk.planes)
        keep = torch.from_numpy(s._support.ravel())
        dense_ref = ref.to_dense() * keep[None, :]
        assert torch.equal(blk.splat.to_dense(), dense_ref)
        att_ref = attenuation_factors(sample_rotated(s.mu, fr, angles, blk.planes), fr.voxel_mm)
        used = torch.from_numpy(np.diff(blk.splat.crow_indices().numpy()) > 0).view(len(blk.views), blk.planes[1], fr.n_u)
        mask = used[..., None].expand_as(att_ref)
        assert float((blk.attenuation - att_ref)[mask].abs().max()) < 1e-6
        assert float(blk.attenuation[~mask].abs().max()) == 0.0


@pytest.mark.parametrize("psf", [False, True])
def test_kernels_do_not_depend_on_threads_or_batch(case, psf):
    act, systems, _ = case
    s = systems["numba"]
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one_f = s.forward(act, psf=psf)
        one_b = s.backward(one_f, psf=psf)
        torch.set_num_threads(2)
        two_f = s.forward(act, psf=psf)
        two_b = s.backward(two_f, psf=psf)
    finally:
        torch.set_num_threads(old)
    assert torch.equal(one_f, two_f) and torch.equal(one_b, two_b)
    batch = s.forward(torch.stack([act, 3.0 * act]), psf=psf)
    assert torch.equal(batch[0], one_f)
    assert torch.equal(batch[1], s.forward(3.0 * act, psf=psf))
    back = s.backward(torch.stack([one_f, one_f + 1.0]), psf=psf)
    assert torch.equal(back[0], one_b) and torch.equal(back[1], s.backward(one_f + 1.0, psf=psf))


def test_scatter_and_tail_match_the_torch_path(case):
    act, systems, _ = case
    sc = {be: simulate_scatter(s, act, CAMERA.windows, orders=2, n_samples=20_000) for be, s in systems.items()}
    for w in sc["torch"]:
        assert rel(sc["numba"][w], sc["torch"][w]) < 1e-5
    tail = {be: simulate_collimator_tail(s, act) for be, s in systems.items()}
    assert rel(tail["numba"], tail["torch"]) < 1e-5


@pytest.mark.parametrize("method", ["noRR", "RR"])
def test_reconstructing_noise_levels_together_equals_one_by_one(method):
    """A batched OSEM run gives each image exactly (bit for bit) as its own run would."""
    import copy

    from pvc_core.spect import add_poisson_noise, reconstruct, reconstruct_together, simulate_projections
    from pvc_core.specs import GridSpec, recon_spec

    cfg = copy.deepcopy(load_config(REPO / "config" / "test.yaml"))
    cfg["grid"].update(recon_matrix=16, recon_voxel_mm=9.6, sim_factor=1)
    cfg["camera"]["n_views"] = 12
    cfg["reconstruction"][method].update(iterations=2, subsets=2)
    camera, grid = CameraSpec.from_config(cfg), GridSpec.from_config(cfg)
    c = np.arange(16) - 7.5
    x, y, z = np.meshgrid(c, c, c, indexing="ij")
    body = (x / 6.0) ** 2 + (y / 4.5) ** 2 <= 1.0
    mu = np.where(body, 0.14, 0.0).astype(np.float32)
    act = np.where(body, 0.05, 0.0).astype(np.float32)
    act[(x - 2) ** 2 + y ** 2 + z ** 2 <= 4] = 1.0
    nf = simulate_projections(act, mu, 9.6, camera, grid)
    n = add_poisson_noise(nf, np.random.default_rng(2))
    recon = recon_spec(cfg, method)
    together = reconstruct_together([n, nf], mu, recon, camera)
    assert np.array_equal(together[0], reconstruct(n, mu, recon, camera))
    assert np.array_equal(together[1], reconstruct(nf, mu, recon, camera))
    assert not np.array_equal(together[0], together[1])


@pytest.mark.parametrize("psf,subsets", [(False, 2), (True, 3)])
def test_osem_loop_equals_pytomography_osem(case, psf, subsets):
    """Our OSEM loop is PyTomography's OSEM + Poisson likelihood (additive term) on the same system."""
    from pvc_core.spect._pytomography import pytomography_on
    from pvc_core.spect.osem import osem
    from pvc_core.spect.system_model import make_pytomography_system_matrix
    from pytomography.algorithms import OSEM
    from pytomography.likelihoods import PoissonLogLikelihood

    act, systems, fov = case
    s = SPECTSystem(systems["numba"].mu.numpy(), VOXEL_MM, systems["numba"].angles_deg, systems["numba"].radii_mm,
                    Collimator.from_spec(CAMERA.collimator), 2.5, subset_counts=(1, subsets))
    expected = s.forward(act * fov, psf=psf)
    peak = torch.from_numpy(np.random.default_rng(9).poisson(expected.numpy() + 2.0).astype(np.float32))
    scatter = torch.full_like(peak, 2.0)
    ours = osem(s, peak[None], scatter[None], 3, subsets, psf)[0]
    with torch.no_grad(), pytomography_on("cpu"):
        likelihood = PoissonLogLikelihood(make_pytomography_system_matrix(s, psf), peak, additive_term=scatter)
        theirs = OSEM(likelihood, object_initial=s.fov_mask())(n_iters=3, n_subsets=subsets)
    assert rel(ours, theirs) < 1e-5


def test_a_case_is_bit_reproducible_for_any_thread_count():
    """Simulation, noise and both reconstructions: the same seed gives the same bytes, on one
    thread or two (the kernels own their outputs; torch's FFTs and element-wise ops here do too)."""
    from helpers.small_case import small_chain
    from pvc_core.spect.acquisition import NoiseSeed

    chain, act, mu = small_chain()
    old = torch.get_num_threads()
    runs = []
    try:
        for threads in (1, 1, 2):
            torch.set_num_threads(threads)
            from pvc_core.spect.system_cache import clear_system_cache

            clear_system_cache()
            runs.append(chain.acquire(act, mu, NoiseSeed(7, 3), calibration={"noRR": 1.0, "RR": 1.0}))
    finally:
        torch.set_num_threads(old)
    for other in runs[1:]:
        for level in ("n", "nf"):
            for w, a in runs[0].projections[level].windows.items():
                assert np.array_equal(a, other.projections[level].windows[w]), (level, w)
        for name, image in runs[0].images.items():
            assert np.array_equal(image, other.images[name]), name
