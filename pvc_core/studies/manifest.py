"""A study's manifest: what the report renders of it (:func:`pvc_core.pipeline.paths.study_manifest`)."""

from __future__ import annotations

from pathlib import Path

from pvc_core.io import write_json
from pvc_core.pipeline import paths


def write_manifest(layout: paths.RunLayout, study: str, title: str, paragraphs: list[str],
                   tables: list[tuple[str, str]], figures: list[tuple[str, str]], meta: dict | None = None) -> Path:
    """Write ``studies/<study>.json``: title, paragraphs (plain text), tables ``(caption, csv name)``
    and figures ``(caption, png name)``, names relative to the study folder; ``meta`` (what the
    study was computed with) is kept beside them. Written last, so it marks the study as done."""
    for _, name in tables + figures:
        if not layout.study_file(name).is_file():
            raise FileNotFoundError(f"study {study}: {name} was not written")
    out = layout.study_manifest(study)
    write_json(out, {"title": title, "paragraphs": list(paragraphs),
                     "tables": [{"caption": c, "csv": n} for c, n in tables],
                     "figures": [{"caption": c, "png": n} for c, n in figures], "meta": meta or {}})
    return out
