"""The calibration rule's stage (no pandas: it runs in the SPECT environment)."""

from __future__ import annotations

from typing import Callable

from pvc_core.io import write_json
from pvc_core.specs import CalibrationSpec, CameraSpec, GridSpec, ReconSpec, spec_dict

Log = Callable[[str], None]


def calibrate_reconstruction(recon: ReconSpec, spec: CalibrationSpec, camera: CameraSpec, grid: GridSpec, seed: int,
                             fingerprint: str, out: str, log: Log = print) -> dict:
    """The calibration cylinder acquired with the patient protocol and reconstructed with ``recon``
    (:mod:`pvc_core.calibration`); writes the factor that every image of ``recon`` is divided by."""
    from pvc_core.calibration import calibrate

    result = calibrate(spec, camera, grid, [recon], seed)[recon.name]
    record = {**result.as_dict(), "fingerprint": fingerprint, "cylinder": spec_dict(spec),
              "protocol": "MIRD Pamphlet 26 (J Nucl Med 2016;57:151): uniform cylinder, patient protocol, VOI with margin"}
    write_json(out, record)
    log(f"calibration {recon.name}: {result.reconstructed_mbq:.2f} MBq reconstructed in the VOI for {result.true_mbq:.2f} MBq "
        f"-> factor {result.factor:.4f} ({result.seconds:.1f} s)")
    return record
