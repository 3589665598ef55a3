"""The phantom section of the configuration, read once into typed settings, and the two grids.

Grids are cubic and centred on the origin (as :func:`pvc_core.io.affine_from_voxel_size`):
voxel ``i`` of an axis with ``n`` voxels of ``v`` mm has its centre at ``(i - (n - 1) / 2) * v``.
Arrays are indexed (x, y, z) in RAS order: axis 0 increases towards the patient's right, axis 1
towards anterior, axis 2 towards superior.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field

import numpy as np

from pvc_core.config import load_schema
from pvc_core.errors import InputError

BED_POSITIONS = ("head", "thorax", "abdomen")


@dataclass(frozen=True)
class Grid:
    """A cubic grid of ``matrix`` voxels per axis, ``voxel_mm`` each, centred on the origin."""

    matrix: int
    voxel_mm: float

    @property
    def fov_mm(self) -> float:
        """Edge of the field of view in mm."""
        return self.matrix * self.voxel_mm

    @property
    def voxel_ml(self) -> float:
        """Volume of one voxel in mL."""
        return self.voxel_mm**3 / 1000.0

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.matrix,) * 3

    def centres_mm(self) -> np.ndarray:
        """Voxel-centre coordinates (mm) along one axis, float64."""
        return (np.arange(self.matrix) - (self.matrix - 1) / 2.0) * self.voxel_mm


@dataclass(frozen=True)
class Distribution:
    """A scalar drawn uniformly or log-uniformly in [low, high]."""

    kind: str
    low: float
    high: float

    def draw(self, rng: np.random.Generator) -> float:
        u = float(rng.random())
        if self.kind == "loguniform":
            return float(np.exp(np.log(self.low) + u * (np.log(self.high) - np.log(self.low))))
        return self.low + u * (self.high - self.low)


@dataclass(frozen=True)
class VoxelSettings:
    """Settings of a labelled voxel phantom (``phantom.voxel``)."""

    path: str | None
    labels: dict[int, str]
    orientation: str
    bed_centres_mm: dict[str, float]
    scale_range: tuple[float, float]
    fit: str


@dataclass(frozen=True)
class PhantomSettings:
    """Everything :func:`pvc_core.phantom.generate_case` reads from ``config['phantom']``."""

    source: str
    bed_probabilities: dict[str, float]
    bed_jitter_mm: float
    bmi_range: tuple[float, float]
    height_scale_range: tuple[float, float]
    organ_scale_sd: float
    body_margin_mm: float
    shape_edge_mm: tuple[float, float]
    shape_edge_distribution: str
    active_volume_ml: Distribution
    total_activity_mbq: Distribution
    volume_tolerance: float
    max_shapes: int
    pattern_correlation_mm: tuple[float, float]
    pattern_min_range: tuple[float, float]
    shape_level_range: tuple[float, float]
    sharp_steps_probability: float
    sharp_steps_levels: tuple[int, int]
    voxel: VoxelSettings = field(default=None)  # type: ignore[assignment]

    @classmethod
    def from_config(cls, config: dict) -> "PhantomSettings":
        """Read ``config['phantom']``; keys left out take the schema's defaults.

        Raises :class:`InputError` naming the key for a range whose minimum exceeds its maximum,
        bed probabilities that are all zero, or an incomplete ``voxel`` section.
        """
        p = _with_schema_defaults(config.get("phantom") or {})

        def pair(key: str, value=None) -> tuple[float, float]:
            lo, hi = (p[key] if value is None else value)
            if lo > hi:
                raise InputError(f"minimum {lo} exceeds maximum {hi}", f"phantom.{key}")
            return float(lo), float(hi)

        def dist(key: str) -> Distribution:
            d = p[key]
            lo, hi = pair(key, (d["min"], d["max"]))
            return Distribution(d.get("distribution", "loguniform"), lo, hi)

        beds = {b: float(p["bed_positions"].get(b, 0.0)) for b in BED_POSITIONS}
        if sum(beds.values()) <= 0:
            raise InputError("probabilities must not all be zero", "phantom.bed_positions")
        v = p["voxel"]
        voxel = VoxelSettings(
            path=v.get("path"), labels={int(k): str(m) for k, m in (v.get("labels") or {}).items()},
            orientation=str(v.get("orientation", "LPS")).upper(),
            bed_centres_mm={k: float(x) for k, x in (v.get("bed_centres_mm") or {}).items()},
            scale_range=pair("voxel.scale_range", v.get("scale_range", [1.0, 1.0])), fit=v.get("fit", "scale"))
        settings = cls(
            source=p["source"], bed_probabilities=beds, bed_jitter_mm=float(p["bed_jitter_mm"]),
            bmi_range=pair("bmi_range"), height_scale_range=pair("height_scale_range"),
            organ_scale_sd=float(p["organ_scale_sd"]), body_margin_mm=float(p["body_margin_mm"]),
            shape_edge_mm=pair("shape_edge_mm"), shape_edge_distribution=p["shape_edge_distribution"],
            active_volume_ml=dist("active_volume_ml"), total_activity_mbq=dist("total_activity_mbq"),
            volume_tolerance=float(p["volume_tolerance"]), max_shapes=int(p["max_shapes"]),
            pattern_correlation_mm=pair("pattern_correlation_mm"), pattern_min_range=pair("pattern_min_range"),
            shape_level_range=pair("shape_level_range"),
            sharp_steps_probability=float(p["sharp_steps"].get("probability", 0.0)),
            sharp_steps_levels=tuple(int(x) for x in pair("sharp_steps.levels",  # type: ignore[arg-type]
                                                          p["sharp_steps"].get("levels", [2, 4]))),
            voxel=voxel)
        if settings.source == "voxel":
            _check_voxel(settings, beds)
        return settings


def _check_voxel(s: PhantomSettings, beds: dict[str, float]) -> None:
    if not s.voxel.path:
        raise InputError("source is 'voxel' but no label map is given", "phantom.voxel.path")
    if not s.voxel.labels:
        raise InputError("source is 'voxel' but the label -> material table is empty", "phantom.voxel.labels")
    for bed, prob in beds.items():
        if prob > 0 and bed not in s.voxel.bed_centres_mm:
            raise InputError(f"bed position '{bed}' has probability {prob} but no centre",
                             "phantom.voxel.bed_centres_mm")


@functools.lru_cache(maxsize=1)
def _phantom_schema() -> dict:
    return load_schema()["properties"]["phantom"]["properties"]


def _with_schema_defaults(section: dict) -> dict:
    """The phantom section with every missing key (one level of nesting) set to the schema's default."""
    props = copy.deepcopy(_phantom_schema())
    out = dict(section)
    for key, sub in props.items():
        if key not in out and "default" in sub:
            out[key] = sub["default"]
        if isinstance(out.get(key), dict) and "properties" in sub:
            inner = dict(out[key])
            for k2, s2 in sub["properties"].items():
                if k2 not in inner and "default" in s2:
                    inner[k2] = s2["default"]
            out[key] = inner
    return out
