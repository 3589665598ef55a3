"""Random activity: shapes within their size bounds, pattern range, sharp steps, bad targets."""

import copy
from pathlib import Path

import numpy as np
import pytest

from pvc_core.config import load_config
from pvc_core.errors import InputError
from pvc_core.phantom.activity import random_activity
from pvc_core.phantom.settings import Grid, PhantomSettings
from pvc_core.seeding import rng_for

CONFIG = Path(__file__).resolve().parents[2] / "config" / "test.yaml"
GRID = Grid(48, 6.0)


def _settings(**phantom) -> PhantomSettings:
    cfg = load_config(CONFIG)
    cfg = copy.deepcopy(cfg)
    cfg["phantom"].update(phantom)
    return PhantomSettings.from_config(cfg)


def _body(grid: Grid = GRID) -> np.ndarray:
    c = grid.centres_mm()
    X, Y, Z = np.meshgrid(c, c, c, indexing="ij")
    return (X / 120.0) ** 2 + (Y / 90.0) ** 2 <= 1.0  # an elliptic cylinder through the whole FOV


def test_shapes_stay_in_their_boxes_and_edges_in_bounds():
    s = _settings(shape_edge_mm=[12.0, 60.0], active_volume_ml={"distribution": "uniform", "min": 300.0, "max": 300.0})
    body = _body()
    c = GRID.centres_mm()
    for case in range(3):
        res = random_activity(body, GRID, rng_for(5, case, "activity"), s)
        assert res.info["fallback_fill_voxels"] == 0 and res.shapes
        for sid, shape in enumerate(res.shapes, start=1):
            assert np.all(shape.edges_mm >= 12.0 - 1e-9) and np.all(shape.edges_mm <= 60.0 + 1e-9)
            idx = np.nonzero(res.shape_ids == sid)
            assert idx[0].size == shape.n_voxels > 0
            pts = np.stack([c[i] for i in idx], axis=1) - shape.centre_mm
            local = pts @ shape.rotation  # coordinates along the shape's own axes
            assert np.all(np.abs(local) <= shape.edges_mm / 2 + 1e-6)


def test_activity_inside_body_and_total_exact():
    s = _settings()
    body = _body()
    res = random_activity(body, GRID, rng_for(1, 2, "activity"), s)
    a = res.activity_mbq_ml
    assert not a[~body].any()
    assert np.array_equal(a > 0, res.shape_ids > 0)
    assert a.sum(dtype=np.float64) * GRID.voxel_ml == pytest.approx(res.info["total_activity_mbq_target"], rel=1e-5)


def test_pattern_spans_its_minimum_to_one():
    s = _settings(shape_level_range=[1.0, 1.0], pattern_min_range=[0.5, 0.5],
                  active_volume_ml={"distribution": "uniform", "min": 400.0, "max": 400.0})
    a = random_activity(_body(), GRID, rng_for(3, 0, "activity"), s).activity_mbq_ml
    v = a[a > 0]
    assert v.min() / v.max() >= 0.5 - 1e-6
    assert np.unique(v).size > 100  # smooth, not stepped


def test_sharp_steps_quantise_the_pattern():
    s = _settings(shape_level_range=[1.0, 1.0], pattern_min_range=[0.2, 0.2],
                  sharp_steps={"probability": 1.0, "levels": [3, 3]},
                  active_volume_ml={"distribution": "uniform", "min": 400.0, "max": 400.0})
    res = random_activity(_body(), GRID, rng_for(3, 0, "activity"), s)
    v = res.activity_mbq_ml[res.activity_mbq_ml > 0]
    levels = np.unique(v)
    assert levels.size <= 3 and res.info["sharp_steps_levels"] == 3
    assert levels.min() / levels.max() == pytest.approx(0.2, rel=1e-5)


def test_target_larger_than_body_is_an_input_error():
    s = _settings(active_volume_ml={"distribution": "uniform", "min": 1e5, "max": 1e5})
    with pytest.raises(InputError, match=r"^phantom\.active_volume_ml: target active volume .* exceeds the body"):
        random_activity(_body(), GRID, rng_for(0, 0, "activity"), s)


def test_empty_body_is_an_input_error():
    with pytest.raises(InputError, match="body mask is empty"):
        random_activity(np.zeros(GRID.shape, bool), GRID, rng_for(0, 0, "activity"), _settings())


def test_volume_that_whole_shapes_cannot_reach_is_grown_to_target():
    """With one shape allowed, the rest grows from the active voxels: the volume still matches."""
    s = _settings(max_shapes=1, shape_edge_mm=[6.0, 6.0],
                  active_volume_ml={"distribution": "uniform", "min": 50.0, "max": 50.0})
    res = random_activity(_body(), GRID, rng_for(0, 0, "activity"), s)
    assert res.info["fallback_fill_voxels"] > 0
    assert res.info["active_volume_ml"] == pytest.approx(50.0, abs=0.5 * GRID.voxel_ml + 1.0)
