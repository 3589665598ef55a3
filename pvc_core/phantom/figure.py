"""Montage of phantom cases like the paper's Figure 2: anatomy (mu) in grey, activity in colour.

Top row: axial sections; bottom row: coronal sections; one column per case. Sections pass
through the slice with the most activity. Radiological display: the patient's right on the
viewer's left, anterior up (axial), superior up (coronal).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pvc_core.io.atomic import atomic_path  # noqa: E402


def _get(case: Any, key: str, default=None):
    if isinstance(case, Mapping):
        return case.get(key, default)
    return getattr(case, key, default)


def montage(cases: Iterable[Any], path: str | os.PathLike, max_cases: int = 6) -> Path:
    """Write a PNG of axial and coronal sections of ``cases`` (at most ``max_cases``).

    A case is a :class:`~pvc_core.phantom.PhantomCase` or a mapping with ``mu_per_cm``,
    ``activity_mbq_ml`` (simulation grid, indexed x, y, z) and ``meta`` (with ``sim_voxel_mm``;
    ``case_id``, ``bed_position``, ``total_activity_mbq`` and ``active_volume_ml`` go to the
    titles when present). Returns the path written.
    """
    cases = list(cases)[:max_cases]
    if not cases:
        raise ValueError("montage needs at least one case")
    path = Path(path)
    fig, axes = plt.subplots(2, len(cases), figsize=(3.6 * len(cases), 7.4), squeeze=False)
    for col, case in enumerate(cases):
        mu = np.asarray(_get(case, "mu_per_cm"), dtype=np.float32)
        act = np.asarray(_get(case, "activity_mbq_ml"), dtype=np.float32)
        meta = _get(case, "meta") or {}
        vs = float(_get(case, "sim_voxel_mm") or meta.get("sim_voxel_mm", 1.0))
        k = int(np.argmax(act.sum(axis=(0, 1)))) if act.any() else mu.shape[2] // 2
        j = int(np.argmax(act.sum(axis=(0, 2)))) if act.any() else mu.shape[1] // 2
        half_x, half_y, half_z = (n * vs / 2.0 for n in mu.shape)
        vmax = float(np.percentile(act[act > 0], 99.5)) if act.any() else 1.0
        sections = [
            (mu[::-1, :, k].T, act[::-1, :, k].T, (half_x, -half_x, -half_y, half_y), "axial"),
            (mu[::-1, j, :].T, act[::-1, j, :].T, (half_x, -half_x, -half_z, half_z), "coronal"),
        ]
        for row, (m, a, extent, name) in enumerate(sections):
            ax = axes[row, col]
            ax.imshow(m, origin="lower", cmap="gray", vmin=0.0, vmax=0.25, extent=extent, interpolation="nearest")
            im = ax.imshow(np.ma.masked_where(a <= 0, a), origin="lower", cmap="turbo", vmin=0.0, vmax=vmax,
                           extent=extent, interpolation="nearest", alpha=0.9)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                title = f"case {meta.get('case_id', _get(case, 'case_id', col))}"
                if "bed_position" in meta:
                    title += f": {meta['bed_position']}"
                if "total_activity_mbq" in meta and "active_volume_ml" in meta:
                    title += f"\n{meta['total_activity_mbq']:.0f} MBq in {meta['active_volume_ml']:.0f} mL"
                ax.set_title(title, fontsize=9)
            ax.set_ylabel(name, fontsize=9)
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02).set_label("MBq/mL", fontsize=8)
    fig.suptitle("Phantoms: mu at 208 keV (grey) and true activity (colour)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, replace=True) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path
