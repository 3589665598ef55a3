"""config/test.yaml's settings with a ``randomise:`` section, for the tests of the randomised
acquisitions (tests/spect/test_randomise.py, tests/pipeline/test_randomise_stages.py)."""

from __future__ import annotations

import copy

from conftest import REPO
from pvc_core.config import load_config, validate_config
from pvc_core.specs import Settings


def randomised_settings(randomise: dict | None) -> Settings:
    """The test configuration's settings with ``randomise`` (validated; ``None``: none)."""
    cfg = copy.deepcopy(load_config(REPO / "config" / "test.yaml"))
    if randomise is not None:
        cfg["randomise"] = copy.deepcopy(randomise)
        validate_config(cfg)
    return Settings.from_config(cfg)
