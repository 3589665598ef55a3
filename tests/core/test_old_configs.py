"""Old configurations still validate: the demo, test and paper configurations as they were at
3cd7c80 (before [3.2]) and at c456e3e (2026-12-02, milestone 2), copied into ``old_configs/``.

Those of 3cd7c80 keep the stage fingerprints they had, so a results folder made from them before
[3.2] is not redone: ``old_configs/fingerprints_3cd7c80.json`` holds them, written when they still
equalled today's configuration files' (before [3.3] moved the demo and paper configurations to
``scatter_correction: model``). Rewrite it only for a deliberate change of a stage's dependencies
(``.venv/bin/python tests/core/test_old_configs.py``), and say so in the commit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OLD = Path(__file__).with_name("old_configs")
PINNED = OLD / "fingerprints_3cd7c80.json"


def _settings(path: Path):
    from pvc_core.config import load_config
    from pvc_core.specs import Settings

    return Settings.from_config(load_config(path))


def _fingerprints(path: Path) -> dict[str, str]:
    from pvc_core.domain import RECONSTRUCTIONS
    from pvc_core.pipeline.fingerprints import StageGraph
    from pvc_core.pipeline.paths import CASE_STAGES

    graph = StageGraph(_settings(path))
    stages = [*CASE_STAGES, *(f"calibration_{r}" for r in RECONSTRUCTIONS), "split", "prune"]
    return {s: graph.fingerprint(s) for s in stages}


@pytest.mark.parametrize("path", sorted(OLD.glob("*.yaml")), ids=lambda p: p.stem)
def test_an_old_configuration_validates_and_parses(path):
    from pvc_core.domain import RECONSTRUCTIONS

    settings = _settings(path)
    assert settings.n_cases > 0 and set(settings.reconstructions) == set(RECONSTRUCTIONS)


@pytest.mark.parametrize("name", ["demo", "test", "paper"])
def test_a_configuration_from_before_3_2_keeps_its_fingerprints(name):
    pinned = json.loads(PINNED.read_text())
    assert _fingerprints(OLD / f"{name}_3cd7c80.yaml") == pinned[name]


def _write_fixture() -> None:
    PINNED.write_text(json.dumps({n: _fingerprints(OLD / f"{n}_3cd7c80.yaml") for n in ("demo", "test", "paper")},
                                 indent=1) + "\n")
    print(f"wrote {PINNED}")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    _write_fixture()
