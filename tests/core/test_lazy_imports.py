"""Function-local imports: each one says what it keeps out of a start-up path (docs/architecture.md).

A function-local import stays only where it saves a measured start-up cost, with a comment
``# lazy: <what it saves>`` on its line or the line before; the imports that follow it in the same
block (blank lines between allowed) belong to its group. Every other import is at the module's
top. The start-up paths named there load none of the heavy dependencies they avoid.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = REPO / "pvc_core"
_IMPORTS = (ast.Import, ast.ImportFrom)


def _unmarked(path: Path) -> list[int]:
    """Lines of the function-local imports of ``path`` that carry no ``# lazy:`` comment."""
    lines = path.read_text().splitlines()
    found: list[int] = []

    def marked(node: ast.stmt) -> bool:
        here, before = lines[node.lineno - 1], lines[node.lineno - 2] if node.lineno > 1 else ""
        return "lazy:" in here or "lazy:" in before

    def block(statements: list[ast.stmt], in_function: bool) -> None:
        previous: ast.stmt | None = None
        previous_marked = False
        for node in statements:
            if isinstance(node, _IMPORTS) and in_function:
                gap = lines[previous.end_lineno:node.lineno - 1] if previous is not None else ["x"]
                grouped = (isinstance(previous, _IMPORTS) and previous_marked
                           and all(not g.strip() for g in gap))
                previous_marked = marked(node) or grouped
                if not previous_marked:
                    found.append(node.lineno)
            else:
                previous_marked = False
            previous = node
            inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            for field in ("body", "orelse", "finalbody"):
                if isinstance(getattr(node, field, None), list):
                    block(getattr(node, field), inner)
            for handler in getattr(node, "handlers", []):
                block(handler.body, inner)
            for case in getattr(node, "cases", []):
                block(case.body, inner)

    block(ast.parse("\n".join(lines)).body, False)
    return found


def test_every_function_local_import_says_why_it_is_lazy():
    unmarked = [f"{p.relative_to(REPO)}:{n}" for p in sorted(PACKAGE.rglob("*.py")) for n in _unmarked(p)]
    assert not unmarked, ("function-local imports without a '# lazy: <what it saves>' comment (hoist them to the "
                          "module's top, or say what they keep out of which start-up path): " + ", ".join(unmarked))


def test_the_check_sees_an_unmarked_import_and_accepts_a_marked_group(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("import os\n"
                   "def f():\n"
                   "    # lazy: x (~1 s)\n"
                   "    import json\n"
                   "\n"
                   "    import re\n"  # grouped under line 3's comment
                   "    x = 1\n"
                   "    import sys\n"  # 8: not marked
                   "class C:\n"
                   "    def g(self):\n"
                   "        if x:\n"
                   "            import csv  # lazy: y\n"
                   "        y = 2\n"
                   "        import abc\n")  # 14: not marked
    assert _unmarked(src) == [8, 14]


def _loaded(code: str, *prefixes: str) -> list[str]:
    probe = (f"{code}\nimport sys\n"
             f"print(sorted(m for m in sys.modules if m.split('.')[0] in {prefixes!r} or m in {prefixes!r}))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return eval(result.stdout.strip().splitlines()[-1])  # noqa: S307 - our own printed list


@pytest.mark.parametrize("argv", [["--help"], ["apply", "--help"]])
def test_help_loads_no_numeric_library(argv):
    code = ("import contextlib, io, sys\nfrom pvc_core.cli import main\n"
            f"with contextlib.redirect_stdout(io.StringIO()):\n    main({argv!r})")
    assert _loaded(code, "numpy", "torch", "monai", "matplotlib", "nibabel", "pydicom") == []


def test_the_snakefiles_planning_imports_load_no_torch():
    code = "import pvc_core.pipeline.case_stages, pvc_core.pipeline.fingerprints, pvc_core.pipeline.models"
    assert _loaded(code, "torch", "monai", "matplotlib", "pytomography", "numba") == []


def test_a_refused_input_loads_no_network_and_no_correction(tmp_path):
    code = ("import contextlib, io\nfrom pvc_core.cli import main\n"
            "with contextlib.redirect_stderr(io.StringIO()):\n"
            f"    assert main(['apply', '--input', {str(tmp_path / 'none.nii.gz')!r}, '--output', "
            f"{str(tmp_path / 'o.nii.gz')!r}]) == 2")
    assert _loaded(code, "torch", "monai", "matplotlib", "pvc_core.apply.correct") == []
