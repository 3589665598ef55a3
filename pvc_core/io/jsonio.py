"""JSON files written atomically (a killed job never leaves half a file)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from pvc_core.errors import InputError
from pvc_core.io.atomic import atomic_path


def _default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json(path: str | os.PathLike, data: Any, replace: bool = True) -> None:
    """Write ``data`` as indented JSON, whole or not at all (:func:`pvc_core.io.atomic.atomic_path`);
    ``replace=False`` refuses an existing ``path`` (:class:`FileExistsError`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, default=_default) + "\n"
    with atomic_path(path, replace=replace) as tmp:
        tmp.write_text(text)


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a missing or corrupt file raises :class:`InputError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"not valid JSON ({err.msg} at line {err.lineno})", path) from None
