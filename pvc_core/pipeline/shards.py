"""Shards: a job handles a block of cases, finishing each on its own.

Why shards: Snakemake's planning cost grows with the number of jobs (a dry run of 10,000 cases x
7 per-case rules takes minutes). A shard job processes ``cases_per_shard`` consecutive cases, so
the DAG has ``n_cases / cases_per_shard`` jobs per stage, while a case stays the unit of work:

* a case whose outputs are complete (its marker file exists) is skipped, so a killed or rerun
  job never redoes a finished case;
* a case that raises is recorded as failed in the shard's manifest and the others go on;
* :func:`retry_token` turns a manifest's failures into a rule parameter, so the next
  ``snakemake`` run sees a changed parameter and reruns exactly the shards with failures (which
  then redo only their failed cases). Shards without failures keep the same token and stay done.

Snakemake deletes a job's outputs (the manifest) before it runs the job, and a job that runs in
its own process (SLURM, or a local ``script:`` job) evaluates its parameters again after that
deletion. So every shard also keeps a copy of its manifest that is not a Snakemake output
(:func:`state_path`, under ``state/`` beside the manifests): the retry token and the attempt
counter are read from it, and the token a job computes for itself equals the one Snakemake
recorded when it planned the job.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

from pvc_core.io.jsonio import write_json
from pvc_core.pipeline.paths import RunLayout


def n_shards(n_cases: int, cases_per_shard: int) -> int:
    """Number of shards that cover ``n_cases`` cases."""
    return (n_cases + cases_per_shard - 1) // cases_per_shard


def shard_cases(shard: int, n_cases: int, cases_per_shard: int) -> list[int]:
    """Case ids (0-based) in ``shard``."""
    if not 0 <= shard < n_shards(n_cases, cases_per_shard):
        raise ValueError(f"shard {shard} out of range for {n_cases} cases in shards of {cases_per_shard}")
    start = shard * cases_per_shard
    return list(range(start, min(start + cases_per_shard, n_cases)))


def read_manifest(path: str | Path) -> dict | None:
    """A shard manifest, or ``None`` if it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def state_path(manifest_path: str | Path) -> Path:
    """The shard's persistent copy of its manifest (never deleted by Snakemake)."""
    p = Path(manifest_path)
    return p.parent / "state" / p.name


def _last_run(manifest_path: str | Path) -> dict | None:
    """What the shard's last run recorded: the persistent copy, else the manifest itself."""
    return read_manifest(state_path(manifest_path)) or read_manifest(manifest_path)


def retry_token(path: str | Path, is_done: Callable[[int], bool] | None = None) -> str:
    """Rule parameter that changes exactly when a finished shard has cases to redo.

    Cases to redo are the manifest's failed cases and, when ``is_done`` is given, cases the
    manifest lists as done whose outputs have since been invalidated (a downstream stage found
    them corrupt and removed their marker). ``""`` when there is nothing to redo; otherwise the
    ids and the attempt number, which every attempt increments, so each rerun retries them.
    """
    m = _last_run(path)
    if not m:
        return ""
    redo = set(m.get("failed") or {})
    if is_done is not None:
        redo |= {str(c) for c in m.get("done", []) if not is_done(int(c))}
    if not redo:
        # Nothing to redo: the token the shard last ran with, so that it stays unchanged.
        return m.get("token", "")
    return "retry:" + ",".join(sorted(redo, key=int)) + f"#{m.get('attempt', 1)}"


def failed_cases(manifests: Iterable[str | Path]) -> dict[int, str]:
    """Failed case ids and their reasons from several shard manifests."""
    out: dict[int, str] = {}
    for p in manifests:
        m = read_manifest(p) or {}
        for case, reason in m.get("failed", {}).items():
            out[int(case)] = f"{m.get('stage', '?')}: {reason}"
    return out


@dataclass(frozen=True)
class ShardJob:
    """What every per-case stage's shard job is given besides its settings: the shard and its
    cases, the results folder, the manifests of the stages it reads (their failed cases are not
    tried), where its own manifest goes, its fingerprint and dependencies (recorded in each
    case's marker), the log and the retry token it was started with (:func:`retry_token`)."""

    shard: int
    cases: list[int]
    layout: RunLayout
    manifest_out: str
    fingerprint: str
    depends_on: Mapping
    upstream: tuple[str, ...] = ()
    log: Callable[[str], None] = print
    token: str = ""


class UpstreamCorrupt(Exception):
    """A case's input from an earlier stage cannot be read; that stage must redo the case."""

    def __init__(self, stage: str, message: str) -> None:
        self.stage = stage
        super().__init__(f"input from stage '{stage}' is unreadable ({message}); it is redone on the next run")


def run_shard(stage: str, shard: int, cases: list[int], *, is_done: Callable[[int], bool],
              process: Callable[[int], None], manifest_path: str | Path,
              upstream_failed: dict[int, str] | None = None, log: Callable[[str], None] = print,
              token: str = "") -> dict:
    """Process every case of a shard that is not done yet; record what happened.

    ``process(case)`` must write the case's outputs with its marker file last. ``token`` is the
    retry token the job was started with (see :func:`retry_token`); the manifest keeps it. A case listed in
    ``upstream_failed`` is recorded as failed without being tried. Exceptions are caught per
    case: the message (one line) goes to the manifest, the traceback to the log.
    """
    previous = _last_run(manifest_path) or {}
    manifest = {"stage": stage, "shard": shard, "cases": cases, "done": [], "skipped": [], "failed": {},
                "seconds": {}, "attempt": int(previous.get("attempt", 0)) + 1, "token": token}
    for case in cases:
        if upstream_failed and case in upstream_failed:
            manifest["failed"][str(case)] = f"not run: {upstream_failed[case]}"
            log(f"[{stage}] case {case}: skipped, upstream failed ({upstream_failed[case]})")
            continue
        if is_done(case):
            manifest["done"].append(case)
            manifest["skipped"].append(case)
            log(f"[{stage}] case {case}: already done, skipped")
            continue
        t0 = time.perf_counter()
        try:
            process(case)
        except Exception as err:  # one case must not stop the others
            msg = f"{type(err).__name__}: {err}".splitlines()[0]
            manifest["failed"][str(case)] = msg
            log(f"[{stage}] case {case}: FAILED: {msg}\n{traceback.format_exc()}")
            continue
        dt = time.perf_counter() - t0
        manifest["done"].append(case)
        manifest["seconds"][str(case)] = round(dt, 3)
        log(f"[{stage}] case {case}: done in {dt:.2f} s")
    write_json(state_path(manifest_path), manifest)
    write_json(manifest_path, manifest)
    return manifest
