"""Case figures a medical physicist reads: slices with VAA maps and a profile, metric violins and
activity-concentration-voxel histograms (Leube et al., J Nucl Med 2024, Figures 3, 4, 6 and 7).

Conventions (as in :mod:`pvc_core.report.figures`): matplotlib's Agg backend, PNG files, every
function saves its figure to ``out``, closes it and returns ``out``. Images are numpy arrays on
one grid with axes (x, y, z), axis 2 axial; activity in MBq/mL, attenuation in 1/cm. Voxel index
``i`` lies at ``i * voxel_mm`` mm (the centre of voxel 0 is the origin).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from pvc_core.domain import DATASETS, PVC_METHODS, dataset_parts  # noqa: E402
from pvc_core.errors import InputError  # noqa: E402
from pvc_core.io.atomic import atomic_path  # noqa: E402
from pvc_core.metrics import ssim, vaa, vaa_map  # noqa: E402
from pvc_core.report.figures import METRIC_LABELS, method_label  # noqa: E402

__all__ = ["profile_points", "body_crop", "slice_figure", "metric_violins", "voxel_histogram_percent",
           "voxel_histogram", "HISTOGRAM_BINS_REL"]

DPI = 90
MU_DISPLAY_MAX_PER_CM = 0.2  # grey underlay: 0 (black) .. 0.2 1/cm (white); soft tissue ~0.135 1/cm at 208 keV
BODY_MU_MIN_PER_CM = 0.01  # voxels above this attenuation are body
CROP_MARGIN_VOXELS = 2
TRANSPARENT_BELOW_FRACTION = 0.01  # activity below 1 % of the colour maximum is not drawn over the underlay
ACTIVITY_CMAP = "inferno"
CONTOUR_COLOUR = "cyan"
VAA_OK_RGB = (0.0, 0.8, 0.8)
VAA_OFF_RGB = (0.85, 0.1, 0.1)
ACTIVITY_LABEL = "activity concentration (MBq/mL)"
HISTOGRAM_BINS_REL = np.linspace(0.0, 1.3, 53)  # relative to the truth's maximum, 0.025 wide
METRIC_COLUMNS = list(METRIC_LABELS.items())
DATASET_ORDER = sorted(DATASETS, key=lambda d: (dataset_parts(d)[0] != "RR", dataset_parts(d)[1] != "nf"))
# RR (resolution recovery) bright, noRR dark; noise-free blue, noisy orange
DATASET_COLOURS = {"RR_nf": "#6baed6", "RR_n": "#fdae6b", "noRR_nf": "#08519c", "noRR_n": "#a63603"}
METHOD_ORDER = list(PVC_METHODS)


# ----------------------------------------------------------------------------------- geometry


def _is_truth_label(label: str) -> bool:
    """A panel labelled 'truth' (any case) is the reference: no metrics, no VAA map, step profile."""
    return label.strip().lower() == "truth"


def _check_volume(name: str, array: np.ndarray, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``array`` as a 3-D float array of ``shape`` (if given); ValueError naming ``name`` otherwise."""
    a = np.asarray(array, dtype=np.float64)
    if a.ndim != 3:
        raise ValueError(f"panel '{name}': expected a 3-D array (x, y, z), got {a.ndim}-D shape {a.shape}")
    if shape is not None and a.shape != tuple(shape):
        raise ValueError(f"panel '{name}': shape {a.shape} differs from truth shape {tuple(shape)}")
    return a


def profile_points(truth: np.ndarray) -> tuple[int, int]:
    """(y index, z index) of the profile line through the truth, in voxels.

    ``z*`` is the axial slice (axis 2) with the most true activity (argmax of ``truth.sum((0, 1))``,
    the first on ties), ``y*`` the row (axis 1) of the hottest voxel in that slice. When several
    voxels share the maximum (a uniform lesion), ``y*`` is the row holding most of them, the
    middle one of such rows on ties, so that the profile crosses a uniform sphere through its
    centre rather than along its rim. The profile runs along axis 0.
    """
    t = _check_volume("truth", truth)
    z = int(np.argmax(t.sum(axis=(0, 1))))
    hottest = t[..., z] == t[..., z].max()
    per_row = hottest.sum(axis=0)
    rows = np.flatnonzero(per_row == per_row.max())
    return int(rows[len(rows) // 2]), z


def body_crop(mu_slice_per_cm: np.ndarray, truth_slice: np.ndarray | None = None,
              margin_voxels: int = CROP_MARGIN_VOXELS) -> tuple[slice, slice]:
    """(x slice, y slice) of a 2-D slice that holds the body plus a margin (voxels).

    Body: ``mu > 0.01 /cm``; voxels of ``truth_slice > 0`` are kept too (activity outside the body
    map stays visible). The box grows by ``margin_voxels`` on every side, clipped to the slice;
    the whole slice when nothing is found.
    """
    keep = np.asarray(mu_slice_per_cm) > BODY_MU_MIN_PER_CM
    if truth_slice is not None:
        keep = keep | (np.asarray(truth_slice) > 0)
    if not keep.any():
        return slice(0, keep.shape[0]), slice(0, keep.shape[1])
    out = []
    for axis, idx in enumerate(np.nonzero(keep)):
        lo = max(int(idx.min()) - margin_voxels, 0)
        hi = min(int(idx.max()) + 1 + margin_voxels, keep.shape[axis])
        out.append(slice(lo, hi))
    return out[0], out[1]


def _extent_mm(crop: tuple[slice, slice], voxel_mm: float) -> tuple[float, float, float, float]:
    """imshow extent (left, right, bottom, top) in mm of a transposed, origin-lower crop."""
    sx, sy = crop
    return ((sx.start - 0.5) * voxel_mm, (sx.stop - 0.5) * voxel_mm,
            (sy.start - 0.5) * voxel_mm, (sy.stop - 0.5) * voxel_mm)


# ----------------------------------------------------------------------------------- slice figure


def _metrics_text(image: np.ndarray, truth: np.ndarray, alpha: float) -> str:
    """'SSIM x.xxx, VAA yy.y %' over the truth mask of the whole volume ('metrics n/a' if undefined)."""
    try:
        return f"SSIM {ssim(image, truth):.3f}, VAA {vaa(image, truth, alpha=alpha):.1f} %"
    except InputError:
        return "metrics n/a"


def _draw_activity(ax: Axes, image_slice: np.ndarray, mu_slice: np.ndarray, truth_slice: np.ndarray,
                   crop: tuple[slice, slice], vmax_mbq_ml: float, voxel_mm: float):
    """Grey attenuation underlay, activity (MBq/mL) above 1 % of ``vmax_mbq_ml``, cyan truth contour."""
    ext = _extent_mm(crop, voxel_mm)
    ax.imshow(mu_slice[crop].T, cmap="gray", vmin=0.0, vmax=MU_DISPLAY_MAX_PER_CM, origin="lower", extent=ext)
    shown = np.ma.masked_where(~(image_slice[crop] >= TRANSPARENT_BELOW_FRACTION * vmax_mbq_ml), image_slice[crop])
    im = ax.imshow(shown.T, cmap=ACTIVITY_CMAP, vmin=0.0, vmax=vmax_mbq_ml, origin="lower", extent=ext,
                   interpolation="nearest")
    _draw_contour(ax, truth_slice, crop, voxel_mm)
    return im


def _draw_contour(ax: Axes, truth_slice: np.ndarray, crop: tuple[slice, slice], voxel_mm: float) -> None:
    """Outline of ``truth > 0`` on the crop (axes in mm), when the crop holds an edge of it."""
    mask = (truth_slice[crop] > 0).astype(float)
    if mask.min() == mask.max():
        return
    xs_mm = np.arange(crop[0].start, crop[0].stop) * voxel_mm
    ys_mm = np.arange(crop[1].start, crop[1].stop) * voxel_mm
    ax.contour(xs_mm, ys_mm, mask.T, levels=[0.5], colors=CONTOUR_COLOUR, linewidths=0.8)


def _draw_vaa_map(ax: Axes, image: np.ndarray, truth: np.ndarray, z: int, crop: tuple[slice, slice],
                  voxel_mm: float, alpha: float) -> None:
    """Slice ``z`` of the VAA map: cyan within ``alpha`` of truth, red off by more, black outside the mask."""
    try:
        ok = vaa_map(image, truth, alpha=alpha)[..., z]
    except InputError:
        ax.text(0.5, 0.5, "VAA map n/a", ha="center", va="center", transform=ax.transAxes, fontsize=8)
        return
    mask = truth[..., z] > 0
    rgb = np.zeros(mask.shape + (3,))
    rgb[mask & ok] = VAA_OK_RGB
    rgb[mask & ~ok] = VAA_OFF_RGB
    ax.imshow(np.transpose(rgb[crop], (1, 0, 2)), origin="lower", extent=_extent_mm(crop, voxel_mm),
              interpolation="nearest")


def _vaa_legend(ax: Axes, alpha: float) -> None:
    """Text explaining the VAA map colours, in place of the truth's (empty) VAA map."""
    ax.axis("off")
    ax.text(0.5, 0.5, f"VAA map (truth mask):\ncyan = within {100 * alpha:g} %\nof truth\n"
            "red = off by more\nblack = outside mask", ha="center", va="center", fontsize=8, transform=ax.transAxes)


def _style_image_axis(ax: Axes, first: bool) -> None:
    """Small mm ticks; axis names on the first column only."""
    ax.tick_params(labelsize=6)
    if first:
        ax.set_xlabel("x (mm)", fontsize=7)
        ax.set_ylabel("y (mm)", fontsize=7)


def _draw_profiles(ax: Axes, panels: list[tuple[str, np.ndarray]], truth: np.ndarray, y: int, z: int,
                   crop_x: slice, voxel_mm: float) -> None:
    """Profiles along axis 0 through (y, z) in MBq/mL against position in mm (Figure 4B)."""
    series = panels if any(_is_truth_label(lab) for lab, _ in panels) else [("truth", truth)] + panels
    position_mm = np.arange(truth.shape[0]) * voxel_mm
    for label, image in series:
        if _is_truth_label(label):
            ax.plot(position_mm, image[:, y, z], drawstyle="steps-mid", color="black", lw=1.4, label=label)
        else:
            ax.plot(position_mm, image[:, y, z], lw=1.2, label=label)
    ax.set_xlim((crop_x.start - 0.5) * voxel_mm, (crop_x.stop - 0.5) * voxel_mm)
    ax.set_xlabel("position (mm)")
    ax.set_ylabel(ACTIVITY_LABEL)
    ax.set_title(f"profile along x at y = {y * voxel_mm:.1f} mm, z = {z * voxel_mm:.1f} mm (dashed line above)",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")


def slice_figure(panels: list[tuple[str, np.ndarray]], truth: np.ndarray, mu_per_cm: np.ndarray, voxel_mm: float,
                 out: str, title: str = "", alpha: float = 0.05) -> str:
    """Axial slices, VAA maps and a profile of several images of one case (paper's Figures 4 and 7).

    ``panels``: (label, 3-D activity image in MBq/mL) in display order; a panel labelled 'truth'
    gets no metrics and no VAA map. ``truth``: true activity (MBq/mL); ``mu_per_cm``: attenuation
    map (1/cm); ``voxel_mm``: voxel size (mm, isotropic); ``alpha``: VAA tolerance (fraction).
    Row 1: slice ``z*`` of :func:`profile_points` on a grey attenuation underlay, common colour
    range 0..max(truth slice) MBq/mL, cyan truth contour, dashed profile line at ``y*``; SSIM and
    VAA of the whole volume in the titles. Row 2: VAA maps of that slice. Row 3: the profiles.
    Raises ValueError (naming the panel) for arrays that are not 3-D or differ in shape.
    """
    t = _check_volume("truth", truth)
    mu = _check_volume("mu_per_cm", mu_per_cm, t.shape)
    images = [(label, _check_volume(label, image, t.shape)) for label, image in panels]
    if not images:
        raise ValueError("slice_figure needs at least one panel")
    if not (t > 0).any():
        raise ValueError("truth has no voxel with activity > 0")
    y, z = profile_points(t)
    crop = body_crop(mu[..., z], t[..., z])
    vmax_mbq_ml = float(t[..., z].max())
    n = len(images)
    fig = plt.figure(figsize=(2.7 * n + 1.2, 8.8), layout="constrained")
    grid = fig.add_gridspec(3, n, height_ratios=[1.0, 1.0, 0.9])
    top_axes = []
    im = None
    for c, (label, image) in enumerate(images):
        ax = fig.add_subplot(grid[0, c])
        top_axes.append(ax)
        im = _draw_activity(ax, image[..., z], mu[..., z], t[..., z], crop, vmax_mbq_ml, voxel_mm)
        ax.axhline(y * voxel_mm, color="white", ls="--", lw=0.8)
        head = f"{label} (slice z = {z})" if _is_truth_label(label) else f"{label}\n{_metrics_text(image, t, alpha)}"
        ax.set_title(head, fontsize=8)
        _style_image_axis(ax, c == 0)
        ax_vaa = fig.add_subplot(grid[1, c])
        if _is_truth_label(label):
            _vaa_legend(ax_vaa, alpha)
            continue
        _draw_vaa_map(ax_vaa, image, t, z, crop, voxel_mm, alpha)
        ax_vaa.set_title(f"VAA map, slice z = {z}", fontsize=8)
        _style_image_axis(ax_vaa, c == 0)
    fig.colorbar(im, ax=top_axes, label=ACTIVITY_LABEL, shrink=0.9)
    _draw_profiles(fig.add_subplot(grid[2, :]), images, t, y, z, crop[0], voxel_mm)
    if title:
        fig.suptitle(title)
    with atomic_path(out, replace=True) as tmp:
        fig.savefig(tmp, dpi=DPI)
    plt.close(fig)
    return out


# ----------------------------------------------------------------------------------- metric violins


def _ordered(values: list[str], preferred: list[str]) -> list[str]:
    """``values`` with the ``preferred`` ones first (in that order), 'dl:' methods next, the rest sorted."""
    present = set(values)
    head = [v for v in preferred if v in present]
    rest = sorted(present - set(head), key=lambda v: (not v.startswith("dl:"), v))
    return head + rest


def _dataset_colour(dataset: str, index: int) -> str:
    """Colour of a dataset: the paper's scheme for the four known ones, a grey shade otherwise."""
    return DATASET_COLOURS.get(dataset, to_hex(plt.get_cmap("Greys")(0.35 + 0.15 * (index % 4))))


def _half_width_at(vertices: np.ndarray, level: float, centre: float) -> float:
    """Half width of a violin body (x units) at height ``level``, from its polygon vertices."""
    right = vertices[vertices[:, 0] >= centre]
    if len(right) < 2:
        return 0.0
    order = np.argsort(right[:, 1])
    return float(np.interp(level, right[order, 1], right[order, 0] - centre))


def _draw_violin(ax: Axes, values: np.ndarray, position: float, width: float, colour: str) -> None:
    """One violin with median (solid) and quartiles (dashed) drawn inside it.

    A group with one value, or no spread, cannot give a kernel density: a short solid line marks
    the value instead.
    """
    if values.size == 0:
        return
    if values.size < 2 or np.ptp(values) == 0:
        ax.hlines(values[0], position - 0.3 * width, position + 0.3 * width, colors=colour, lw=2.0)
        ax.plot([position], [values[0]], marker="o", ms=3, color=colour)
        return
    parts = ax.violinplot([values], positions=[position], widths=width, showextrema=False)
    body = parts["bodies"][0]
    body.set_facecolor(colour)
    body.set_edgecolor("black")
    body.set_linewidth(0.5)
    body.set_alpha(0.85)
    vertices = body.get_paths()[0].vertices
    q25, q50, q75 = np.percentile(values, [25, 50, 75])
    for level, style in ((q25, "--"), (q50, "-"), (q75, "--")):
        half = _half_width_at(vertices, level, position)
        ax.hlines(level, position - half, position + half, colors="black", linestyles=style, lw=0.8)


def metric_violins(metrics: pd.DataFrame, out: str) -> str:
    """Distributions of SSIM, NRMSE (%), VAA (%) and AD (%) per method and dataset (paper's Figure 3).

    ``metrics``: columns case, dataset, method, ssim, nrmse_pct, vaa_pct, ad_pct, one row per
    case x dataset x method. One subplot per metric; methods on the x axis, one violin per dataset
    within each (noRR dark, RR bright); median solid, quartiles dashed. NaN values are dropped; a
    group with one value (or no spread) is drawn as a short line.
    """
    missing = [c for c in ["dataset", "method"] + [m for m, _ in METRIC_COLUMNS] if c not in metrics.columns]
    if missing:
        raise ValueError(f"metrics table lacks the columns {missing}")
    datasets = _ordered([str(d) for d in metrics["dataset"].unique()], DATASET_ORDER)
    methods = _ordered([str(m) for m in metrics["method"].unique()], METHOD_ORDER)
    colours = {d: _dataset_colour(d, i) for i, d in enumerate(datasets)}
    group_width = 0.8
    width = group_width / max(len(datasets), 1)
    fig, axes = plt.subplots(2, 2, figsize=(max(8.0, 1.6 * len(methods) * 2), 8.0), layout="constrained")
    for ax, (column, name) in zip(axes.ravel(), METRIC_COLUMNS):
        for m, method in enumerate(methods):
            for k, dataset in enumerate(datasets):
                rows = (metrics["method"].astype(str) == method) & (metrics["dataset"].astype(str) == dataset)
                values = pd.to_numeric(metrics.loc[rows, column], errors="coerce").dropna().to_numpy(dtype=float)
                position = m + (k - (len(datasets) - 1) / 2) * width
                _draw_violin(ax, values, position, 0.9 * width, colours[dataset])
        if column == "ad_pct":
            ax.axhline(0.0, color="grey", lw=0.8, ls=":")
        ax.set_xticks(range(len(methods)), [method_label(m) for m in methods], rotation=25, ha="right", fontsize=7)
        ax.set_xlim(-0.6, len(methods) - 0.4)
        ax.set_title(name)
        ax.grid(axis="y", alpha=0.3)
    handles = [Patch(facecolor=colours[d], edgecolor="black", label=d) for d in datasets]
    fig.legend(handles=handles, loc="outside upper center", ncols=max(len(datasets), 1), fontsize=8)
    with atomic_path(out, replace=True) as tmp:
        fig.savefig(tmp, dpi=DPI)
    plt.close(fig)
    return out


# ----------------------------------------------------------------------------------- voxel histogram


def voxel_histogram_percent(image: np.ndarray, truth: np.ndarray, bins: np.ndarray = HISTOGRAM_BINS_REL) -> np.ndarray:
    """Share of truth-mask voxels (%) per bin of activity concentration relative to ``max(truth)``.

    ``h[i] = 100 * #{v in M : bins[i] <= image(v) / max(truth) < bins[i+1]} / #M`` (last bin closed),
    ``M = truth > 0``. Voxels outside the bin range (or not finite) count in ``#M`` but in no bin,
    so the result sums to less than 100 when some fall outside.
    """
    image = np.asarray(image, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if image.shape != truth.shape:
        raise ValueError(f"image shape {image.shape} differs from truth shape {truth.shape}")
    mask = truth > 0
    if not mask.any():
        raise ValueError("truth has no voxel with activity > 0")
    values = image[mask] / float(truth.max())
    counts, _ = np.histogram(values[np.isfinite(values)], bins=np.asarray(bins, dtype=np.float64))
    return 100.0 * counts / mask.sum()


def voxel_histogram(images: list[tuple[str, np.ndarray]], truth: np.ndarray, out: str, title: str = "") -> str:
    """Activity-concentration-voxel histograms inside the truth mask (paper's Figures 6 and 7C).

    ``images``: (label, activity image in MBq/mL) on the grid of ``truth`` (MBq/mL). x: activity
    concentration relative to the truth's maximum (bins 0..1.3); y: voxels of the mask (%). The
    truth is the first series (grey, filled); a label tells the share of voxels above 1.3 when there are any.
    """
    t = _check_volume("truth", truth)
    series = [("truth", t)] + [(label, _check_volume(label, image, t.shape)) for label, image in images]
    fig, ax = plt.subplots(figsize=(6.4, 3.8), layout="constrained")
    for label, image in series:
        percent = voxel_histogram_percent(image, t, HISTOGRAM_BINS_REL)
        above = 100.0 * np.mean(image[t > 0] / t.max() > HISTOGRAM_BINS_REL[-1])
        text = f"{label} ({above:.1f} % above {HISTOGRAM_BINS_REL[-1]:g})" if above > 0 else label
        if label == "truth":  # grey filled reference, so that a corrected image on top of it stays visible
            ax.stairs(percent, HISTOGRAM_BINS_REL, label=text, fill=True, color="0.75", zorder=1)
        else:
            ax.stairs(percent, HISTOGRAM_BINS_REL, label=text, lw=1.2, zorder=2)
    ax.set_xlim(HISTOGRAM_BINS_REL[0], HISTOGRAM_BINS_REL[-1])
    ax.set_xlabel("activity concentration relative to the true maximum")
    ax.set_ylabel("voxels (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    with atomic_path(out, replace=True) as tmp:
        fig.savefig(tmp, dpi=DPI)
    plt.close(fig)
    return out
