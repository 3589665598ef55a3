"""The conda environments in envs/ agree with requirements.txt.

envs/dlpvc.yaml and envs/petpvc.yaml install requirements.txt itself (``-r ../requirements.txt``);
an environment that lists packages by hand (envs/spect.yaml) must pin each package that
requirements.txt pins to the same version, and must hold every third-party package that
pvc_core.spect, and the job scripts of the rules that use the environment, import at module level.
The checks are plain functions, so that the tests at the end can show they fail on a bad file.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO

ENVS = sorted((REPO / "envs").glob("*.yaml"))
REQUIREMENTS = REPO / "requirements.txt"

CONDA_TO_PIP = {"pytorch": "torch"}  # conda-forge name -> name in requirements.txt
IMPORT_TO_DIST = {"yaml": "pyyaml", "skimage": "scikit-image", "PIL": "pillow", "sklearn": "scikit-learn"}
NOT_PYTHON_PACKAGES = {"python", "pip"}

_CONDA_SPEC = re.compile(r"^(?:[\w.-]+::)?([A-Za-z0-9_.-]+)\s*(?:(==|=|>=|<=|>|<|!=|~=)\s*([^=\s,]+))?")
_PIP_SPEC = re.compile(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*(?:(===|==|~=|>=|<=|>|<|!=)\s*([^\s,;]+))?")


def normalise(name: str) -> str:
    """A distribution name as pip compares it (PEP 503), conda names mapped to pip's."""
    name = re.sub(r"[-_.]+", "-", name).lower()
    return CONDA_TO_PIP.get(name, name)


def parse_requirements(text: str) -> dict[str, str]:
    """``{name: version}`` of the ``name==version`` lines of a requirements file."""
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = _PIP_SPEC.match(line)
        assert match and match.group(2) == "==", f"requirements.txt: {line!r} is not pinned with =="
        pins[normalise(match.group(1))] = match.group(3)
    return pins


def env_entries(text: str) -> tuple[list[tuple[str, str, str | None, str | None, str]], list[str]]:
    """The packages of a conda environment file as ``(kind, name, operator, version, entry)``
    (kind ``conda`` or ``pip``) and the files its pip section reads with ``-r``."""
    env = yaml.safe_load(text) or {}
    packages, included = [], []
    for dep in env.get("dependencies") or []:
        if isinstance(dep, dict):
            for entry in dep.get("pip") or []:
                entry = str(entry).strip()
                if entry.startswith(("-r", "--requirement")):
                    included.append(entry.split(None, 1)[1].strip() if " " in entry else entry[2:].strip())
                elif not entry.startswith("-"):
                    match = _PIP_SPEC.match(entry)
                    assert match, f"cannot read pip entry {entry!r}"
                    packages.append(("pip", normalise(match.group(1)), match.group(2), match.group(3), entry))
        else:
            entry = str(dep).strip()
            match = _CONDA_SPEC.match(entry)
            assert match, f"cannot read conda entry {entry!r}"
            packages.append(("conda", normalise(match.group(1)), match.group(2), match.group(3), entry))
    return packages, included


def pin_mismatches(text: str, pins: dict[str, str]) -> list[str]:
    """One sentence per package of requirements.txt that the environment lists with another version
    (or without an exact pin: ``==`` for pip, ``==`` or ``=`` for conda)."""
    found = []
    packages, _ = env_entries(text)
    for kind, name, op, version, entry in packages:
        if name not in pins:
            continue
        exact = op == "==" or (kind == "conda" and op == "=")
        if not exact or version != pins[name]:
            found.append(f"{kind} entry {entry!r}, but requirements.txt pins {name}=={pins[name]}")
    return found


def missing_packages(text: str, required: set[str]) -> list[str]:
    """The required distributions that the environment lists neither for conda nor for pip."""
    listed = {name for _, name, _, _, _ in env_entries(text)[0]}
    return sorted(normalise(name) for name in required if normalise(name) not in listed)


# -- what the code imports ------------------------------------------------------------------------


def _module_file(module: str) -> Path | None:
    path = REPO.joinpath(*module.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


def _module_level_imports(path: Path, module: str) -> list[str]:
    """Absolute names of the imports run when the file is imported (not those inside functions)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: list[str] = []

    def visit(statements):
        for node in statements:
            if isinstance(node, ast.Import):
                names.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                else:
                    base = node.module
                names.append(base)
                names.extend(f"{base}.{alias.name}" for alias in node.names)
            elif isinstance(node, (ast.If, ast.Try, ast.With)):
                for field in ("body", "orelse", "finalbody"):
                    visit(getattr(node, field, None) or [])
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(ast.parse(path.read_text()).body)
    return names


def third_party_imports(modules: list[str] = (), files: list[Path] = ()) -> set[str]:
    """Distributions imported at module level by the modules or files, following pvc_core's own
    imports (and their parent packages) to the end."""
    third: set[str] = set()
    seen: set[str] = set()
    todo: list[tuple[str, Path | None]] = [(m, None) for m in modules] + [(f"<{f}>", f) for f in files]
    while todo:
        module, path = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        if path is None:
            parts = module.split(".")
            todo.extend((".".join(parts[:i]), None) for i in range(1, len(parts)))
            path = _module_file(module)
            if path is None:
                continue  # a name imported from a module, not a module
        for name in _module_level_imports(path, module if not module.startswith("<") else ""):
            root = name.split(".")[0]
            if root == "pvc_core":
                todo.append((name, None))
            elif root and root != "__future__" and root not in sys.stdlib_module_names:
                third.add(IMPORT_TO_DIST.get(root, root))
    return third


def spect_modules() -> list[str]:
    return [f"pvc_core.spect.{p.stem}" if p.stem != "__init__" else "pvc_core.spect"
            for p in sorted((REPO / "pvc_core" / "spect").glob("*.py"))]


def scripts_using_env(env: Path) -> list[Path]:
    """The ``script:`` files of the rules (Snakefile, rules/*.smk) whose ``conda:`` is ``env``."""
    scripts = []
    for smk in [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]:
        if not smk.is_file():
            continue
        for block in re.split(r"^(?:rule|checkpoint)\s+\w+\s*:", smk.read_text(), flags=re.M)[1:]:
            conda = re.search(r"^\s+conda:\s*\n?\s*[\"']([^\"']+)[\"']", block, flags=re.M)
            script = re.search(r"^\s+script:\s*\n?\s*[\"']([^\"']+)[\"']", block, flags=re.M)
            if conda and script and (smk.parent / conda.group(1)).resolve() == env.resolve():
                scripts.append((smk.parent / script.group(1)).resolve())
    return scripts


def required_by(env: Path) -> set[str]:
    return third_party_imports(spect_modules(), scripts_using_env(env))


# -- the repository's files ---------------------------------------------------------------------


def test_requirements_pin_every_package():
    pins = parse_requirements(REQUIREMENTS.read_text())
    assert {"torch", "numpy", "scipy", "pytomography"} <= set(pins)


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.name)
def test_env_pins_the_versions_of_requirements(env):
    assert pin_mismatches(env.read_text(), parse_requirements(REQUIREMENTS.read_text())) == []


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.name)
def test_env_reads_requirements_or_lists_what_the_code_imports(env):
    _, included = env_entries(env.read_text())
    for name in included:
        assert (env.parent / name).resolve() == REQUIREMENTS, f"{env.name}: -r {name} is not requirements.txt"
    if included:
        return  # requirements.txt brings everything
    assert missing_packages(env.read_text(), required_by(env)) == []


def test_spect_imports_are_found():
    """The import scan sees what pvc_core.spect needs (a scan that found nothing would pass anything)."""
    assert {"numpy", "scipy", "torch", "pytomography"} <= third_party_imports(spect_modules())
    assert scripts_using_env(REPO / "envs" / "spect.yaml"), "no rule found that uses envs/spect.yaml"


# -- the checks fail on bad files ---------------------------------------------------------------

PINS = {"torch": "2.13.0", "numpy": "2.4.6", "pytomography": "3.4.0"}


@pytest.mark.parametrize("entry", ["conda: pytorch>=2.11", "conda: numpy=2.0", "conda: numpy",
                                   "pip: pytomography==3.3.0", "pip: torch>=2.13.0", "conda: pytorch=2.12.0=*cuda*"])
def test_mismatched_pin_is_reported(entry):
    kind, spec = entry.split(": ")
    listed = f"  - pip:\n      - {spec}\n" if kind == "pip" else f"  - {spec}\n"
    text = f"name: x\ndependencies:\n  - python=3.11\n{listed}"
    found = pin_mismatches(text, PINS)
    assert len(found) == 1 and spec in found[0]


def test_matching_pins_and_other_packages_pass():
    text = ("dependencies:\n  - python=3.11\n  - pytorch==2.13.0=*cuda*\n  - numpy=2.4.6\n  - petpvc>=1.2.11\n"
            "  - pip\n  - pip:\n      - pytomography==3.4.0\n      - -e ..\n")
    assert pin_mismatches(text, PINS) == []


def test_missing_package_is_reported():
    text = "dependencies:\n  - pytorch==2.13.0\n  - pip:\n      - pytomography==3.4.0\n"
    assert missing_packages(text, {"torch", "pytomography", "numpy", "pyyaml"}) == ["numpy", "pyyaml"]
