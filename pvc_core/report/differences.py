""""What differs from the paper": the run's own chain beside the paper's, from its settings.

Every row is generated from the run (its settings, split and model card), so a reader of a report
knows which of its numbers can be set beside the paper's and which cannot.
"""

from __future__ import annotations

import pandas as pd

from pvc_core.specs import Settings

#: The paper's chain (Leube et al., J Nucl Med 2024), as its methods section states it.
PAPER = {
    "phantoms": "XCAT-based density maps with random activity shapes (inhomogeneous, patient-like activity range)",
    "simulator": "SIMIND Monte Carlo (ME collimator, 208 keV 20 % + two 10 % windows)",
    "acquisition": "120 views x 30 s, 128 x 128 detector of 4.79 mm",
    "RR": "STIR OSEM 6 iterations x 6 subsets with resolution recovery, attenuation and scatter correction",
    "noRR": "CASToR OSEM 10 iterations x 2 subsets, attenuation and scatter correction",
    "grid": "128^3 voxels of 4.8 mm (614 mm field of view)",
    "cases": "10,000 cases; 500 test cases",
    "network": "R2U-Net on the full field of view, total activity conserved (sum), 32-512 channels",
    "validation phantoms": "3-D printed inserts filled with Lu-177, measured on a SPECT/CT",
    "iterative Yang": "PETPVC IY with the ground-truth mask and the matched-filter FWHM",
}


def differences(settings: Settings, model_cfg: dict, n_train: int, n_validation: int, n_test: int,
                n_failed: int = 0) -> pd.DataFrame:
    """Rows ``aspect | paper | this run | same as the paper?`` of the run's chain."""
    s = settings
    ph = s.phantom
    phantom = ("procedural anatomy (body, organs, bed positions "
               + ", ".join(f"{k} {v:g}" for k, v in ph.bed_probabilities.items())
               + f") with random shapes {ph.shape_edge_mm[0]:g}-{ph.shape_edge_mm[1]:g} mm"
               if ph.source == "procedural" else f"voxel phantom {ph.voxel.path} with random shapes")
    phantom += (f", active volume {ph.active_volume_ml.low:g}-{ph.active_volume_ml.high:g} mL, total "
                f"{ph.total_activity_mbq.low:g}-{ph.total_activity_mbq.high:g} MBq")
    cam = s.camera
    rr, norr = s.reconstructions["RR"], s.reconstructions["noRR"]
    scatter = {"tew": "triple-energy-window scatter correction",
               "model": "model-based scatter correction from the current image, scaled to the TEW totals per view",
               "simulated": "the simulator's expected scatter as OSEM's additive term (an oracle)"}
    g = s.grid
    run = {
        "phantoms": phantom,
        "simulator": (f"dlpvc's analytic projector (PyTomography-based: collimator-detector response of the "
                      f"{cam.collimator_name} collimator, attenuation, a scatter model in three windows), Poisson noise"),
        "acquisition": f"{cam.n_views} views x {cam.time_per_view_s:g} s",
        "RR": f"dlpvc OSEM {rr.iterations} iterations x {rr.subsets} subsets with the collimator-detector response, "
              f"attenuation, {scatter.get(rr.scatter_correction, rr.scatter_correction)}; calibrated with a uniform "
              "cylinder (MIRD 26)",
        "noRR": f"dlpvc OSEM {norr.iterations} iterations x {norr.subsets} subsets, attenuation, "
                f"{scatter.get(norr.scatter_correction, norr.scatter_correction)}; calibrated likewise",
        "grid": f"{g.recon_matrix}^3 voxels of {g.recon_voxel_mm:g} mm ({g.recon_matrix * g.recon_voxel_mm:g} mm field "
                f"of view); phantoms simulated {g.sim_factor}x finer",
        "cases": f"{s.n_cases:,} cases: {n_train} training, {n_validation} validation, {n_test} test"
                 + (f", {n_failed} failed" if n_failed else ""),
        "network": (f"{model_cfg['architecture']} on the {'full field of view' if model_cfg['input'] == 'full' else '32^3 patches'}, "
                    f"normalisation {model_cfg['normalisation']}, channels {'-'.join(map(str, model_cfg['channels']))}, "
                    f"{model_cfg['epochs']} epochs, loss {model_cfg.get('loss', 'l1')}"),
        "validation phantoms": "voxel models of the inserts (same volumes and wall thicknesses, assumed shapes) "
                               "simulated through this chain, not measured",
        "iterative Yang": "dlpvc's IY (bit-identical to PETPVC's) with the true mask and, in addition, a SPECT-derived "
                          "mask (40 % of the maximum)",
    }
    same = {
        "phantoms": False, "simulator": False,
        "acquisition": cam.n_views == 120 and cam.time_per_view_s == 30.0,
        "RR": rr.iterations == 6 and rr.subsets == 6 and rr.scatter_correction == "tew",
        "noRR": norr.iterations == 10 and norr.subsets == 2 and norr.scatter_correction == "tew",
        "grid": g.recon_matrix == 128 and abs(g.recon_voxel_mm - 4.8) < 1e-6,
        "cases": s.n_cases >= 10_000 and n_test >= 500,
        "network": model_cfg["architecture"] == "r2unet" and model_cfg["input"] == "full"
                   and model_cfg["normalisation"] == "sum" and list(model_cfg["channels"]) == [32, 64, 128, 256, 512],
        "validation phantoms": False,
        "iterative Yang": True,
    }
    return pd.DataFrame([{"aspect": k, "paper": PAPER[k], "this run": run[k], "as in the paper": "yes" if same[k] else "no"}
                         for k in PAPER])
