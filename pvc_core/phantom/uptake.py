"""Patient-like uptake: warm organs, a two-compartment kidney and small hot lesions.

The paper's training phantoms hold activity in random shapes in a cold body; its model failed on
the kidney for want of sharp-edged compartments, and on patient-like images (warm organs with
small hot lesions, as a Lu-DOTATATE or Lu-PSMA patient shows) ours lowers small tumours' recovery
(docs/results.md, "Robustness on an independent chain"). This module fills the procedural body's
organ labels instead (``phantom.uptake``, chosen per case in :func:`pvc_core.phantom.generate_case`):

1. Every tissue is warm at its own concentration relative to the soft-tissue background (1),
   drawn log-uniformly in ``organ_ratio`` (air holds none). The ranges span published Lu-177
   biodistributions (the schema's ``phantom.uptake.organ_ratio`` gives the numbers and sources):
   Lu-DOTATATE organ doses of kidneys 0.57, liver 0.27, spleen 1.17 mGy/MBq (61 patients, Clin
   Nucl Med 2013;38(3)); Lu-PSMA-617 kidneys 0.82 against bone marrow 0.030 Gy/GBq (Mol Imaging
   Radionucl Ther 2017, PMC5472088) and PSMA-617 kinetics with kidneys 8.1, spleen 1.4, liver 1.2,
   other organs 0.26 (Eur J Nucl Med Mol Imaging 2018, PMC5700223). A beta emitter's self-dose
   ratio is the ratio of time-integrated concentrations, so: kidney and spleen above the liver,
   the liver about 5x and the kidneys about 30x the body background.
2. Each kidney has two compartments with a sharp border: a cortex shell ``kidney_cortex_mm``
   thick (every voxel whose centre lies within that distance of the kidney's surface, at least
   one voxel) and the medulla inside it, ``kidney_cortex_medulla_ratio`` times colder.
3. A smooth multiplicative field (relative SD ``organ_heterogeneity``, correlation
   :data:`HETEROGENEITY_CORRELATION_MM`) makes the warm tissues nonuniform.
4. ``lesion_count`` lesions, each in a host tissue drawn by ``lesion_hosts``: a rough ellipsoid
   (axes within a factor :data:`_ASPECT_MAX` of a sphere's, surface perturbed by up to
   ``lesion_roughness``) whose level set holds the drawn ``lesion_volume_ml`` to a voxel (unless
   the body cuts it), at ``lesion_contrast`` times its host's concentration. With
   ``necrotic_probability`` a lesion has a cold core: the same shape scaled about its centre to
   ``necrotic_core_fraction`` of the diameter, at ``necrotic_activity_fraction`` of the rim.
5. The distribution is scaled to the total activity drawn from ``phantom.total_activity_mbq``,
   exactly as for the random shapes.

All activity lies inside the body mask. Every draw comes from the generator passed in (the case's
'uptake' stream), in a fixed order, so a case is a pure function of (seed, case id).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from pvc_core.phantom.activity import random_rotation
from pvc_core.phantom.anatomy import (
    ADIPOSE,
    AIR,
    BLADDER,
    BODY,
    BRAIN,
    CORTICAL_BONE,
    HEART,
    KIDNEY_LEFT,
    KIDNEY_RIGHT,
    LIVER,
    LUNG,
    SPLEEN,
    SPONGIOSA,
)
from pvc_core.specs import Distribution, Grid, UptakeSettings

#: Labels of each ``organ_ratio`` key (soft tissue is the background, 1; air holds no activity).
ORGAN_LABELS: dict[str, tuple[int, ...]] = {
    "liver": (LIVER,), "spleen": (SPLEEN,), "kidney_cortex": (KIDNEY_RIGHT, KIDNEY_LEFT), "bladder": (BLADDER,),
    "heart": (HEART,), "lungs": (LUNG,), "brain": (BRAIN,), "subcutaneous_fat": (ADIPOSE,),
    "spongy_bone": (SPONGIOSA,), "cortical_bone": (CORTICAL_BONE,),
}
#: Labels of each lesion host and the ``organ_ratio`` key its concentration comes from (None: background).
HOST_LABELS: dict[str, tuple[tuple[int, ...], str | None]] = {
    "liver": ((LIVER,), "liver"), "soft_tissue": ((BODY,), None), "spongy_bone": ((SPONGIOSA,), "spongy_bone"),
    "spleen": ((SPLEEN,), "spleen"), "kidneys": ((KIDNEY_RIGHT, KIDNEY_LEFT), "kidney_cortex"),
}
#: Codes of :attr:`PatientUptake.compartments`.
KIDNEY_CORTEX, KIDNEY_MEDULLA, LESION_RIM, NECROTIC_CORE = 1, 2, 3, 4
#: Correlation length (mm) of the organs' heterogeneity field (node spacing of its cubic B-spline).
HETEROGENEITY_CORRELATION_MM = 40.0

_ASPECT_MAX = 1.25  # a lesion's semi-axes lie within this factor of the equal-volume sphere's radius
_ROUGHNESS_NODES = 5  # nodes per axis of a lesion's surface perturbation ...
_ROUGHNESS_SPAN = 1.3  # ... laid over [-1.3, 1.3] of its normalised local coordinates
_BOX_REACH = 1.8  # half-edge of a lesion's search box, in units of its largest semi-axis
_CENTRE_TRIES = 32  # candidate centres drawn per lesion (always this many, for a fixed order of draws)


@dataclass
class Lesion:
    """One lesion: where, how big, how hot (relative to the background), and what it got."""

    host: str
    centre_mm: np.ndarray
    volume_ml_target: float
    contrast: float
    concentration_rel: float
    roughness: float
    necrotic: bool
    core_fraction: float
    core_activity_fraction: float
    n_voxels: int = 0
    n_core_voxels: int = 0
    host_fraction: float = 0.0

    def info(self, voxel_ml: float) -> dict:
        """JSON-serialisable record for the case's metadata."""
        return {"host": self.host, "centre_mm": [round(float(v), 2) for v in self.centre_mm],
                "volume_ml_target": self.volume_ml_target, "volume_ml": self.n_voxels * voxel_ml,
                "contrast": self.contrast, "concentration_rel": self.concentration_rel,
                "roughness": self.roughness, "host_fraction": self.host_fraction, "necrotic": self.necrotic,
                "core_fraction": self.core_fraction, "core_activity_fraction": self.core_activity_fraction,
                "core_volume_ml": self.n_core_voxels * voxel_ml}


@dataclass
class PatientUptake:
    """Patient-like activity (MBq/mL, float32) with what it was made of.

    ``lesion_ids`` (int16) numbers the lesions from 1 (0 = none, order of :attr:`lesions`);
    ``compartments`` (uint8) marks the kidney cortex and medulla, lesion rims and necrotic cores
    (:data:`KIDNEY_CORTEX`, ...); ``organ_ratio`` holds the drawn concentration of each tissue over
    the background; ``info`` is the case's metadata (``uptake_model: patient``).
    """

    activity_mbq_ml: np.ndarray
    lesion_ids: np.ndarray
    compartments: np.ndarray
    lesions: list[Lesion]
    organ_ratio: dict[str, float]
    background_mbq_ml: float
    info: dict = field(default_factory=dict)


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if hi > lo else float(lo)


def patient_uptake(labels: np.ndarray, body_mask: np.ndarray, grid: Grid, rng: np.random.Generator,
                   settings: UptakeSettings, total_activity_mbq: Distribution) -> PatientUptake:
    """Patient-like activity (MBq/mL on ``grid``) in the procedural body ``labels`` (uint8, x, y, z).

    Only voxels of ``body_mask`` hold activity; the total is drawn from ``total_activity_mbq``.
    """
    body = np.asarray(body_mask, dtype=bool)
    vs, vml = grid.voxel_mm, grid.voxel_ml
    # case-level draws, always in this order
    total_mbq = total_activity_mbq.draw(rng)
    ratio = {k: _loguniform(rng, *settings.organ_ratio[k]) for k in ORGAN_LABELS}
    cortex_medulla = _loguniform(rng, *settings.kidney_cortex_medulla_ratio)
    cortex_mm = float(rng.uniform(*settings.kidney_cortex_mm))
    hetero = float(rng.uniform(*settings.organ_heterogeneity))
    nodes = math.ceil(grid.fov_mm / HETEROGENEITY_CORRELATION_MM) + 4
    coarse = rng.standard_normal((nodes,) * 3)
    n_lesions = int(rng.integers(settings.lesion_count[0], settings.lesion_count[1] + 1))

    lut = np.zeros(256, dtype=np.float32)
    lut[BODY] = 1.0
    for key, labs in ORGAN_LABELS.items():
        lut[list(labs)] = ratio[key]
    lut[AIR] = 0.0
    conc = lut[labels]
    conc[~body] = 0.0  # a label without a body material (none of the procedural body's) holds nothing
    compartments = np.zeros(grid.shape, dtype=np.uint8)
    kidney_vox = np.zeros(2, dtype=np.int64)  # cortex, medulla
    for lab in (KIDNEY_RIGHT, KIDNEY_LEFT):
        kidney_vox += _split_kidney(labels == lab, cortex_mm / vs, conc, compartments,
                                    ratio["kidney_cortex"] / cortex_medulla)
    if hetero > 0:
        conc *= _heterogeneity(coarse, grid, body, hetero)

    lesion_ids = np.zeros(grid.shape, dtype=np.int16)
    lesions = _place_lesions(n_lesions, labels, body, grid, rng, settings, ratio, conc, lesion_ids, compartments)

    scale = total_mbq / (float(conc.sum(dtype=np.float64)) * vml)
    activity = conc
    activity *= np.float32(scale)
    info = {
        "uptake_model": "patient",
        "active_volume_ml": float(np.count_nonzero(activity) * vml),
        "total_activity_mbq_target": float(total_mbq),
        "total_activity_mbq": float(activity.sum(dtype=np.float64) * vml),
        "background_mbq_ml": float(scale),
        "organ_ratio": ratio,
        "kidney_cortex_medulla_ratio": cortex_medulla,
        "kidney_cortex_mm": cortex_mm,
        "kidney_cortex_ml": float(kidney_vox[0] * vml),
        "kidney_medulla_ml": float(kidney_vox[1] * vml),
        "organ_heterogeneity": hetero,
        "n_lesions": len(lesions),
        "lesions": [les.info(vml) for les in lesions],
        "max_activity_mbq_ml": float(activity.max()),
    }
    return PatientUptake(activity, lesion_ids, compartments, lesions, ratio, float(scale), info)


def _split_kidney(kidney: np.ndarray, cortex_vox: float, conc: np.ndarray, compartments: np.ndarray,
                  medulla_rel: float) -> tuple[int, int]:
    """Mark a kidney's cortex (centres within ``cortex_vox`` voxels of its surface) and set its medulla's
    concentration to ``medulla_rel`` (the cortex keeps the kidney's). Returns the voxels of each.

    A kidney cut by the edge of the field of view gets a cortex along the cut too.
    """
    idx = np.nonzero(kidney)
    if not idx[0].size:
        return 0, 0
    box = tuple(slice(int(a.min()), int(a.max()) + 1) for a in idx)
    sub = np.pad(kidney[box], 1)
    depth = ndimage.distance_transform_edt(sub)[1:-1, 1:-1, 1:-1]  # voxels to the nearest outside centre
    m = kidney[box]
    cortex = m & (depth - 0.5 <= max(cortex_vox, 0.5))  # the surface lies half a voxel beyond the edge voxels
    medulla = m & ~cortex
    comp, c = compartments[box], conc[box]
    comp[cortex] = KIDNEY_CORTEX
    comp[medulla] = KIDNEY_MEDULLA
    c[medulla] = medulla_rel
    return int(cortex.sum()), int(medulla.sum())


def _bspline_weights(n_out: int, n_nodes: int, spacing_vox: float) -> np.ndarray:
    """(n_out, n_nodes) cubic B-spline weights of nodes ``spacing_vox`` voxels apart (node 2 at voxel 0)."""
    t = np.arange(n_out)[:, None] / spacing_vox + 2.0 - np.arange(n_nodes)[None, :]
    a = np.abs(t)
    w = np.where(a < 1, 2.0 / 3.0 - a**2 + a**3 / 2.0, np.where(a < 2, (2.0 - a) ** 3 / 6.0, 0.0))
    return w.astype(np.float32)


def _heterogeneity(coarse: np.ndarray, grid: Grid, body: np.ndarray, rel_sd: float) -> np.ndarray:
    """Smooth positive field with mean about 1 and relative SD ``rel_sd`` over the body (clipped at 2.5 SD)."""
    w = _bspline_weights(grid.matrix, coarse.shape[0], HETEROGENEITY_CORRELATION_MM / grid.voxel_mm)
    g = np.tensordot(w, coarse.astype(np.float32), axes=(1, 0))  # x, ny, nz
    g = np.tensordot(g, w, axes=(1, 1)).transpose(0, 2, 1)  # x, nz, y -> x, y, nz
    g = np.tensordot(g, w, axes=(2, 1))  # x, y, z
    step = max(1, grid.matrix // 64)  # the field is smooth: its statistics from every step-th voxel
    sub = g[::step, ::step, ::step][body[::step, ::step, ::step]]
    if sub.size < 2 or float(sub.std()) <= 0:
        return np.ones_like(g)
    g -= np.float32(sub.mean())
    g *= np.float32(rel_sd / float(sub.std()))
    np.clip(g, -2.5 * rel_sd, 2.5 * rel_sd, out=g)
    g += np.float32(1.0)
    return g


def _place_lesions(n: int, labels, body, grid: Grid, rng, settings: UptakeSettings, ratio: dict[str, float],
                   conc: np.ndarray, lesion_ids: np.ndarray, compartments: np.ndarray) -> list[Lesion]:
    """Draw and paint ``n`` lesions (all of a lesion's draws first, then its placement)."""
    hosts = list(HOST_LABELS)
    code = np.zeros(256, dtype=np.uint8)
    for k, h in enumerate(hosts, start=1):
        code[list(HOST_LABELS[h][0])] = k
    code_of = code[labels].ravel()
    flat = np.flatnonzero(code_of)  # every host voxel (all inside the body), in index order
    code_of = code_of[flat]
    host_voxels = {h: flat[code_of == k] for k, h in enumerate(hosts, start=1)}
    p = np.array([settings.lesion_hosts.get(h, 0.0) if host_voxels[h].size else 0.0 for h in hosts])
    if n == 0 or p.sum() <= 0:
        return []
    p = p / p.sum()
    c = grid.centres_mm()
    vs, vml = grid.voxel_mm, grid.voxel_ml
    allowed = body & (labels != AIR)
    lesions: list[Lesion] = []
    for _ in range(n):
        host = hosts[min(int(np.searchsorted(np.cumsum(p), rng.random(), side="right")), len(hosts) - 1)]
        volume_ml = _loguniform(rng, *settings.lesion_volume_ml)
        contrast = _loguniform(rng, *settings.lesion_contrast)
        aspect = np.exp(rng.uniform(-math.log(_ASPECT_MAX), math.log(_ASPECT_MAX), 3))
        aspect /= np.prod(aspect) ** (1.0 / 3.0)
        rot = random_rotation(rng)
        rough = float(rng.uniform(*settings.lesion_roughness))
        bumps = rng.random((_ROUGHNESS_NODES,) * 3)
        necrotic = bool(rng.random() < settings.necrotic_probability)
        core_fraction = float(rng.uniform(*settings.necrotic_core_fraction))
        core_activity = float(rng.uniform(*settings.necrotic_activity_fraction))
        tries = rng.integers(0, host_voxels[host].size, _CENTRE_TRIES)

        host_labels, ratio_key = HOST_LABELS[host]
        host_rel = 1.0 if ratio_key is None else ratio[ratio_key]
        semi = aspect * (3.0 * volume_ml * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)
        centre = _pick_centre(host_voxels[host][tries], labels, host_labels, float(semi.max()), grid)
        les = Lesion(host, c[list(centre)], volume_ml, contrast, host_rel * contrast, rough, necrotic,
                     core_fraction if necrotic else 0.0, core_activity if necrotic else 1.0)
        placed = _rasterise(les, semi, rot, bumps, allowed, lesion_ids, c, vs, max(1, round(volume_ml / vml)))
        if placed is None:
            continue
        idx, f, level = placed
        lesions.append(les)
        lesion_ids[idx] = len(lesions)
        les.n_voxels = int(idx[0].size)
        les.host_fraction = float(np.isin(labels[idx], host_labels).mean())
        core = f <= core_fraction * level if necrotic else np.zeros(f.shape, dtype=bool)
        les.n_core_voxels = int(core.sum())
        values = np.where(core, les.concentration_rel * les.core_activity_fraction, les.concentration_rel)
        conc[idx] = values.astype(np.float32)
        compartments[idx] = np.where(core, NECROTIC_CORE, LESION_RIM).astype(np.uint8)
    return lesions


def _pick_centre(candidates: np.ndarray, labels: np.ndarray, host_labels: tuple[int, ...], radius_mm: float,
                 grid: Grid) -> tuple[int, int, int]:
    """The candidate voxel whose ball of ``radius_mm`` lies most inside the host (the first of the best)."""
    n, vs = grid.matrix, grid.voxel_mm
    r = max(1, math.ceil(radius_mm / vs))
    off = np.arange(-r, r + 1)
    ball = (off[:, None, None] ** 2 + off[None, :, None] ** 2 + off[None, None, :] ** 2) <= (radius_mm / vs) ** 2 + 0.25
    best, best_frac = None, -1.0
    for flat in candidates:
        ijk = np.unravel_index(int(flat), labels.shape)
        sl = tuple(slice(max(0, int(i) - r), min(n, int(i) + r + 1)) for i in ijk)
        bsl = tuple(slice(s.start - (int(i) - r), s.stop - (int(i) - r)) for s, i in zip(sl, ijk))
        b = ball[bsl]
        frac = float(np.isin(labels[sl][b], host_labels).sum()) / float(ball.sum())
        if frac > best_frac:
            best, best_frac = ijk, frac
        if frac >= 0.999:
            break
    return tuple(int(i) for i in best)  # type: ignore[return-value]


def _rasterise(les: Lesion, semi: np.ndarray, rot: np.ndarray, bumps: np.ndarray, allowed: np.ndarray,
               lesion_ids: np.ndarray, c: np.ndarray, vs: float, n_vox: int):
    """The ``n_vox`` free allowed voxels of the lesion's smallest level set, their field and the set's level.

    The field is the ellipsoid's normalised radius times a smooth perturbation ``1 + roughness (2 b - 1)``
    (``b`` in [0, 1] from ``bumps``), so the level sets are concentric rough shapes.
    """
    reach = _BOX_REACH * float(semi.max()) * (1.0 + les.roughness) + vs
    box = []
    for axis in range(3):
        lo = np.searchsorted(c, les.centre_mm[axis] - reach)
        hi = np.searchsorted(c, les.centre_mm[axis] + reach, side="right")
        box.append(slice(int(lo), int(hi)))
    d = [(c[box[a]] - les.centre_mm[a]).astype(np.float32) for a in range(3)]
    dx, dy, dz = d[0][:, None, None], d[1][None, :, None], d[2][None, None, :]
    R = rot.astype(np.float32)
    local = [(R[0, j] * dx + R[1, j] * dy + R[2, j] * dz) / np.float32(semi[j]) for j in range(3)]
    free = allowed[box[0], box[1], box[2]] & (lesion_ids[box[0], box[1], box[2]] == 0)
    sel = np.nonzero(free)
    if not sel[0].size:
        return None
    g = [np.broadcast_to(u, free.shape)[sel] for u in local]
    f = np.sqrt(g[0] ** 2 + g[1] ** 2 + g[2] ** 2)
    if les.roughness > 0:
        # the nodes span the lesion's unperturbed ellipsoid and a little beyond (the field is flat further out)
        coords = np.stack([(np.clip(gj / _ROUGHNESS_SPAN, -1.0, 1.0) + 1.0) * 0.5 * (_ROUGHNESS_NODES - 1) for gj in g])
        b = ndimage.map_coordinates(bumps, coords, order=1, mode="nearest")
        f = f * (1.0 + les.roughness * (2.0 * b - 1.0))
    keep = np.argsort(f, kind="stable")[:n_vox]
    f = f[keep]
    idx = tuple(s[keep] + bx.start for s, bx in zip(sel, box))
    return idx, f, float(f.max())
