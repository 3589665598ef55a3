"""The calibration rule's stage (no pandas: it runs in the SPECT environment), and the same
calibration cached under its fingerprint (:func:`cached_calibration`): outside the DAG
(:func:`calibration_for`) and for each drawn level of a randomised run (the reconstruct stage)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from pvc_core.calibration import calibrate
from pvc_core.io import read_json, write_json
from pvc_core.pipeline.fingerprints import calibration_dependencies, fingerprint
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


def cached_calibration_file(folder: str | os.PathLike, reconstruction: str, fp: str) -> Path:
    """Where :func:`cached_calibration` keeps a calibration: ``folder/<reconstruction>-<fp>.json``."""
    return Path(folder) / f"{reconstruction}-{fp}.json"


def cached_calibration(chain: AcquisitionChain, spec: CalibrationSpec, seed: int, folder: str | os.PathLike,
                       log: Log | None = None) -> dict:
    """The calibration of ``chain``'s one reconstruction with its camera (``chain.fit_camera``: a
    randomised case's camera at the protocol's time per view), computed as the
    ``calibrate_reconstruction`` rule does and kept in ``folder`` as ``<reconstruction>-<fp>.json``,
    ``fp`` the fingerprint of what it depends on
    (:func:`~pvc_core.pipeline.fingerprints.calibration_dependencies`): computed once per camera
    and reconstruction, never served stale.

    Written atomically (:func:`pvc_core.io.write_json`): two jobs that compute the same one at
    once write the same record (the cylinder's noise is seeded), and each reads a whole file.
    """
    (recon,) = chain.reconstructions
    camera = chain.fit_camera
    fp = fingerprint(calibration_dependencies(seed, chain.grid, camera, spec, recon))
    path = cached_calibration_file(folder, recon.name, fp)
    if path.is_file():
        try:
            return read_json(path)
        except (OSError, ValueError):
            pass
    result = calibrate(spec, AcquisitionChain(camera, chain.grid, (recon,)), seed)[recon.name]
    record = {**result.as_dict(), "fingerprint": fp}
    try:
        write_json(path, record)
    except OSError:  # a read-only cache: compute again next time
        pass
    if log:
        log(f"calibration {recon.name}: factor {result.factor:.4f} ({result.seconds:.1f} s)")
    return record


def calibration_for(settings: Settings, cache_dir: str | os.PathLike | None = None,
                    log=None) -> dict[str, dict]:
    """The calibration of every reconstruction of ``settings`` outside the DAG (``dlpvc simulate``,
    the benchmarks): computed as the ``calibrate_reconstruction`` rule does, and kept in
    ``cache_dir`` (default ``$XDG_CACHE_HOME/dlpvc/calibration``, else ``~/.cache/...``) under the
    fingerprint of its dependencies (:func:`cached_calibration`), so a changed camera or protocol
    is never served a stale one.
    """
    root = Path(cache_dir) if cache_dir else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dlpvc" / "calibration"
    return {name: cached_calibration(AcquisitionChain(settings.camera, settings.grid, (recon,)), settings.calibration,
                                     settings.seed, root, log)
            for name, recon in settings.reconstructions.items()}
