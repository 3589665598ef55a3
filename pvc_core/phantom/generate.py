"""One phantom case: anatomy (procedural or voxel), mu at 208 keV, random activity, both grids.

``generate_case(case_id, seed, phantom, grid)`` is a pure function of its arguments: the anatomy draws
come from ``rng_for(seed, case_id, 'anatomy')`` and the activity draws from
``rng_for(seed, case_id, 'activity')``, so the same (seed, case id) gives the same arrays bit for
bit, and changing one stage's draws never shifts the other's. With ``phantom.uptake``'s
``patient_probability`` above 0, ``rng_for(seed, case_id, 'uptake')`` decides whether the case is
patient-like (:mod:`pvc_core.phantom.uptake`) and draws it; a case of random shapes keeps its
'activity' draws, so it is the same as with the default.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from pvc_core.errors import InputError
from pvc_core.phantom.activity import random_activity
from pvc_core.phantom.anatomy import LABEL_MATERIALS, LABELS, build_body, draw_anatomy, draw_bed
from pvc_core.phantom.materials import PHOTOPEAK_KEV, mu_lookup
from pvc_core.phantom.uptake import patient_uptake
from pvc_core.geometry.blocks import downsample_activity, downsample_mean
from pvc_core.seeding import rng_for
from pvc_core.specs import GridSpec, PhantomSettings


@dataclass
class PhantomCase:
    """A phantom on the simulation grid and its truth on the reconstruction grid.

    Arrays are indexed (x, y, z) in RAS order (axis 0 towards the patient's right, 1 anterior,
    2 superior) on grids centred on the origin.

    Attributes
    ----------
    activity_mbq_ml: activity concentration (MBq/mL), simulation grid, float32.
    mu_per_cm: linear attenuation coefficient at 208 keV (1/cm), simulation grid, float32.
    labels: organ (procedural) or phantom (voxel) labels, simulation grid, uint8; names and
        materials in ``meta['labels']``.
    body_mask: voxels inside the body, simulation grid, bool.
    sim_voxel_mm: voxel edge of the simulation grid (mm).
    activity_recon_mbq_ml: activity-conserving downsampling to the reconstruction grid, float32.
    mu_recon_per_cm: block mean of mu on the reconstruction grid, float32.
    recon_voxel_mm: voxel edge of the reconstruction grid (mm).
    meta: JSON-serialisable description (case id, seed, bed position, anatomy draws, activity
        draws and achieved values, grids).
    """

    activity_mbq_ml: np.ndarray
    mu_per_cm: np.ndarray
    labels: np.ndarray
    body_mask: np.ndarray
    sim_voxel_mm: float
    activity_recon_mbq_ml: np.ndarray
    mu_recon_per_cm: np.ndarray
    recon_voxel_mm: float
    meta: dict


def generate_case(case_id: int, seed: int, settings: PhantomSettings, grid: GridSpec, *,
                  timings: dict | None = None) -> PhantomCase:
    """Generate phantom case ``case_id`` with the phantom ``settings`` on the grids of ``grid``.

    ``timings`` (optional) receives the seconds spent in 'anatomy', 'activity' and 'downsample'.
    The activity is the paper's random shapes or, with ``settings.uptake.patient_probability``,
    patient-like uptake (:func:`pvc_core.phantom.uptake.patient_uptake`).
    Raises :class:`InputError` (naming the key or file) for unusable phantom settings, e.g. a
    voxel phantom whose labels lack a material, an empty body, or a target active volume larger
    than the body.
    """
    t0 = time.perf_counter()
    sim, recon, factor = grid.sim, grid.recon, grid.sim_factor
    rng_anatomy = rng_for(seed, case_id, "anatomy")
    if settings.source == "procedural":
        draw = draw_anatomy(rng_anatomy, settings)
        body = build_body(sim, draw, settings.body_margin_mm)
        labels, label_materials = body.labels, dict(LABEL_MATERIALS)
        label_names = {k: name for k, (name, _) in LABELS.items()}
        anatomy_meta = {"bed_position": draw.bed_position, "bed_offset_mm": draw.bed_offset_mm,
                        "bed_centre_depth_mm": body.bed_centre_depth_mm, "bmi": draw.bmi,
                        "height_scale": draw.height_scale, "organ_scales": dict(draw.organ_scales),
                        "lateral_fit_scale": body.lateral_fit_scale}
    else:
        from pvc_core.phantom.voxel_phantom import build_voxel_body  # lazy: pvc_core.io, nibabel (~0.15 s): voxel phantoms only

        bed, offset = draw_bed(rng_anatomy, settings)
        scale = float(rng_anatomy.uniform(*settings.voxel.scale_range))
        vb = build_voxel_body(sim, settings, bed, offset, scale)
        labels, label_materials = vb.labels, vb.label_materials
        label_names = {k: f"label_{k}" for k in label_materials}
        anatomy_meta = {"bed_position": bed, "bed_offset_mm": offset, **vb.meta}
    mu_table = mu_lookup(label_materials)
    mu = mu_table[labels]
    body_mask = _body_mask(labels, label_materials)
    if not body_mask.any():
        raise InputError("the phantom has no body voxel in the field of view", "phantom")
    t1 = time.perf_counter()

    uptake = settings.uptake
    rng_uptake = rng_for(seed, case_id, "uptake") if uptake is not None and uptake.patient_like else None
    if rng_uptake is not None and rng_uptake.random() < uptake.patient_probability:
        act = patient_uptake(labels, body_mask, sim, rng_uptake, uptake, settings.total_activity_mbq)
    else:
        act = random_activity(body_mask, sim, rng_for(seed, case_id, "activity"), settings)
        if rng_uptake is not None:  # a mixture records which model each case drew; the default adds nothing
            act.info = {"uptake_model": "shapes", **act.info}
    t2 = time.perf_counter()
    activity_recon = downsample_activity(act.activity_mbq_ml, factor)
    mu_recon = downsample_mean(mu, factor)
    t3 = time.perf_counter()
    if timings is not None:
        timings.update(anatomy=t1 - t0, activity=t2 - t1, downsample=t3 - t2)

    meta = {
        "case_id": int(case_id), "seed": int(seed), "source": settings.source, **anatomy_meta,
        **act.info,
        "body_volume_ml": float(body_mask.sum() * sim.voxel_ml),
        "sim_matrix": sim.matrix, "sim_voxel_mm": sim.voxel_mm,
        "recon_matrix": recon.matrix, "recon_voxel_mm": recon.voxel_mm,
        "photopeak_kev": PHOTOPEAK_KEV,
        "labels": {str(k): {"name": label_names[k], "material": m, "mu_per_cm": float(mu_table[k])}
                   for k, m in sorted(label_materials.items())},
        "axes": "RAS (axis 0 -> patient right, 1 -> anterior, 2 -> superior)",
    }
    return PhantomCase(act.activity_mbq_ml, mu, labels, body_mask, sim.voxel_mm, activity_recon, mu_recon,
                       recon.voxel_mm, meta)


def _body_mask(labels: np.ndarray, label_materials: dict[int, str]) -> np.ndarray:
    """Voxels whose label has a material other than 'outside' (uint8 labels)."""
    outside = np.array([label_materials.get(i) in (None, "outside") for i in range(256)])
    return ~outside[labels]


def check_phantom_source(settings: PhantomSettings, grid: GridSpec) -> None:
    """Refuse, before any job starts, phantom settings that would make every case fail.

    For a voxel phantom this reads the label map once (as the jobs do, at their sampling step)
    and places it for every bed position that can be drawn, at the largest configured scale:
    a missing file, a header that does not match its data, a label without a material, an empty
    body in the field of view or a body wider than it raise :class:`InputError` naming the file
    or key. For every source, a smallest target active volume larger than the body (voxel
    phantom) or than the field of view (procedural bodies, whose size is drawn per case) is
    refused too. What can only fail for some draws stays a per-case failure in the shard
    manifest and the report.
    """
    sim = grid.sim
    smallest_ml = settings.active_volume_ml.low
    if settings.source == "procedural":
        fov_ml = sim.voxel_ml * sim.matrix ** 3
        if smallest_ml > fov_ml:
            raise InputError(f"the smallest target active volume {smallest_ml:.0f} mL exceeds the field of view's "
                             f"{fov_ml:.0f} mL", "phantom.active_volume_ml")
        return
    from pvc_core.phantom.voxel_phantom import build_voxel_body  # lazy: pvc_core.io, nibabel (~0.15 s): voxel phantoms only

    for bed, prob in settings.bed_probabilities.items():
        if prob <= 0:
            continue
        vb = build_voxel_body(sim, settings, bed, 0.0, settings.voxel.scale_range[1])
        body_ml = float(_body_mask(vb.labels, vb.label_materials).sum() * sim.voxel_ml)
        if smallest_ml > body_ml:
            raise InputError(f"the smallest target active volume {smallest_ml:.0f} mL exceeds the body's "
                             f"{body_ml:.0f} mL at bed position '{bed}'", "phantom.active_volume_ml")
