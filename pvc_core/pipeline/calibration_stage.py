"""The calibration rule's stage (no pandas: it runs in the SPECT environment), and the same
calibration outside the DAG, cached under its fingerprint (:func:`calibration_for`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from pvc_core.calibration import calibrate
from pvc_core.io import read_json, write_json
from pvc_core.pipeline.fingerprints import StageGraph, fingerprint
from pvc_core.specs import CalibrationSpec, Settings, spec_dict
from pvc_core.spect.acquisition import AcquisitionChain

Log = Callable[[str], None]


def calibrate_reconstruction(chain: AcquisitionChain, spec: CalibrationSpec, seed: int, *, fingerprint: str, out: str,
                             log: Log = print) -> dict:
    """The calibration cylinder acquired with the patient protocol (``chain``: camera, grid and
    the one reconstruction calibrated; :mod:`pvc_core.calibration`); writes the factor that every
    image of that reconstruction is divided by."""
    (recon,) = chain.reconstructions
    result = calibrate(spec, chain, seed)[recon.name]
    record = {**result.as_dict(), "fingerprint": fingerprint, "cylinder": spec_dict(spec),
              "protocol": "MIRD Pamphlet 26 (J Nucl Med 2016;57:151): uniform cylinder, patient protocol, VOI with margin"}
    write_json(out, record)
    log(f"calibration {recon.name}: {result.reconstructed_mbq:.2f} MBq reconstructed in the VOI for {result.true_mbq:.2f} MBq "
        f"-> factor {result.factor:.4f} ({result.seconds:.1f} s)")
    return record


def calibration_for(settings: Settings, cache_dir: str | os.PathLike | None = None,
                    log=None) -> dict[str, dict]:
    """The calibration of every reconstruction of ``settings`` outside the DAG (``dlpvc simulate``,
    the benchmarks): computed as the ``calibrate_reconstruction`` rule does, and kept in
    ``cache_dir`` (default ``$XDG_CACHE_HOME/dlpvc/calibration``, else ``~/.cache/...``) under the
    fingerprint of its dependencies, so a changed camera or protocol is never served a stale one.
    """
    root = Path(cache_dir) if cache_dir else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dlpvc" / "calibration"
    graph = StageGraph(settings)
    out = {}
    for name, recon in settings.reconstructions.items():
        fp = fingerprint(graph.dependencies(f"calibration_{name}"))
        path = root / f"{name}-{fp}.json"
        record = None
        if path.is_file():
            try:
                record = read_json(path)
            except (OSError, ValueError):
                record = None
        if record is None:
            chain = AcquisitionChain(settings.camera, settings.grid, (recon,))
            result = calibrate(settings.calibration, chain, settings.seed)[name]
            record = {**result.as_dict(), "fingerprint": fp}
            try:
                write_json(path, record)
            except OSError:  # a read-only home: compute again next time
                pass
            if log:
                log(f"calibration {name}: factor {result.factor:.4f} ({result.seconds:.1f} s)")
        out[name] = record
    return out
