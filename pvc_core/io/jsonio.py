"""JSON files written atomically (a killed job never leaves half a file)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from pvc_core.errors import InputError


def _default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON via a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_default) + "\n")
    os.replace(tmp, path)


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a missing or corrupt file raises :class:`InputError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"not valid JSON ({err.msg} at line {err.lineno})", path) from None
