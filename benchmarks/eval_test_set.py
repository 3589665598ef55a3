"""A run's test cases (RR_n) corrected by the shipped model and by another model, beside no PVC.

    .venv/bin/python benchmarks/eval_test_set.py CONFIG MODEL.pt

Reads the run's ``splits.json`` and each test case's ``spect_RR_n.nii.gz`` and ``truth.nii.gz``
(``results_dir`` of CONFIG), corrects each with ``pvc_core.apply.correct.correct_image`` (what
``dlpvc apply`` runs), and prints the mean SSIM, NRMSE, VAA and AD per method
(``pvc_core.metrics.compute_all``) and the paired Wilcoxon p of the model against the shipped one
and against no PVC. For [3.4]'s learning curve: one fixed test set, any number of models.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.stats import wilcoxon

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pvc_core.apply.correct import correct_image  # noqa: E402
from pvc_core.apply.model import load_apply_model  # noqa: E402
from pvc_core.config import load_config  # noqa: E402
from pvc_core.io import load_image  # noqa: E402
from pvc_core.metrics import compute_all  # noqa: E402

METHODS = ("none", "shipped", "model")


def main(argv=None) -> int:
    config, model_path = (argv or sys.argv[1:])[:2]
    torch.set_num_threads(2)
    root = Path(load_config(config)["results_dir"])
    test = json.loads((root / "splits.json").read_text())["test"]
    models = {"shipped": load_apply_model(None, device="cpu"), "model": load_apply_model(model_path, device="cpu")}
    rows = []
    for case in test:
        folder = root / "cases" / f"{case:05d}"
        image, truth = load_image(folder / "spect_RR_n.nii.gz"), load_image(folder / "truth.nii.gz").data
        row = {"case": case, "none": compute_all(image.data, truth)}
        for name, model in models.items():
            row[name] = compute_all(correct_image(model, image)[0], truth)
        rows.append(row)
        print(case, {k: round(row[k]["vaa_pct"], 1) for k in METHODS}, flush=True)
    print(f"{len(rows)} test cases of {root}; model {model_path}")
    for k in METHODS:
        print(f"{k:8s} " + "  ".join(f"{m} {np.mean([r[k][m] for r in rows]):.4g}"
                                     for m in ("ssim", "nrmse_pct", "vaa_pct", "ad_pct")))
    for m in ("vaa_pct", "nrmse_pct"):
        a = [r["model"][m] for r in rows]
        print(f"{m}: model vs shipped p = {wilcoxon(a, [r['shipped'][m] for r in rows]).pvalue:.3g}, "
              f"vs no PVC p = {wilcoxon(a, [r['none'][m] for r in rows]).pvalue:.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
