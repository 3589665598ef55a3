"""The phantom section of the configuration and the grids, as the phantom package imports them.

They are plain settings and live on the settings floor (:mod:`pvc_core.specs`): :class:`Grid`,
:class:`PhantomSettings` with :class:`Distribution` and :class:`VoxelSettings`, and
:data:`BED_POSITIONS`. This module re-exports them so that ``from pvc_core.phantom.settings
import ...`` keeps working.
"""

from __future__ import annotations

from pvc_core.specs import BED_POSITIONS, Distribution, Grid, PhantomSettings, VoxelSettings

__all__ = ["BED_POSITIONS", "Distribution", "Grid", "PhantomSettings", "VoxelSettings"]
