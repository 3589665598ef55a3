"""Files that travel inside the package (package data), as real paths.

The shipped models (``pvc_core/models/``) and the demo configuration (``pvc_core/config_demo.yaml``)
are package data, listed in ``pyproject.toml``'s ``[tool.setuptools.package-data]``, so a plain
``pip install .`` (not editable) carries them and ``dlpvc`` finds them from any folder. They are
found with :func:`importlib.resources.files`, never relative to the repository.

A wheel is installed unzipped, so ``files("pvc_core")`` is then a :class:`pathlib.Path` and is used
as it is. Only for a package imported from a zip archive is the resource extracted, once per
process, with :func:`importlib.resources.as_file` (kept until the interpreter exits; folders need
Python 3.12).
"""

from __future__ import annotations

import atexit
import contextlib
from importlib.resources import as_file, files
from pathlib import Path

__all__ = ["package_path"]

_extracted = contextlib.ExitStack()
atexit.register(_extracted.close)


def package_path(*parts: str) -> Path:
    """The real path of ``pvc_core/<parts...>`` (a file or folder of the installed package)."""
    resource = files("pvc_core")
    for part in parts:
        resource = resource / part
    if isinstance(resource, Path):
        return resource
    return _extracted.enter_context(as_file(resource))
