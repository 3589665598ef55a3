"""The floors of pvc_core hold: ``lint-imports`` keeps the layers contract of ``pyproject.toml``.

The contract (``[tool.importlinter]``, explained in docs/architecture.md) says which package may
import which: a floor imports only the floors below it. CI runs ``lint-imports`` too (.ci/run);
this test makes the README's test command enforce it as well. grimp reads every import
statement, function-local ones included, so a lazy import does not escape the check.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import REPO

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(*args: str) -> subprocess.CompletedProcess:
    if not LINT_IMPORTS.is_file():
        pytest.fail(f"{LINT_IMPORTS} is missing: install requirements.txt (import-linter)")
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def test_layers_contract_is_kept():
    result = lint_imports()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "1 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    """The contract is not vacuous: with training above pipeline (the old order), the pipeline's
    imports of training are reported."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = config["contracts"]
    layers = list(contract["layers"])
    i, j = layers.index("pipeline"), layers.index("training | calibration")
    layers[i], layers[j] = layers[j], layers[i]
    quoted = lambda items: "[" + ", ".join(f'"{x}"' for x in items) + "]"  # noqa: E731
    (tmp_path / "swapped.toml").write_text(
        f'[tool.importlinter]\nroot_package = "{config["root_package"]}"\n\n'
        f'[[tool.importlinter.contracts]]\nname = "swapped"\ntype = "layers"\n'
        f'containers = {quoted(contract["containers"])}\nlayers = {quoted(layers)}\n'
        f'ignore_imports = {quoted(contract["ignore_imports"])}\n')
    result = lint_imports("--config", str(tmp_path / "swapped.toml"))
    assert result.returncode != 0
    assert "pvc_core.pipeline is not allowed to import pvc_core.training" in result.stdout
