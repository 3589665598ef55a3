"""``dlpvc plan``: what a run of a configuration would redo, stage by stage, and why.

For each per-case stage it reads every case's marker and compares the recorded dependencies
with the current ones (:mod:`pvc_core.pipeline.fingerprints`): a case is *new* (no marker),
*changed* (the settings that differ are named) or *done*. For each fan-in job it compares the
record under ``fingerprints/``. The answer agrees with Snakemake's, which reruns a job exactly
when its fingerprint parameter changed, but names the setting instead of "params changed".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pvc_core.domain import DATASETS, RECONSTRUCTIONS
from pvc_core.io import read_json
from pvc_core.pipeline.fingerprints import StageGraph, changed_keys, fingerprint
from pvc_core.pipeline.paths import CASE_STAGES, STAGES, STUDIES, RunLayout
from pvc_core.pipeline.models import main_models, model_specs
from pvc_core.specs import Settings


@dataclass
class StagePlan:
    """What one stage (or fan-in job) would do."""

    stage: str
    total: int
    new: int = 0
    changed: int = 0
    reasons: Counter = field(default_factory=Counter)

    @property
    def redo(self) -> int:
        return self.new + self.changed

    def line(self) -> str:
        unit = "case" if self.total != 1 or self.stage in CASE_STAGES else "job"
        if not self.redo:
            return f"{self.stage}: nothing to redo ({self.total} {unit}{'s' if self.total != 1 else ''} up to date)"
        why = []
        if self.new:
            why.append(f"{self.new} not done yet")
        if self.changed:
            keys = ", ".join(k for k, _ in self.reasons.most_common(6))
            more = "" if len(self.reasons) <= 6 else f" and {len(self.reasons) - 6} more"
            why.append(f"{self.changed} changed: {keys}{more}")
        if self.stage in CASE_STAGES:
            return f"{self.stage}: redo {self.redo} of {self.total} cases ({'; '.join(why)})"
        return f"{self.stage}: redo ({'; '.join(why)})"


def _read(path: Path) -> dict | None:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def plan(settings: Settings) -> list[StagePlan]:
    """The plan of every stage of ``settings`` (in the order of :data:`~pvc_core.pipeline.paths.STAGES`)
    against what its results folder holds."""
    specs, sweep = model_specs(settings.training)
    graph = StageGraph(settings, specs)
    layout = RunLayout.of(settings)
    out: list[StagePlan] = []
    for stage in CASE_STAGES:
        current = graph.dependencies(stage)
        fp = fingerprint(current)
        sp = StagePlan(stage, settings.n_cases)
        for case in range(settings.n_cases):
            marker = _read(layout.marker_file(case, stage))
            if marker is None:
                sp.new += 1
            elif marker.get("fingerprint") != fp:
                sp.changed += 1
                sp.reasons.update(changed_keys(marker.get("depends_on"), current) or ["code or outputs of this stage"])
        out.append(sp)
    main = list(main_models(settings.training))
    each = {"recon": RECONSTRUCTIONS, "training": list(graph.training_specs), "model": list(specs),
            "dataset": DATASETS, "study": STUDIES}
    current_of: dict[str, dict] = {}
    per_case = {*CASE_STAGES, "recon_{recon}", "prune"}  # above; prune records bytes, nothing to redo
    for pattern in STAGES:
        if pattern in per_case:
            continue
        if pattern == "evaluate":
            current_of["evaluate_main"] = graph.evaluate_dependencies(main)
            if sweep:
                current_of["evaluate_sweep"] = graph.evaluate_dependencies(sweep)
        elif pattern == "report":
            current_of["report"] = graph.report_dependencies(main, sweep)
        elif "{" in pattern:
            key = pattern[pattern.index("{") + 1:pattern.index("}")]
            current_of.update({j: graph.dependencies(j) for j in (pattern.format(**{key: v}) for v in each[key])})
        else:
            current_of[pattern] = graph.dependencies(pattern)
    for job, current in current_of.items():
        record = _read(layout.fan_in_record(job))
        sp = StagePlan(job, 1)
        if record is None:
            sp.new = 1
        else:
            keys = changed_keys(record.get("depends_on"), current)
            if keys:
                sp.changed = 1
                sp.reasons.update(keys)
        out.append(sp)
    return out


def plan_lines(settings: Settings) -> list[str]:
    """One line per stage, for ``dlpvc plan``."""
    return [sp.line() for sp in plan(settings)]
