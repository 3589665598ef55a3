"""The paper's studies beyond the test set, each a fan-in job writing ``results/<run>/studies/``:

* :mod:`~pvc_core.studies.min_feature_size`: Figure 5, RC of a central cube of edge 1..10 voxels;
* :mod:`~pvc_core.studies.validation_phantoms`: Table 2 and Figure 7, the physical phantoms.

Both run the default model's dataset through the chain of :mod:`~pvc_core.studies.chain` and
write a manifest (:mod:`~pvc_core.studies.manifest`) that the report renders.
"""

from __future__ import annotations

from typing import Callable, Mapping

from pvc_core.pipeline.paths import RunLayout
from pvc_core.specs import Settings
from pvc_core.studies import min_feature_size, validation_phantoms
from pvc_core.studies.chain import StudyChain


def run_study(study: str, settings: Settings, layout: RunLayout, model_path: str, inference: Mapping,
              resolution_path: str, calibration_path: str, log: Callable[[str], None] = print):
    """Run ``study`` (one of :data:`pvc_core.pipeline.paths.STUDIES`) with the default model
    (``model_path`` applied with its ``inference`` keys) and the resolution and calibration of its
    reconstruction; returns the study's summary table."""
    modules = {min_feature_size.STUDY: min_feature_size, validation_phantoms.STUDY: validation_phantoms}
    if study not in modules:
        raise ValueError(f"unknown study {study!r}; expected one of {sorted(modules)}")
    chain = StudyChain.for_run(settings, model_path, dict(inference), resolution_path, calibration_path)
    return modules[study].run(chain, layout, log=log)
