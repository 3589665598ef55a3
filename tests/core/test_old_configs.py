"""Old configurations still validate: the demo, test and paper configurations as they were at
3cd7c80 (before [3.2]) and at c456e3e (2026-12-02, milestone 2), copied into ``old_configs/``.

Those of 3cd7c80 differ from today's only in comments, so they must give today's settings and
every stage's fingerprint: a user's results folder made before [3.2] is not redone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pvc_core.config import load_config
from pvc_core.domain import RECONSTRUCTIONS
from pvc_core.pipeline.fingerprints import CASE_STAGES, StageGraph
from pvc_core.specs import Settings

REPO = Path(__file__).resolve().parents[2]
OLD = Path(__file__).with_name("old_configs")
TODAY = {"demo": "config.yaml", "test": "config/test.yaml", "paper": "config/paper.yaml"}


@pytest.mark.parametrize("path", sorted(OLD.glob("*.yaml")), ids=lambda p: p.stem)
def test_an_old_configuration_validates_and_parses(path):
    settings = Settings.from_config(load_config(path))
    assert settings.n_cases > 0 and set(settings.reconstructions) == set(RECONSTRUCTIONS)


@pytest.mark.parametrize("name", sorted(TODAY))
def test_a_configuration_from_before_3_2_keeps_its_settings_and_fingerprints(name):
    old = Settings.from_config(load_config(OLD / f"{name}_3cd7c80.yaml"))
    new = Settings.from_config(load_config(REPO / TODAY[name]))
    assert old == new
    stages = [*CASE_STAGES, *(f"calibration_{r}" for r in RECONSTRUCTIONS), "split", "prune"]
    assert {s: StageGraph(old).fingerprint(s) for s in stages} == {s: StageGraph(new).fingerprint(s) for s in stages}
