"""Figures of the report (matplotlib, Agg backend, PNG files)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pvc_core.io import load_image, read_json  # noqa: E402
from pvc_core.io.atomic import atomic_path  # noqa: E402
from pvc_core.phantom import montage  # noqa: E402
from pvc_core.pipeline import paths  # noqa: E402

#: Column labels of the evaluation metrics (``pvc_core.pipeline.dataset_stages.METRIC_COLUMNS``).
METRIC_LABELS = {"ssim": "SSIM", "nrmse_pct": "NRMSE (%)", "vaa_pct": "VAA (%)", "ad_pct": "AD (%)"}

METHOD_LABELS = {"none": "no PVC", "iy_truth": "IY-PVC (true mask)", "iy_spect": "IY-PVC (SPECT mask)",
                 "rl": "Richardson-Lucy", "vc": "Van Cittert", "dl": "DL-PVC"}


def method_label(method: str) -> str:
    """Readable name of an evaluation method ('dl:<model>' -> 'DL-PVC (<model>)')."""
    return METHOD_LABELS.get(method, f"DL-PVC ({method[3:]})" if method.startswith("dl:") else method)


def phantom_montage(layout: paths.RunLayout, manifest_path: str, out: str, n_cases: int = 3, log: Callable = print) -> str:
    """Axial and coronal sections of the first cases of a shard (paper's Figure 2)."""
    done = (read_json(manifest_path).get("done") or [])[:n_cases]
    cases = []
    for case in done:
        cases.append({
            "case_id": case,
            "mu_per_cm": load_image(layout.case_file(case, paths.MU_SIM)).data,
            "activity_mbq_ml": load_image(layout.case_file(case, paths.TRUTH_SIM)).data,
            "meta": read_json(layout.marker_file(case, "phantom")),
        })
    montage(cases, out)
    log(f"phantom montage of cases {done} -> {out}")
    return out


def training_curve(history_csv: str | Path, out: str) -> str:
    """Training and validation loss per epoch."""
    h = pd.read_csv(history_csv)
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(h["epoch"], h["train_loss"], label="training")
    if "val_loss" in h:
        ax.plot(h["epoch"], h["val_loss"], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    with atomic_path(out, replace=True) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    return out


def activity_histograms(layout: paths.RunLayout, cases: list[int], dataset: str, model: str, out: str) -> str:
    """Activity-concentration/voxel histograms inside the true mask (paper's Figure 6)."""
    series = {"truth": [], "none": [], "iy_truth": [], f"dl:{model}": []}
    for case in cases:
        truth = load_image(layout.case_file(case, paths.TRUTH)).data
        mask = truth > 0
        scale = float(truth.max()) or 1.0
        imgs = {"truth": truth,
                "none": load_image(layout.case_file(case, paths.recon_name(dataset))).data,
                "iy_truth": load_image(layout.iy_file(dataset, "truth", case)).data,
                f"dl:{model}": load_image(layout.prediction_file(model, case)).data}
        for k, v in imgs.items():
            series[k].append(v[mask] / scale)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    bins = np.linspace(0, 1.2, 49)
    for k, v in series.items():
        vals = np.concatenate(v)
        w = np.full(vals.shape, 100.0 / max(len(vals), 1))
        ax.hist(vals, bins=bins, weights=w, histtype="step", label="truth" if k == "truth" else method_label(k))
    ax.set_xlabel("relative activity concentration (to the case's true maximum)")
    ax.set_ylabel("voxels (%)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(out, replace=True) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    return out
