"""Shared test fixtures."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PETPVC_CASE = REPO / "tests" / "data" / "petpvc_iy"  # PETPVC v1.2.12 iterative Yang reference (README.md there)


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny problems run faster on one torch thread (no OpenMP contention on a shared machine)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
