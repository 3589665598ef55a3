"""Settings are plain data: the specs of config.yaml, config/test.yaml and config/paper.yaml, and the
fingerprint of every stage built from them, are the ones recorded in ``settings_pinned.json``.

The fixture was written when the camera still held the spect package's ``Collimator`` and
``EnergyWindows`` and the phantom settings lived in ``pvc_core.phantom.settings``; the settings floor
now holds plain dataclasses with the same fields in the same order (``CollimatorSpec``,
``EnergyWindowsSpec``, ``Grid``, ``PhantomSettings``), so ``spec_dict`` and every fingerprint are
unchanged and no finished case is redone. The code versions the fixture was written with are
patched in, so a later bump of :data:`~pvc_core.pipeline.fingerprints.CODE_VERSIONS` does not
break this test; a deliberate change of a configuration or of a spec's fields does. Then rewrite
the fixture (``.venv/bin/python tests/core/test_settings_pinned.py``) and say so in the commit.

The phantom specs were rewritten (only they) when ``PhantomSettings`` gained ``uptake`` ([3.3]):
its default gives every case the random shapes as before, the phantom fingerprint leaves the
uptake keys out while no case can be patient-like, so every recorded fingerprint still holds.
The camera specs were rewritten (only they) when ``OrbitSpec`` gained ``shape`` ([3.3]): its
default is the paper's body contour, which the fingerprints leave out, so they hold too.
The fingerprints of config.yaml and config/paper.yaml were rewritten when the scatter model's fit
became a dependency of the reconstructions that use it (``code.scatter_model``, fit version 2,
[3.3]): their reconstructions and calibrations and everything after them; config/test.yaml's
(TEW) did not change.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).with_name("settings_pinned.json")
CONFIGS = ("config.yaml", "config/test.yaml", "config/paper.yaml")
#: The sections whose specs moved to the settings floor, written out with ``spec_dict``.
SECTIONS = ("grid", "phantom", "camera")


def _stage_fingerprints(config_name: str) -> dict[str, str]:
    """Fingerprint of every stage of one configuration (per-case and fan-in stages, every training
    and model, the studies, the evaluation of the main models and the report)."""
    from pvc_core.config import load_config
    from pvc_core.domain import DATASETS, RECONSTRUCTIONS
    from pvc_core.pipeline import fingerprints
    from pvc_core.pipeline.models import main_models, model_specs
    from pvc_core.pipeline.paths import STUDIES
    from pvc_core.specs import Settings

    settings = Settings.from_config(load_config(REPO / config_name))
    graph = fingerprints.StageGraph(settings, model_specs(settings.training)[0])
    stages = [*fingerprints.CASE_STAGES, *(f"calibration_{r}" for r in RECONSTRUCTIONS), "prune", "split",
              *(f"resolution_{r}" for r in RECONSTRUCTIONS), *(f"train_{t}" for t in graph.training_specs),
              *(f"predict_{m}" for m in graph.model_specs), *(f"iy_{d}" for d in DATASETS),
              *(f"deconv_{d}" for d in DATASETS), *(f"study_{s}" for s in STUDIES), "montage"]
    out = {stage: graph.fingerprint(stage) for stage in stages}
    main = list(main_models(settings.training))
    out["evaluate"] = fingerprints.fingerprint(graph.evaluate_dependencies(main))
    out["report"] = fingerprints.fingerprint(graph.report_dependencies(main))
    return out


def _specs(config_name: str) -> dict[str, str]:
    """JSON of the moved sections' specs in field order (what outputs record and the fingerprints hash)."""
    from pvc_core.config import load_config
    from pvc_core.specs import Settings, spec_dict

    settings = Settings.from_config(load_config(REPO / config_name))
    return {s: json.dumps(spec_dict(getattr(settings, s)), separators=(",", ":"), default=str)
            for s in SECTIONS}


@pytest.fixture(scope="module")
def pinned() -> dict:
    return json.loads(FIXTURE.read_text())


@pytest.fixture
def recorded_code_versions(pinned, monkeypatch):
    from pvc_core.pipeline import fingerprints

    monkeypatch.setattr(fingerprints, "CODE_VERSIONS", {**fingerprints.CODE_VERSIONS, **pinned["code_versions"]})


@pytest.mark.parametrize("config_name", CONFIGS)
def test_specs_serialise_as_recorded(config_name, pinned):
    assert _specs(config_name) == pinned["specs"][config_name]


@pytest.mark.parametrize("config_name", CONFIGS)
def test_stage_fingerprints_as_recorded(config_name, pinned, recorded_code_versions):
    current = _stage_fingerprints(config_name)
    recorded = pinned["fingerprints"][config_name]
    assert set(current) == set(recorded)
    assert [s for s in recorded if current[s] != recorded[s]] == []


def test_settings_hold_no_physics_objects():
    """No spec of the settings (the camera's collimator and windows, the grids, the phantom) is a
    class of the physics packages; the import-linter contract keeps them out of ``specs`` too."""
    from dataclasses import fields, is_dataclass

    from pvc_core.config import load_config
    from pvc_core.specs import Settings

    settings = Settings.from_config(load_config(REPO / "config" / "test.yaml"))

    def modules(value) -> set[str]:
        if not is_dataclass(value):
            return set()
        return {type(value).__module__}.union(*(modules(getattr(value, f.name)) for f in fields(value)))

    found = modules(settings)
    assert "pvc_core.specs" in found
    assert [m for m in found if m.split(".")[1] in ("spect", "phantom")] == []


def _write_fixture() -> None:
    from pvc_core.pipeline.fingerprints import CODE_VERSIONS

    data = {"code_versions": dict(CODE_VERSIONS), "specs": {c: _specs(c) for c in CONFIGS},
            "fingerprints": {c: _stage_fingerprints(c) for c in CONFIGS}}
    FIXTURE.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {FIXTURE}")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    _write_fixture()
