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


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    """Calibrations computed outside the DAG (dlpvc simulate, benchmarks) are cached under
    $XDG_CACHE_HOME; the tests use a fresh folder, never the user's."""
    import os

    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg_cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """A headless-capable Chromium executable (pvc_core.report.render.find_chromium), for tests
    that render HTML. Without one the test is skipped, unless DLPVC_REQUIRE_CHROMIUM=1 (set by
    .ci/run), which makes it fail instead, so CI cannot pass by skipping."""
    import os

    from pvc_core.report.render import find_chromium

    exe = find_chromium()
    if exe is None:
        why = "no Chromium (bash scripts/install_chromium.sh, or set DLPVC_CHROMIUM)"
        if os.environ.get("DLPVC_REQUIRE_CHROMIUM", "").strip().lower() in {"1", "true", "yes"}:
            pytest.fail(f"{why}; DLPVC_REQUIRE_CHROMIUM is set, so this cannot be skipped", pytrace=False)
        pytest.skip(why)
    return exe
