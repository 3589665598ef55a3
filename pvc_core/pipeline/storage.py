"""Storage per case: bytes of every artefact, and pruning of intermediates users do not need.

At paper scale (10,000 cases) the projections (3 windows x noisy and noise-free) and the
phantom-grid images dominate the disk use; once both reconstructions of a case exist they are
needed again only to re-reconstruct. ``storage.keep_projections: false`` deletes them then, and
``storage.keep_sim_grid: false`` deletes the phantom-grid images (the truth on the
reconstruction grid, which evaluation uses, always stays).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from pvc_core.io import write_json
from pvc_core.pipeline import paths
from pvc_core.pipeline.shards import read_manifest

if TYPE_CHECKING:
    from pvc_core.specs import StorageSpec

#: Artefact groups by file-name pattern (first match wins).
ARTEFACTS = (
    ("metadata", re.compile(r"\.json$")),
    ("projections", re.compile(r"^proj_")),
    ("phantom grid images", re.compile(r"_sim\.nii\.gz$")),
    ("reconstructions", re.compile(r"^spect_")),
    ("truth and mu (recon grid)", re.compile(r"^(truth|mu)\.nii\.gz$")),
)


def artefact_of(name: str) -> str:
    for group, pattern in ARTEFACTS:
        if pattern.search(name):
            return group
    return "other"


def case_files(layout: paths.RunLayout, case: int) -> list[Path]:
    """Every file of a case: its folder under the results root and, when the layout has its own
    scratch root, its folder there (projections)."""
    folders = dict.fromkeys([layout.case_dir(case), layout.scratch_case_dir(case)])
    return [f for d in folders if d.is_dir() for f in sorted(d.iterdir()) if f.is_file()]


def case_bytes(layout: paths.RunLayout, case: int) -> dict[str, int]:
    """Bytes per artefact group of one case (both roots)."""
    out: dict[str, int] = {}
    for f in case_files(layout, case):
        g = artefact_of(f.name)
        out[g] = out.get(g, 0) + f.stat().st_size
    return out


def prune_shard(shard: int, cases: list[int], storage: "StorageSpec", layout: paths.RunLayout, recon_manifests: list[str],
                manifest_out: str, log: Callable[[str], None] = print) -> dict:
    """Record each finished case's storage, then delete what ``storage`` says not to keep."""
    done = set.intersection(*(set((read_manifest(m) or {}).get("done", [])) for m in recon_manifests))
    record: dict = {"stage": "prune", "shard": shard, "done": sorted(done), "failed": {}, "bytes": {}, "removed": {}}
    for case in sorted(done):
        record["bytes"][str(case)] = case_bytes(layout, case)
        removed = 0
        for f in case_files(layout, case):
            group = artefact_of(f.name)
            if (group == "projections" and not storage.keep_projections) or (
                    group == "phantom grid images" and not storage.keep_sim_grid):
                removed += f.stat().st_size
                f.unlink()
        record["removed"][str(case)] = removed
    log(f"prune shard {shard}: {len(done)} cases, removed {sum(record['removed'].values()) / 1e6:.1f} MB")
    write_json(manifest_out, record)
    return record
