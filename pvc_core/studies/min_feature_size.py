"""Figure 5 of the paper: the minimum feature size DL-PVC resolves.

Random activity distributions of the run's phantom generator get a cube of edge 1..10
reconstruction voxels at the centre of the field of view (the paper's design), at the
distribution's maximum concentration. Each is acquired, reconstructed and corrected like a test
case (:class:`~pvc_core.studies.chain.StudyChain`); the recovery coefficient of the cube,

    RC = mean of the image over the cube / the cube's true concentration,

is averaged over the distributions (the same ones for every edge, so the curves are paired).
"""

from __future__ import annotations

from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pvc_core.domain import NO_PVC  # noqa: E402
from pvc_core.geometry.blocks import downsample_activity  # noqa: E402
from pvc_core.io.atomic import atomic_path  # noqa: E402
from pvc_core.phantom import generate_case  # noqa: E402
from pvc_core.pipeline import paths  # noqa: E402
from pvc_core.studies.chain import STUDY_METHOD_LABELS, StudyChain  # noqa: E402
from pvc_core.studies.manifest import write_manifest  # noqa: E402

STUDY = "min_feature_size"
CASES_TABLE = "min_feature_size_cases.csv"
FIGURE = "min_feature_size.png"
SLICES = "min_feature_size_slices.png"

#: The study's methods (Figure 5): no PVC, IY with the true mask, DL-PVC.
METHODS = (NO_PVC, "iy_truth", "dl")

#: Case ids of the study's random distributions: far above any run's cases, so that no study
#: phantom repeats a training case's draws (every draw comes from rng_for(seed, case id, stage)).
FIRST_CASE_ID = 9_000_000

#: Water's attenuation at 208 keV (1/cm): the cube's voxels get at least this, so the cube lies in tissue.
MU_TISSUE_PER_CM = 0.1350

#: The paper's finding (Leube et al. 2024, Figure 5 and its text).
PAPER_FINDING = ("Paper (RR_n, 4.8 mm voxels): DL-PVC recovers nothing of cubes of 1 and 2 voxels (RC 0 at 4.8 and "
                 "9.6 mm); its RC rises steeply from 3 voxels (14.4 mm) and then slowly, above no PVC and IY-PVC for "
                 "every cube of 3 voxels or more; no PVC and IY-PVC rise continuously with the edge.")


def central_cube(shape: tuple[int, int, int], edge_voxels: int) -> np.ndarray:
    """Boolean mask of a cube of ``edge_voxels`` at the centre of a grid of ``shape`` (voxels
    ``(n - edge) // 2`` to ``(n - edge) // 2 + edge - 1`` on each axis)."""
    if not 1 <= edge_voxels <= min(shape):
        raise ValueError(f"cube edge {edge_voxels} voxels does not fit a grid of {shape}")
    mask = np.zeros(shape, bool)
    lo = [(n - edge_voxels) // 2 for n in shape]
    mask[lo[0]:lo[0] + edge_voxels, lo[1]:lo[1] + edge_voxels, lo[2]:lo[2] + edge_voxels] = True
    return mask


def insert_cube(activity_sim_mbq_ml: np.ndarray, mu_sim_per_cm: np.ndarray, edge_voxels: int, sim_factor: int,
                concentration_mbq_ml: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(activity, mu, cube mask on the reconstruction grid) with the central cube of
    ``edge_voxels`` reconstruction voxels (``edge_voxels * sim_factor`` simulation voxels, aligned
    with the reconstruction voxels) set to ``concentration_mbq_ml``; its mu is at least water's."""
    recon_shape = tuple(n // sim_factor for n in activity_sim_mbq_ml.shape)
    cube = central_cube(recon_shape, edge_voxels)
    cube_sim = np.repeat(np.repeat(np.repeat(cube, sim_factor, 0), sim_factor, 1), sim_factor, 2)
    activity = np.array(activity_sim_mbq_ml, dtype=np.float32, copy=True)
    activity[cube_sim] = np.float32(concentration_mbq_ml)
    mu = np.array(mu_sim_per_cm, dtype=np.float32, copy=True)
    mu[cube_sim] = np.maximum(mu[cube_sim], np.float32(MU_TISSUE_PER_CM))
    return activity, mu, cube


def cube_recovery(image: np.ndarray, cube: np.ndarray, concentration_mbq_ml: float) -> float:
    """RC of the cube: mean of ``image`` (MBq/mL) over ``cube`` / the true ``concentration_mbq_ml``."""
    if not cube.any():
        raise ValueError("the cube mask is empty")
    return float(image[cube].mean(dtype=np.float64) / concentration_mbq_ml)


def run(chain: StudyChain, layout: paths.RunLayout, log: Callable[[str], None] = print) -> pd.DataFrame:
    """Run the study with the run's settings; writes its tables, figures and manifest under
    ``results/studies/`` and returns the summary table (edge_voxels, edge_mm, method, rc, rc_sd, n)."""
    s = chain.settings
    spec = s.studies.min_feature_size
    sf = s.grid.sim_factor
    rows, examples = [], {}
    for repeat in range(spec.repeats):
        case_id = FIRST_CASE_ID + repeat
        base = generate_case(case_id, s.seed, s.phantom, s.grid)
        concentration = float(base.activity_mbq_ml.max()) or 1.0
        for edge in spec.edges_voxels:
            activity, mu_sim, cube = insert_cube(base.activity_mbq_ml, base.mu_per_cm, edge, sf, concentration)
            truth = downsample_activity(activity, sf)
            image, mu = chain.acquire(activity, mu_sim, f"study:{STUDY}:edge{edge}", case_id)
            corrected = chain.correct(image, truth, mu, METHODS)
            for method in METHODS:
                rows.append({"repeat": repeat, "case_id": case_id, "edge_voxels": edge, "edge_mm": round(edge * chain.voxel_mm, 3),
                             "method": method, "rc": cube_recovery(corrected[method], cube, concentration),
                             "concentration_mbq_ml": concentration})
            if repeat == 0:
                examples[edge] = (truth, corrected, cube)
            log(f"{STUDY}: distribution {repeat + 1}/{spec.repeats}, cube {edge} voxels: RC "
                + ", ".join(f"{m} {r['rc']:.3f}" for m, r in zip(METHODS, rows[-len(METHODS):])))
    cases = pd.DataFrame(rows)
    summary = (cases.groupby(["edge_voxels", "edge_mm", "method"], sort=False)["rc"]
               .agg(rc="mean", rc_sd=lambda v: float(v.std(ddof=1)) if len(v) > 1 else 0.0, n="size").reset_index())
    summary["method"] = pd.Categorical(summary["method"], METHODS)
    summary = summary.sort_values(["edge_voxels", "method"]).reset_index(drop=True)
    summary["method"] = summary["method"].astype(str)
    summary = summary[["edge_voxels", "edge_mm", "method", "rc", "rc_sd", "n"]]
    out = layout.study_dir()
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / CASES_TABLE, replace=True) as tmp:
        cases.to_csv(tmp, index=False)
    with atomic_path(layout.study_table(STUDY), replace=True) as tmp:
        summary.to_csv(tmp, index=False)
    rc_figure(summary, chain.voxel_mm, str(out / FIGURE))
    slice_figure(examples, str(out / SLICES))
    write_manifest(layout, STUDY, "Minimum feature size (Figure 5)", paragraphs(summary, chain),
                   [("Recovery coefficient of the central cube per edge and method (mean and SD over the "
                     "random distributions).", layout.study_table(STUDY).name),
                    ("Every distribution and cube.", CASES_TABLE)],
                   [("RC against the cube's edge.", FIGURE),
                    ("Axial slices through the cube (first distribution).", SLICES)],
                   meta={"dataset": chain.dataset, "fwhm_mm": chain.fwhm_mm, "repeats": spec.repeats,
                         "edges_voxels": list(spec.edges_voxels), "first_case_id": FIRST_CASE_ID})
    return summary


def paragraphs(summary: pd.DataFrame, chain: StudyChain) -> list[str]:
    """The study's text: what was done, the paper's finding and ours, in numbers."""
    rc = summary.pivot(index="edge_voxels", columns="method", values="rc")
    n = int(summary["n"].min())
    edges = list(rc.index)
    above = [e for e in edges if rc.loc[e, "dl"] > max(rc.loc[e, NO_PVC], rc.loc[e, "iy_truth"])]
    resolved = [e for e in edges if rc.loc[e, "dl"] >= 0.5]
    ours = (f"This run ({chain.dataset}, {chain.voxel_mm:g} mm voxels, {n} random distribution(s) per edge): DL-PVC RC "
            + ", ".join(f"{rc.loc[e, 'dl']:.2f}" for e in edges[:3]) + f" for cubes of {', '.join(map(str, edges[:3]))} "
            f"voxel(s) and {rc.loc[edges[-1], 'dl']:.2f} at {edges[-1]} voxels (no PVC "
            f"{rc.loc[edges[-1], NO_PVC]:.2f}, IY-PVC {rc.loc[edges[-1], 'iy_truth']:.2f}). "
            + (f"DL-PVC reaches RC 0.5 from {min(resolved)} voxels ({min(resolved) * chain.voxel_mm:g} mm). "
               if resolved else "DL-PVC stays below RC 0.5 for every cube. ")
            + (f"It exceeds both no PVC and IY-PVC for cubes of {', '.join(map(str, above))} voxels."
               if above else "It exceeds no PVC and IY-PVC for no cube."))
    return [f"A cube of edge 1 to {edges[-1]} reconstruction voxels at the field of view's centre, at the maximum "
            "concentration of a random activity distribution of the run's phantom generator, acquired and "
            "reconstructed like a test case; RC = mean over the cube / true concentration (1 = full recovery).",
            PAPER_FINDING, ours]


def rc_figure(summary: pd.DataFrame, voxel_mm: float, out: str) -> str:
    """RC against the cube's edge per method, the paper's DL-PVC floor marked."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    colours = {NO_PVC: "tab:green", "iy_truth": "tab:red", "dl": "tab:orange"}
    for method in METHODS:
        g = summary[summary["method"] == method]
        ax.errorbar(g["edge_voxels"], g["rc"], yerr=g["rc_sd"], marker="o", capsize=3, color=colours[method],
                    label=STUDY_METHOD_LABELS[method])
    ax.axhline(1.0, color="tab:blue", ls="--", lw=1, label="truth (RC 1)")
    ax.axvspan(0.5, 2.5, color="0.85", zorder=0, label="paper: DL-PVC RC 0 (1-2 voxels)")
    ax.set_xlabel("cube edge (reconstruction voxels)")
    ax.set_ylabel("recovery coefficient")
    ax.set_xticks(sorted(summary["edge_voxels"].unique()))
    top = ax.secondary_xaxis("top", functions=(lambda v: v * voxel_mm, lambda v: v / voxel_mm))
    top.set_xlabel("cube edge (mm)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_path(out, replace=True) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    return out


def slice_figure(examples: dict[int, tuple[np.ndarray, dict, np.ndarray]], out: str, n_rows: int = 3) -> str:
    """Axial slices through the cube's centre (smallest, a middle and the largest edge): truth,
    no PVC, IY-PVC, DL-PVC, cropped to the cube's surroundings, colour bar in MBq/mL."""
    edges = sorted(examples)
    shown = sorted({edges[0], edges[len(edges) // 2], edges[-1]})[:n_rows]
    cols = ["truth", *METHODS]
    fig, axes = plt.subplots(len(shown), len(cols), figsize=(2.6 * len(cols) + 0.8, 2.6 * len(shown)), squeeze=False)
    for r, edge in enumerate(shown):
        truth, corrected, cube = examples[edge]
        idx = np.argwhere(cube)
        centre = (idx.min(0) + idx.max(0)) // 2
        half = max(8, edges[-1])
        sl = tuple(slice(max(c - half, 0), c + half + 1) for c in centre[:2])
        vmax = float(truth[cube].max())
        for c, name in enumerate(cols):
            img = truth if name == "truth" else corrected[name]
            ax = axes[r, c]
            im = ax.imshow(img[sl[0], sl[1], centre[2]].T, origin="lower", cmap="inferno", vmin=0, vmax=vmax)
            ax.contour(cube[sl[0], sl[1], centre[2]].T.astype(float), levels=[0.5], colors="cyan", linewidths=0.8)
            rc = "" if name == "truth" else f", RC {cube_recovery(img, cube, vmax):.2f}"
            ax.set_title(f"{edge} voxel cube: {'truth' if name == 'truth' else STUDY_METHOD_LABELS[name]}{rc}", fontsize=7)
            ax.axis("off")
        fig.colorbar(im, ax=axes[r, :].tolist(), shrink=0.8, label="MBq/mL")
    with atomic_path(out, replace=True) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    return out
