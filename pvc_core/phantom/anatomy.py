"""Procedural anthropomorphic bodies: outline, fat, skeleton, air ways and organs as smooth solids.

The body is described in *reference coordinates* (mm) of a 176 cm adult: x towards the patient's
right, y anterior (both from the trunk's axis) and depth d downwards from the vertex. Landmark
depths, trunk widths and organ positions were read off the voxelised 50th-percentile male XCAT
(mesh50 XCAT, Auer et al., Phys Med Biol 2023): e.g. lungs at depth 285-535 mm, liver 440-610,
trunk 316 x 240 mm at the liver, hips 354 mm wide, crotch at 990 mm. Arms are left out (raised
during SPECT of the trunk). The solids are smooth approximations (ellipsoids, shells, capsules),
which is all the attenuation and scatter of a 4.8 mm SPECT grid can see.

Per case the body varies by (drawn from the case's 'anatomy' stream, see :func:`draw_anatomy`):

- BMI: the trunk's cross-section grows in proportion to BMI / 23.6 (ICRP 89 reference male,
  176 cm and 73 kg, whom XCAT models); the extra area is a subcutaneous fat layer, the lean
  core is unchanged;
- height scale: the whole body scales isotropically;
- organ scales: each organ's semi-axes scale by its own factor;
- bed position and axial jitter: which depth lies at the centre of the field of view.

A body wider than the field of view less ``body_margin_mm`` is scaled down transaxially (the
``lateral_fit_scale`` of the metadata).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pvc_core.phantom.primitives import Painter, capsule, ellipsoid, ellipsoid_shell
from pvc_core.specs import BED_POSITIONS, Grid, PhantomSettings

# ----------------------------------------------------------------------------- labels
OUTSIDE, BODY, ADIPOSE, AIR, LUNG, CORTICAL_BONE, SPONGIOSA = 0, 1, 2, 3, 4, 5, 6
BRAIN, LIVER, KIDNEY_RIGHT, KIDNEY_LEFT, SPLEEN, HEART, BLADDER = 7, 8, 9, 10, 11, 12, 13

#: Organ label -> (name, material of pvc_core.phantom.materials).
LABELS: dict[int, tuple[str, str]] = {
    OUTSIDE: ("outside", "outside"),
    BODY: ("soft_tissue", "soft_tissue"),
    ADIPOSE: ("subcutaneous_fat", "adipose"),
    AIR: ("airways", "air"),
    LUNG: ("lungs", "lung"),
    CORTICAL_BONE: ("cortical_bone", "cortical_bone"),
    SPONGIOSA: ("spongy_bone", "spongiosa"),
    BRAIN: ("brain", "brain"),
    LIVER: ("liver", "soft_tissue"),
    KIDNEY_RIGHT: ("kidney_right", "soft_tissue"),
    KIDNEY_LEFT: ("kidney_left", "soft_tissue"),
    SPLEEN: ("spleen", "soft_tissue"),
    HEART: ("heart", "soft_tissue"),
    BLADDER: ("bladder", "water"),
}
LABEL_MATERIALS: dict[int, str] = {k: m for k, (_, m) in LABELS.items()}

#: Labels every case of a bed position holds (whatever its draws).
REQUIRED_LABELS: dict[str, tuple[int, ...]] = {
    "head": (BODY, BRAIN, CORTICAL_BONE, SPONGIOSA, AIR),
    "thorax": (BODY, ADIPOSE, LUNG, HEART, LIVER, CORTICAL_BONE, SPONGIOSA, AIR),
    "abdomen": (BODY, ADIPOSE, LIVER, KIDNEY_RIGHT, KIDNEY_LEFT, SPLEEN, BLADDER, CORTICAL_BONE, SPONGIOSA),
}

#: Organs whose size varies per case (each with its own factor).
SCALED_ORGANS = ("brain", "lungs", "heart", "liver", "spleen", "kidneys", "bladder")

#: Reference depth (mm below the vertex) at the centre of the field of view of each bed position.
BED_CENTRE_DEPTH_MM = {"head": 150.0, "thorax": 430.0, "abdomen": 700.0}

#: BMI of the reference outline (ICRP 89 reference male: 73 kg, 1.76 m).
BMI_REFERENCE = 23.6

# ----------------------------------------------------------------------------- reference outline
# Trunk and neck at depth D: half-width A, half-depth B, centre Y (anterior +), fat thickness T at BMI 23.6.
_D = np.array([200, 240, 262, 290, 330, 380, 430, 480, 550, 625, 700, 775, 850, 925, 990], float)
_A = np.array([58, 62, 120, 175, 172, 165, 160, 158, 152, 148, 145, 157, 170, 176, 177], float)
_B = np.array([62, 68, 74, 82, 92, 105, 114, 119, 123, 121, 116, 113, 106, 108, 98], float)
_YC = np.array([22, 15, 8, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], float)
_T = np.array([5, 5, 8, 15, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20], float)
_CROTCH = 990.0
_LEG_X, _LEG_D = 88.0, np.array([990.0, 1400.0])
_LEG_A, _LEG_B, _LEG_T = np.array([80.0, 62.0]), np.array([86.0, 66.0]), 15.0
_HEAD_C, _HEAD_SEMI = (0.0, 35.0, 115.0), (78.0, 100.0, 118.0)
_HEAD_BOTTOM = 233.0
_SKIN_MM = 2.0

# Spine: depth -> centre y, vertebral-body semi-axes, vertebra index (C1 = 0, T1 = 7, L1 = 19, S1 = 24).
_SP_D = np.array([190, 240, 290, 350, 430, 520, 600, 680, 760, 830, 900, 935], float)
_SP_Y = np.array([20, 10, -30, -55, -68, -68, -55, -42, -45, -60, -80, -88], float)
_SP_AX = np.array([14, 15, 16, 17, 18, 19, 21, 24, 25, 24, 18, 12], float)
_SP_AY = np.array([11, 12, 13, 14, 15, 16, 17, 19, 19, 16, 12, 8], float)
_VI_D, _VI_V = np.array([190.0, 290.0, 580.0, 760.0]), np.array([0.0, 7.0, 19.0, 24.0])
_RIB_PITCH_MM, _RIB_SLOPE, _RIB_HALF_HEIGHT, _RIB_HALF_WIDTH = 24.0, 0.45, 5.5, 4.0


@dataclass(frozen=True)
class AnatomyDraw:
    """The random parameters of one body (all from the case's 'anatomy' stream)."""

    bed_position: str
    bed_offset_mm: float
    bmi: float
    height_scale: float
    organ_scales: dict[str, float]


def draw_bed(rng: np.random.Generator, settings: PhantomSettings) -> tuple[str, float]:
    """Bed position (by the configured probabilities) and axial offset (mm, uniform in +- jitter)."""
    p = np.array([settings.bed_probabilities[b] for b in BED_POSITIONS], float)
    k = int(np.searchsorted(np.cumsum(p / p.sum()), rng.random(), side="right"))
    bed = BED_POSITIONS[min(k, int(np.flatnonzero(p > 0)[-1]))]  # rounding never picks a zero-probability bed
    return bed, float(rng.uniform(-1.0, 1.0)) * settings.bed_jitter_mm


def draw_anatomy(rng: np.random.Generator, settings: PhantomSettings) -> AnatomyDraw:
    """Draw bed position, axial offset, BMI, height scale and organ scales in a fixed order."""
    bed, offset = draw_bed(rng, settings)
    bmi = float(rng.uniform(*settings.bmi_range))
    height = float(rng.uniform(*settings.height_scale_range))
    sd = settings.organ_scale_sd
    scales = {o: float(np.clip(1.0 + sd * rng.standard_normal(), max(0.5, 1 - 2.5 * sd), 1 + 2.5 * sd))
              for o in SCALED_ORGANS}
    return AnatomyDraw(bed, offset, bmi, height, scales)


def _fat_thickness(a_ref: np.ndarray, b_ref: np.ndarray, t_ref: np.ndarray, bmi: float) -> np.ndarray:
    """Fat thickness t (mm) with pi (a_c + t)(b_c + t) = (BMI / BMI_ref) pi a_ref b_ref, a_c = a_ref - t_ref."""
    ac, bc = a_ref - t_ref, b_ref - t_ref
    s = ac + bc
    disc = s * s - 4.0 * (ac * bc - (bmi / BMI_REFERENCE) * a_ref * b_ref)
    return np.maximum((-s + np.sqrt(np.maximum(disc, 0.0))) / 2.0, _SKIN_MM)


def _trunk_profile(d: np.ndarray, bmi: float) -> dict[str, np.ndarray]:
    """Outline of trunk and neck at depths ``d`` (reference mm): full and core semi-axes, centre y."""
    a, b = np.interp(d, _D, _A), np.interp(d, _D, _B)
    t_ref, yc = np.interp(d, _D, _T), np.interp(d, _D, _YC)
    t = _fat_thickness(a, b, t_ref, bmi)
    return {"a": a - t_ref + t, "b": b - t_ref + t, "a_core": a - t_ref, "b_core": b - t_ref, "yc": yc}


def _leg_profile(d: np.ndarray, bmi: float) -> dict[str, np.ndarray]:
    a, b = np.interp(d, _LEG_D, _LEG_A), np.interp(d, _LEG_D, _LEG_B)
    t = _fat_thickness(a, b, np.full_like(a, _LEG_T), bmi)
    return {"a": a - _LEG_T + t, "b": b - _LEG_T + t, "a_core": a - _LEG_T, "b_core": b - _LEG_T}


def _max_half_extents(d: np.ndarray, bmi: float) -> tuple[float, float]:
    """Largest |x| and |y| (reference mm) of the body over the depths ``d``."""
    xs, ys = [0.0], [0.0]
    head = d[(d >= 0) & (d <= _HEAD_BOTTOM)]
    if head.size:
        xs.append(_HEAD_SEMI[0])
        ys.append(_HEAD_C[1] + _HEAD_SEMI[1])
    trunk = d[(d >= _D[0]) & (d < _CROTCH)]
    if trunk.size:
        pr = _trunk_profile(trunk, bmi)
        xs.append(float(pr["a"].max()))
        ys.append(float((np.abs(pr["yc"]) + pr["b"]).max()))
    legs = d[d >= _CROTCH]
    if legs.size:
        pr = _leg_profile(legs, bmi)
        xs.append(float((_LEG_X + pr["a"]).max()))
        ys.append(float(pr["b"].max()))
    return max(xs), max(ys)


@dataclass
class Body:
    """A procedural body on a grid: organ labels (uint8, indexed x, y, z) and how it was placed."""

    labels: np.ndarray
    bed_centre_depth_mm: float
    lateral_fit_scale: float


def build_body(grid: Grid, draw: AnatomyDraw, body_margin_mm: float) -> Body:
    """Label volume of the body described by ``draw`` on ``grid`` (RAS, centred on the origin)."""
    h = draw.height_scale
    centre_depth = h * BED_CENTRE_DEPTH_MM[draw.bed_position] + draw.bed_offset_mm
    c = grid.centres_mm()
    d_ref = (centre_depth - c) / h  # z increases superiorly, depth downwards
    max_x, max_y = _max_half_extents(d_ref, draw.bmi)
    room = grid.fov_mm / 2.0 - body_margin_mm
    fit = float(min(1.0, room / (h * max_x), room / (h * max_y)))
    lat = h * fit
    x_ref, y_ref = c / lat, c / lat

    labels = np.zeros(grid.shape, dtype=np.uint8)
    _paint_outline(labels, x_ref, y_ref, d_ref, draw.bmi)
    painter = Painter(labels, x_ref, y_ref, d_ref)
    _paint_skeleton(painter, d_ref)
    _paint_airways(painter)
    _paint_organs(painter, draw.organ_scales)
    return Body(labels, float(centre_depth), fit)


# ----------------------------------------------------------------------------- outline and fat
def _paint_outline(labels: np.ndarray, x: np.ndarray, y: np.ndarray, d: np.ndarray, bmi: float) -> None:
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    # head (no fat layer)
    k = np.flatnonzero((d >= 0) & (d <= _HEAD_BOTTOM))
    if k.size:
        (hx, hy, hz), (sa, sb, sc) = _HEAD_C, _HEAD_SEMI
        zz = ((d[k] - hz) / sc).astype(np.float32) ** 2
        inside = ((x32 / sa) ** 2)[:, None, None] + (((y32 - hy) / sb) ** 2)[None, :, None] + zz[None, None, :] <= 1
        sub = labels[:, :, k]
        sub[inside] = BODY
        labels[:, :, k] = sub
    for region in ("trunk", "legs"):
        if region == "trunk":
            k = np.flatnonzero((d >= _D[0]) & (d < _CROTCH))
            centres = (0.0,)
        else:
            k = np.flatnonzero(d >= _CROTCH)
            centres = (-_LEG_X, _LEG_X)
        if not k.size:
            continue
        pr = _trunk_profile(d[k], bmi) if region == "trunk" else _leg_profile(d[k], bmi)
        yc = pr.get("yc", np.zeros(k.size))
        full = np.zeros((x.size, y.size, k.size), bool)
        core = np.zeros_like(full)
        for xc in centres:
            for key_a, key_b, out in (("a", "b", full), ("a_core", "b_core", core)):
                a, b = pr[key_a].astype(np.float32), pr[key_b].astype(np.float32)
                out |= (((x32 - xc)[:, None] / a[None, :]) ** 2)[:, None, :] + \
                       (((y32[:, None] - yc[None, :].astype(np.float32)) / b[None, :]) ** 2)[None, :, :] <= 1
        sub = labels[:, :, k]
        sub[full & ~core & (sub == OUTSIDE)] = ADIPOSE
        sub[core] = BODY
        labels[:, :, k] = sub


# ----------------------------------------------------------------------------- skeleton
def _paint_skeleton(p: Painter, d_all: np.ndarray) -> None:
    soft = (BODY,)
    hx, hy, hz = _HEAD_C
    sa, sb, sc = _HEAD_SEMI
    # skull: 7 mm shell 6 mm under the skin of the head, above the skull base; base plate; mandible
    p.paint(ellipsoid_shell(_HEAD_C, (sa - 6, sb - 6, sc - 6), 7.0, where=lambda X, Y, Z: Z <= 162.0),
            CORTICAL_BONE, soft)
    p.paint(ellipsoid((hx, hy + 5, 160.0), (sa - 16, sb - 20, 6.0)), CORTICAL_BONE, soft)
    p.paint(ellipsoid_shell((0.0, 40.0, 200.0), (50.0, 64.0, 22.0), 7.0,
                            where=lambda X, Y, Z: (Y > 45.0) & (Z > 192.0)), CORTICAL_BONE, soft)  # mandible
    _paint_spine(p)
    _paint_ribs(p)
    for s in (1.0, -1.0):  # patient's right (+x) and left
        p.paint(capsule((s * 18, 45, 283), (s * 150, -8, 272), 8.0), CORTICAL_BONE, soft)  # clavicle
        p.paint(ellipsoid((s * 95, -84, 375), (48, 7, 78), rot_deg=-s * 22.0), CORTICAL_BONE, soft)  # scapula
        p.paint(ellipsoid_shell((s * 92, -18, 830), (58, 38, 72), 7.0,  # ilium: the wing's lateral plate
                                where=lambda X, Y, Z, s=s: (Z < 872.0) & (Y < 25.0) & (s * X > 70.0)),
                CORTICAL_BONE, soft)
        p.paint(capsule((s * 80, 10, 905), (s * 12, 50, 930), 11.0), CORTICAL_BONE, soft)  # pubis
        p.paint(capsule((s * 80, 5, 905), (s * 55, -30, 965), 12.0), CORTICAL_BONE, soft)  # ischium
        p.paint(ellipsoid((s * 88, 5, 905), (24, 24, 24)), SPONGIOSA, soft)  # femoral head
        p.paint(capsule((s * 88, 5, 905), (s * 105, 5, 940), 15.0), SPONGIOSA, soft)  # femoral neck
        p.paint(capsule((s * 105, 5, 940), (s * 100, 10, 1420), 14.0), CORTICAL_BONE, soft)  # femur
    p.paint(_sternum(), SPONGIOSA, soft)


def _sternum():
    def inside(X, Y, Z):
        yb = np.interp(Z, _D, _B - _T) - 10.0
        return ((X / 14.0) ** 2 + ((Y - yb) / 6.0) ** 2 <= 1.0) & (Z >= 300.0) & (Z <= 470.0)
    return ((-14.0, 14.0), (30.0, 125.0), (300.0, 470.0)), inside


def _paint_spine(p: Painter) -> None:
    def body_inside(X, Y, Z):
        ys, ax, ay = np.interp(Z, _SP_D, _SP_Y), np.interp(Z, _SP_D, _SP_AX), np.interp(Z, _SP_D, _SP_AY)
        v = np.interp(Z, _VI_D, _VI_V, right=99.0)
        disc = (v < 24.0) & ((v % 1.0) < 0.18)
        return ((X / ax) ** 2 + ((Y - ys) / ay) ** 2 <= 1.0) & ~disc

    def arch_inside(X, Y, Z):  # lamina and spinous process, behind the vertebral canal
        ys, ay = np.interp(Z, _SP_D, _SP_Y), np.interp(Z, _SP_D, _SP_AY)
        yc = ys - ay - 16.0
        return ((X / 12.0) ** 2 + ((Y - yc) / 9.0) ** 2 <= 1.0) & (Z <= 900.0)

    bounds = ((-30.0, 30.0), (-130.0, 40.0), (_SP_D[0], _SP_D[-1]))
    p.paint((bounds, body_inside), SPONGIOSA, (BODY,))
    p.paint((bounds, arch_inside), CORTICAL_BONE, (BODY,))


def _paint_ribs(p: Painter) -> None:
    """Twelve pairs of ribs on the core's cage, sloping down anteriorly by 0.45 mm per mm."""
    d0 = float(np.interp(7.5, _VI_V, _VI_D))  # first rib at the first thoracic vertebra
    a_cage, b_cage = _A - _T - 12.0, _B - _T - 10.0
    max_b = float(b_cage.max())

    def inside(X, Y, Z):
        a, b = np.interp(Z, _D, a_cage), np.interp(Z, _D, b_cage)
        rho = np.sqrt((X / a) ** 2 + (Y / b) ** 2)
        ring = np.abs(rho - 1.0) * np.sqrt(a * b) <= _RIB_HALF_WIDTH
        q = Z - _RIB_SLOPE * (Y + b)  # depth where this point's rib leaves the spine
        k = np.rint((q - d0) / _RIB_PITCH_MM)
        level = (np.abs(q - (d0 + k * _RIB_PITCH_MM)) <= _RIB_HALF_HEIGHT) & (k >= 0) & (k <= 11)
        angle = np.degrees(np.arctan2(np.abs(X), -Y))  # 0 at the spine, 180 at the sternum
        reach = np.where(k <= 6, 150.0, np.where(k <= 9, 128.0, 95.0))
        return ring & level & (angle <= reach) & (angle >= 14.0)

    bounds = ((-170.0, 170.0), (-140.0, 130.0), (d0 - 10.0, d0 + 11 * _RIB_PITCH_MM + 2 * _RIB_SLOPE * max_b + 10.0))
    p.paint((bounds, inside), CORTICAL_BONE, (BODY,))


# ----------------------------------------------------------------------------- air ways and organs
def _paint_airways(p: Painter) -> None:
    p.paint(ellipsoid((0.0, 92.0, 168.0), (14.0, 18.0, 28.0)), AIR, (BODY,))  # nasal and oral cavity
    p.paint(capsule((0.0, 62.0, 178.0), (0.0, 30.0, 215.0), 8.0), AIR, (BODY,))  # pharynx
    p.paint(capsule((0.0, 30.0, 215.0), (0.0, 5.0, 390.0), 9.0), AIR, (BODY,))  # trachea


def _dome_depth(X, s: float):
    """Depth of the diaphragm under the lung of side s (+1 right, higher over the liver)."""
    top = 445.0 if s > 0 else 462.0
    return top + 30.0 * ((X - s * 80.0) / 70.0) ** 2


def _paint_organs(p: Painter, scale: dict[str, float]) -> None:
    soft = (BODY,)
    f = scale
    p.paint(ellipsoid((0.0, 38.0, 88.0), tuple(f["brain"] * np.array([66.0, 86.0, 72.0])),
                      where=lambda X, Y, Z: Z < 158.0), BRAIN, soft)
    p.paint(ellipsoid((-22.0, 22.0, 435.0), tuple(f["heart"] * np.array([60.0, 46.0, 60.0])), rot_deg=-35.0),
            HEART, soft)
    p.paint(ellipsoid((48.0, 2.0, 522.0), tuple(f["liver"] * np.array([88.0, 76.0, 70.0])),
                      where=lambda X, Y, Z: X > -85.0), LIVER, soft)
    p.paint(ellipsoid((-92.0, -42.0, 548.0), tuple(f["spleen"] * np.array([38.0, 30.0, 55.0])), rot_deg=30.0),
            SPLEEN, soft)
    kid = f["kidneys"] * np.array([30.0, 24.0, 55.0])
    p.paint(ellipsoid((60.0, -50.0, 655.0), tuple(kid), rot_deg=-25.0), KIDNEY_RIGHT, soft)
    p.paint(ellipsoid((-60.0, -50.0, 635.0), tuple(kid), rot_deg=25.0), KIDNEY_LEFT, soft)
    p.paint(ellipsoid((0.0, 45.0, 893.0), tuple(f["bladder"] * np.array([42.0, 36.0, 32.0]))), BLADDER, soft)
    a_in, b_in = _A - _T - 18.0, _B - _T - 16.0  # inside the rib cage
    for s in (1.0, -1.0):
        def where(X, Y, Z, s=s):
            a, b = np.interp(Z, _D, a_in), np.interp(Z, _D, b_in)
            cage = (X / a) ** 2 + (Y / b) ** 2 <= 1.0
            return cage & (Z < _dome_depth(X, s) + 0.25 * np.maximum(0.0, -Y - 20.0)) & (s * X > 12.0)
        p.paint(ellipsoid((s * 80.0, -8.0, 410.0), tuple(f["lungs"] * np.array([68.0, 92.0, 128.0])), where=where),
                LUNG, soft)
