"""A plain, non-editable install carries the shipped model and the demo configuration.

The package is built into a wheel (pip, offline, the setuptools of this venv) from a copy of the
files the build reads, installed with ``pip install --no-deps`` into a fresh virtual environment,
and run from a folder without the repository: ``dlpvc models`` lists the shipped model,
``dlpvc apply`` corrects an image with it, ``dlpvc simulate --help`` works and its default
configuration loads. The new venv finds the dependencies through a ``.pth`` file naming this venv's
site-packages: it is read after the new venv's own site-packages, so ``pvc_core`` is the wheel's,
and the folders it names are not scanned for ``.pth`` files, so the editable install here stays off.
About 10 s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

REPO = Path(__file__).resolve().parents[2]


def _run(cmd: list[str], cwd: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _build_tree(dest: Path) -> Path:
    """Copy what building the wheel reads (pyproject.toml, top-level files it may name, the packages
    [tool.setuptools.packages.find] includes) to ``dest``, so the build leaves nothing in the repository."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    dest.mkdir()
    for item in REPO.iterdir():
        if item.is_file() and not item.is_symlink():
            shutil.copy2(item, dest / item.name)
        elif item.is_dir() and (item / "__init__.py").is_file() and any(fnmatch(item.name, g) for g in include):
            shutil.copytree(item, dest / item.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict]:
    """(bin folder, environment) of a fresh venv with the wheel installed."""
    try:
        import setuptools  # noqa: F401  (the build backend, used without network)
    except ImportError:
        pytest.skip("setuptools is not installed in this venv: cannot build the wheel offline")
    work = tmp_path_factory.mktemp("wheel")
    src = _build_tree(work / "src")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(work / "dist"), str(src)], cwd=work)
    (wheel,) = (work / "dist").glob("dlpvc-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"pvc_core/models/registry.json", "pvc_core/models/dlpvc_shipped/model.pt", "pvc_core/models/dlpvc_RR/model.pt",
            "pvc_core/models/dlpvc_shipped/model_card.json", "pvc_core/config_demo.yaml",
            "pvc_core/config_schema.yaml"} <= names
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=work)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
          str(wheel)], cwd=work)
    purelib = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        cwd=work).stdout.strip())
    deps = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (purelib / "zz_dlpvc_test_deps.pth").write_text("".join(f"{d}\n" for d in deps))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "DLPVC_MODEL_DIR")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONNOUSERSITE="1")
    return venv / "bin", env


def test_a_non_editable_install_finds_its_model_and_config_from_any_folder(installed, tmp_path):
    bin_dir, env = installed
    venv = bin_dir.parent
    here = tmp_path / "elsewhere"
    here.mkdir()
    where = _run([str(bin_dir / "python"), "-c", "import pvc_core, pvc_core.apply.model as m; "
                  "print(pvc_core.__file__); print(m.SHIPPED_MODEL_DIR)"], cwd=here, env=env).stdout.split()
    assert all(Path(p).is_relative_to(venv) for p in where), where

    out = _run([str(bin_dir / "dlpvc"), "models", "--json"], cwd=here, env=env).stdout
    models = {m["name"]: m for m in json.loads(out)}
    assert set(models) == {"dlpvc_RR", "dlpvc_noRR", "dlpvc_shipped"}
    model = models["dlpvc_RR"]
    assert model["default_for"] == "RR" and models["dlpvc_noRR"]["default_for"] == "noRR"
    assert Path(model["path"]).is_relative_to(venv)

    import nibabel as nib

    act = np.zeros((24, 24, 24), np.float32)
    act[6:18, 7:17, 5:19] = 1.0
    act[9:13, 9:13, 9:13] = 4.0
    act = gaussian_filter(act, 1.5)
    act *= 200.0 / (act.sum(dtype=np.float64) * 4.8 ** 3 / 1000)  # 200 MBq
    nib.save(nib.Nifti1Image(act, np.diag([4.8, 4.8, 4.8, 1.0])), here / "spect.nii.gz")
    _run([str(bin_dir / "dlpvc"), "apply", "--input", "spect.nii.gz", "--output", "out.nii.gz",
          "--reconstruction", "RR"], cwd=here, env=env)
    side = json.loads((here / "out.json").read_text())
    assert side["model"]["name"] == "dlpvc_RR" and (here / "out.nii.gz").is_file()

    assert "--config" in _run([str(bin_dir / "dlpvc"), "simulate", "--help"], cwd=here, env=env).stdout
    loaded = _run([str(bin_dir / "python"), "-c", "from pvc_core.config import DEMO_CONFIG_PATH, load_config; "
                   "from pvc_core.specs import Settings; s = Settings.from_config(load_config(DEMO_CONFIG_PATH)); "
                   "print(DEMO_CONFIG_PATH); print(s.grid.recon_matrix)"], cwd=here, env=env).stdout.split()
    assert Path(loaded[0]).is_relative_to(venv) and loaded[1] == "64"
    assert Path(loaded[0]).read_bytes() == (REPO / "config.yaml").read_bytes()
