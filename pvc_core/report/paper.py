"""The paper's published numbers the report and the benchmarks set ours beside (Leube et al.,
J Nucl Med 2024): Table 1 and the matched-filter FWHM. (Table 2, the phantoms, lives with the
phantoms in :mod:`pvc_core.validation.phantoms`.)"""

from __future__ import annotations

#: Table 1 (500 test cases): (dataset, method) -> metric -> (mean, SD). AD of DL-PVC equals no PVC's
#: by its activity conservation, as the paper notes.
PAPER_TABLE1 = {
    ("RR_nf", "none"): {"ssim": (0.899, 0.019), "nrmse_pct": (9.98, 1.32), "vaa_pct": (13.57, 4.14), "ad_pct": (0.28, 2.00)},
    ("RR_nf", "iy_truth"): {"ssim": (0.945, 0.009), "nrmse_pct": (8.07, 2.33), "vaa_pct": (17.05, 4.03),
                            "ad_pct": (4.62, 6.16)},
    ("RR_nf", "dl"): {"ssim": (0.971, 0.007), "nrmse_pct": (5.74, 0.89), "vaa_pct": (43.30, 8.79), "ad_pct": (0.28, 2.00)},
    ("RR_n", "none"): {"ssim": (0.890, 0.022), "nrmse_pct": (10.44, 1.40), "vaa_pct": (12.10, 3.18), "ad_pct": (0.33, 2.06)},
    ("RR_n", "iy_truth"): {"ssim": (0.936, 0.013), "nrmse_pct": (8.58, 1.21), "vaa_pct": (15.06, 3.27),
                           "ad_pct": (6.36, 4.36)},
    ("RR_n", "dl"): {"ssim": (0.947, 0.015), "nrmse_pct": (7.75, 1.33), "vaa_pct": (35.79, 10.06), "ad_pct": (0.33, 2.06)},
}

#: The paper's matched-filter FWHM (mm) of each reconstruction.
PAPER_FWHM_MM = {"RR": 8.75, "noRR": 21.35}
