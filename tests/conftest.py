"""Shared test fixtures."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
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


@pytest.fixture(autouse=True, scope="session")
def shipped_models_only():
    """The tests see the models shipped in the package, whatever DLPVC_MODEL_DIR the user has set
    (tests of DLPVC_MODEL_DIR set it themselves with monkeypatch)."""
    import os

    old = os.environ.pop("DLPVC_MODEL_DIR", None)
    yield
    if old is not None:
        os.environ["DLPVC_MODEL_DIR"] = old


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


#: Where a test DAG run writes, relative to its working directory (config/test.yaml's results_dir).
TEST_RESULTS = Path("results") / "test"


def snakemake_cmd(workdir: Path, config: Path, *extra: str) -> list[str]:
    """The Snakemake command of a test DAG run in ``workdir`` (2 cores, keep going)."""
    return [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(config), "--cores", "2", "--keep-going", *extra]


def run_snakemake(workdir: Path, config: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_cmd(workdir, config, *extra), capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="session")
def faulty_then_rerun(tmp_path_factory):
    """The whole DAG on config/test.yaml, once per session: simulate, corrupt case 1's projections,
    run everything, keep what happened, then rerun (which redoes case 1 and what depends on it).
    test_dag.py checks the two runs; test_dag_fingerprints.py starts from a copy of the result."""
    wd = tmp_path_factory.mktemp("dag")
    config = REPO / "config" / "test.yaml"
    proc = run_snakemake(wd, config, *[str(TEST_RESULTS / "manifests" / "simulate" / f"shard{s:04d}.json")
                                       for s in (0, 1)])
    assert proc.returncode == 0, proc.stderr[-4000:]
    (wd / TEST_RESULTS / "cases" / "00001" / "proj_nf.hdr").write_text("!INTERFILE :=\ncorrupted by the test\n")
    first = run_snakemake(wd, config)
    assert first.returncode == 0, first.stderr[-4000:]
    state = {"report": (wd / TEST_RESULTS / "report" / "report.html").read_text(),
             "split": json.loads((wd / TEST_RESULTS / "splits.json").read_text()),
             "metrics": pd.read_csv(wd / TEST_RESULTS / "tables" / "metrics_main.csv")}
    second = run_snakemake(wd, config)
    assert second.returncode == 0, second.stderr[-4000:]
    return wd, state


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """An untrained fastMRI U-Net (4-8 channels) saved as a dlpvc ``model.pt`` with a card whose
    domain is the shipped model's but for any image total from 1 MBq: fast, deterministic, and what
    `dlpvc apply` needs to run an image end to end (values are not judged, only safety)."""
    import torch

    from pvc_core.apply.domain import domain_from_trained_for
    from pvc_core.networks import build_network
    from pvc_core.training.predict import CHECKPOINT_FORMAT, CHECKPOINT_VERSION

    folder = tmp_path_factory.mktemp("tiny_model") / "tiny"
    folder.mkdir()
    torch.manual_seed(0)
    cfg = {"architecture": "unet", "channels": [4, 8], "input": "full", "normalisation": "sum", "tta": False,
           "attenuation_channel": False}
    net = build_network("unet", cfg["channels"])
    torch.save({"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, "model_cfg": cfg,
                "network_kwargs": {}, "state_dict": net.state_dict()}, folder / "model.pt")
    trained_for = {"voxel_mm": [4.8] * 3, "matrix": [32] * 3, "isotope": "Lu-177",
                   "reconstruction": {"name": "RR", "method": "OSEM", "iterations": 6, "subsets": 6,
                                      "corrections": ["attenuation (CT-based mu map)", "scatter (tew)"]},
                   "count_level": {"total_activity_mbq": [1.0, 5000.0]}}
    card = {"model_cfg": cfg, "trained_for": trained_for, "domain": domain_from_trained_for(trained_for)}
    (folder / "model_card.json").write_text(json.dumps(card, indent=2))
    return folder / "model.pt"
