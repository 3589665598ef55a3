"""Write docs/figures/phantoms_patient_like.png: four patient-like phantoms (phantom.uptake).

The demo's phantom settings and seed (config.yaml) with ``phantom.uptake.patient_probability: 1``
on the paper's grid (128^3 of 4.8 mm, phantom grid 256^3 of 2.4 mm), cases 0-3, drawn with
:func:`pvc_core.phantom.montage` (axial and coronal sections through the slices with the most
activity). Rerun after changing pvc_core/phantom/uptake.py or the schema's uptake defaults:

    .venv/bin/python docs/make_phantom_figure.py
"""

from __future__ import annotations

import copy
from pathlib import Path

from pvc_core.config import load_config
from pvc_core.phantom import generate_case, montage
from pvc_core.specs import phantom_specs

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "figures" / "phantoms_patient_like.png"


def main() -> None:
    cfg = copy.deepcopy(load_config(REPO / "config.yaml"))
    cfg["grid"] = {"recon_matrix": 128, "recon_voxel_mm": 4.8, "sim_factor": 2}
    cfg["phantom"]["uptake"]["patient_probability"] = 1.0
    settings, grid = phantom_specs(cfg)
    cases = [generate_case(i, int(cfg["seed"]), settings, grid) for i in range(4)]
    for pc in cases:
        m = pc.meta
        lesions = ", ".join(f"{les['host']} {les['volume_ml']:.1f} mL x{les['contrast']:.1f}" for les in m["lesions"])
        print(f"case {m['case_id']} {m['bed_position']}: {m['total_activity_mbq']:.0f} MBq, {m['n_lesions']} lesions "
              f"({lesions}), cortex/medulla {m['kidney_cortex_medulla_ratio']:.1f}, cortex {m['kidney_cortex_mm']:.1f} mm")
    print(f"wrote {montage(cases, OUT)}")


if __name__ == "__main__":
    main()
