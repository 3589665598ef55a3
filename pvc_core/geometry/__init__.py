"""Geometry of images in the world (NIfTI RAS+, mm): frames and activity-conserving resampling.

- :mod:`~pvc_core.geometry.frames`: the world frame and the simulation/reconstruction grids
  (:func:`simulation_frame`, centred on the input's field of view).
- :mod:`~pvc_core.geometry.resample`: :func:`resample_activity` (activity conserved, exact for
  aligned grids), :func:`resample_mean` (mu), :func:`resample_labels` (nearest neighbour).
"""

from pvc_core.geometry.frames import centred_affine, fov_centre_mm, simulation_frame
from pvc_core.geometry.resample import (index_map, is_axis_aligned, lost_activity_fraction, resample_activity,
                                        resample_labels, resample_mean, total_activity_mbq)

__all__ = ["centred_affine", "fov_centre_mm", "simulation_frame", "index_map", "is_axis_aligned",
           "lost_activity_fraction", "resample_activity", "resample_labels", "resample_mean", "total_activity_mbq"]
