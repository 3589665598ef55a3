"""The projection data of one acquisition: three energy windows plus the geometry that made them."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from pvc_core.spect.energy_windows import WINDOW_NAMES

#: Extra entry of ``windows`` written by the simulator: the expected scatter in the photopeak
#: window (counts; never noisy). Only a simulation knows it: it is the additive term of the
#: ``simulated`` scatter correction (an oracle, as simulation studies with SIMIND use), never
#: part of what a camera records.
SIMULATED_SCATTER = "photopeak_scatter_expected"


@dataclass
class Projections:
    """Counts in the photopeak and both scatter windows, with the acquisition geometry.

    Attributes
    ----------
    windows:
        ``'photopeak'``, ``'lower'``, ``'upper'`` -> float32 array (n_views, n_pixels, n_pixels):
        counts per pixel and view (expected counts when noise-free, integers when Poisson);
        axis 1 is the detector's transaxial axis, axis 2 the axial axis (= image axis 2).
        Simulated projections also hold :data:`SIMULATED_SCATTER` (expected photopeak scatter).
    angles_deg:
        View angles (degrees), see :mod:`pvc_core.spect.geometry` for the convention.
    radii_mm:
        Distance from the rotation axis to the collimator face per view (body-contour orbit).
    pixel_mm:
        Detector pixel size (mm), equal to the reconstruction voxel size.
    time_per_view_s:
        Acquisition time per view (s).
    meta:
        What was simulated: sensitivity, counts per window, scatter fraction, noise, camera...
    """

    windows: dict[str, np.ndarray]
    angles_deg: np.ndarray
    radii_mm: np.ndarray
    pixel_mm: float
    time_per_view_s: float
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [w for w in WINDOW_NAMES if w not in self.windows]
        if missing:
            raise ValueError(f"projections lack the energy window(s) {missing}")
        self.windows = {w: np.asarray(a, dtype=np.float32) for w, a in self.windows.items()}
        self.angles_deg = np.asarray(self.angles_deg, dtype=float)
        self.radii_mm = np.asarray(self.radii_mm, dtype=float)
        shapes = {a.shape for a in self.windows.values()}
        if len(shapes) != 1:
            raise ValueError(f"all windows must have the same shape, got {sorted(shapes)}")
        shape = shapes.pop()
        if len(shape) != 3 or shape[0] != len(self.angles_deg) or len(self.radii_mm) != shape[0]:
            raise ValueError(f"windows are {shape}; expected (n_views={len(self.angles_deg)}, n_u, n_z) "
                             f"with one radius per view")

    @property
    def n_views(self) -> int:
        return len(self.angles_deg)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.windows["photopeak"].shape

    def total_counts(self) -> dict[str, float]:
        """Sum of counts per energy window (the recorded windows only)."""
        return {w: float(self.windows[w].sum(dtype=np.float64)) for w in WINDOW_NAMES}

    @property
    def simulated_scatter(self) -> np.ndarray | None:
        """The expected photopeak scatter (counts) when the projections were simulated, else None."""
        return self.windows.get(SIMULATED_SCATTER)

    def replace_windows(self, windows: dict[str, np.ndarray], **meta) -> "Projections":
        """A copy with new window data and ``meta`` updated by ``meta``."""
        new_meta = copy.deepcopy(self.meta)
        new_meta.update(meta)
        return Projections(windows=windows, angles_deg=self.angles_deg.copy(), radii_mm=self.radii_mm.copy(),
                           pixel_mm=self.pixel_mm, time_per_view_s=self.time_per_view_s, meta=new_meta)
