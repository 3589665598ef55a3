"""Where a model is valid, what an input says about itself, and whether the two agree.

Three levels, checked in this order by ``dlpvc apply``:

1. **Physically impossible input is refused** (:func:`geometry_problem`, :func:`activity_problem`),
   with one line that says what to fix: a voxel edge under :data:`MIN_VOXEL_MM` or over
   :data:`MAX_VOXEL_MM` (a header in metres or microns read as mm), fewer than :data:`MIN_VOXELS`
   voxels along an axis, an image total (MBq/mL x mL) that is zero, negative or outside
   :data:`TOTAL_MBQ_RANGE` (an image in Bq/mL stored as MBq/mL is 1e6 too large).
2. **The input's facts** (:class:`InputFacts`): reconstruction kind (``RR`` / ``noRR``, from
   ``--reconstruction``, a JSON sidecar or DICOM's ReconstructionMethod), iterations, subsets,
   scatter and attenuation correction, post-filter, collimator and isotope where the input states
   them, and voxel size, matrix and total activity, which every input has.
3. **The model's domain** (:func:`card_domain`): the card's ``domain`` block, or one derived from
   its ``trained_for`` for cards written before it existed. :func:`check_domain` gives
   ``inside`` (every fact stated and inside), ``outside`` (a stated fact outside: the reasons
   say which) or ``unknown`` (nothing outside, but the reconstruction kind or another fact the
   model depends on is not stated). ``apply`` corrects ``outside`` and ``unknown`` input with a
   warning on stderr and in the sidecar, or refuses it with ``--strict``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from pvc_core.domain import RECONSTRUCTIONS

__all__ = ["MIN_VOXEL_MM", "MAX_VOXEL_MM", "MIN_VOXELS", "TOTAL_MBQ_RANGE", "VOXEL_TOLERANCE", "INSIDE", "OUTSIDE",
           "UNKNOWN", "InputFacts", "geometry_problem", "activity_problem", "card_domain", "domain_from_trained_for",
           "check_domain", "reconstruction_from_text", "facts_from_sidecar", "facts_from_dicom", "describe_domain"]

#: Voxel edges outside these (mm) are not a SPECT image (a header in metres reads 0.0048 mm).
MIN_VOXEL_MM, MAX_VOXEL_MM = 0.5, 20.0
#: Fewer voxels along an axis is not a volume the network can correct (its smallest level is 8).
MIN_VOXELS = 16
#: Image totals (MBq) outside this are a unit error: 1 MBq is below any therapy SPECT, 50 GBq above
#: any administered Lu-177 activity (7.4 GBq per cycle); Bq/mL stored as MBq/mL gives ~1e8 MBq.
TOTAL_MBQ_RANGE = (1.0, 50_000.0)
#: Relative difference of voxel size that is still the model's voxel size.
VOXEL_TOLERANCE = 0.05
#: Matrix range (voxels per axis on the model's grid) of a derived domain.
DERIVED_MATRIX_RANGE = (MIN_VOXELS, 256)

INSIDE, OUTSIDE, UNKNOWN = "inside", "outside", "unknown"

#: Words in a reconstruction description that mean the collimator-detector response is modelled
#: (vendor names: Siemens Flash3D / xSPECT, GE Evolution, Philips Astonish) or is not.
_RR_WORDS = re.compile(r"\b(rr|resolution[ -]?recovery|psf|cdr|flash ?3d|xspect|evolution|astonish)\b", re.I)
_NORR_WORDS = re.compile(r"\b(no[ -_]?rr|without (rr|resolution recovery|psf))\b", re.I)


@dataclass(frozen=True)
class InputFacts:
    """What an input image is, as far as it states it (None: not stated); ``sources`` says where from."""

    voxel_mm: tuple[float, float, float]
    matrix: tuple[int, int, int]
    total_mbq: float
    reconstruction: str | None = None          # "RR" or "noRR"
    iterations: int | None = None
    subsets: int | None = None
    scatter_correction: str | None = None
    attenuation_correction: bool | None = None
    post_filter_fwhm_mm: float | None = None
    collimator: str | None = None
    isotope: str | None = None
    sources: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def geometry_problem(shape: tuple[int, ...], voxel_mm: tuple[float, ...]) -> str | None:
    """What makes a grid impossible for a SPECT image (one line saying what to fix), or None."""
    bad = [v for v in voxel_mm if not MIN_VOXEL_MM <= v <= MAX_VOXEL_MM]
    if bad:
        size = " x ".join(f"{v:.4g}" for v in voxel_mm)
        hint = (" (a header in metres read as mm? set the NIfTI spatial unit or scale the affine to mm)"
                if max(voxel_mm) < MIN_VOXEL_MM else "")
        return (f"voxel size {size} mm is not a SPECT voxel (each edge must be {MIN_VOXEL_MM:g}-{MAX_VOXEL_MM:g} mm)"
                f"{hint}")
    small = [n for n in shape if n < MIN_VOXELS]
    if small:
        return (f"matrix {' x '.join(map(str, shape))} has fewer than {MIN_VOXELS} voxels along an axis; "
                "give the whole reconstructed volume")
    return None


def activity_problem(total_mbq: float) -> str | None:
    """What makes an image total (MBq) impossible, with the likely unit error, or None."""
    lo, hi = TOTAL_MBQ_RANGE
    if not total_mbq > 0:
        return f"total activity {total_mbq:.4g} MBq is not positive: not an activity image"
    if total_mbq > hi:
        factor = "1e6 (Bq/mL stored as MBq/mL?)" if total_mbq > 1e3 * hi else "1e3 (kBq/mL stored as MBq/mL?)"
        return (f"total activity {total_mbq:.4g} MBq is above {hi:g} MBq: the values look too large by about {factor}; "
                "dlpvc reads NIfTI values as MBq/mL")
    if total_mbq < lo:
        return (f"total activity {total_mbq:.4g} MBq is below {lo:g} MBq: the values look too small (counts, or "
                "GBq/mL or a per-voxel activity?); dlpvc reads NIfTI values as MBq/mL")
    return None


def reconstruction_from_text(text: str) -> dict:
    """Reconstruction facts parsed from a description such as DICOM's ReconstructionMethod
    (``"OSEM 6i6s RR"``, ``"Flash3D 8i4s"``): kind, iterations, subsets where the text says them."""
    out: dict = {}
    if not text:
        return out
    if _NORR_WORDS.search(text):
        out["reconstruction"] = "noRR"
    elif _RR_WORDS.search(text):
        out["reconstruction"] = "RR"
    it = re.search(r"(\d+)\s*(?:iter|it(?![a-z])|i(?![a-z]))", text, re.I)
    sub = re.search(r"(\d+)\s*(?:sub|ss(?![a-z])|s(?![a-z]))", text, re.I)
    if it:
        out["iterations"] = int(it.group(1))
    if sub:
        out["subsets"] = int(sub.group(1))
    return out


def facts_from_sidecar(side: dict) -> dict:
    """Facts from a JSON sidecar: dlpvc's own (``reconstruction: {name, iterations, subsets,
    scatter_correction}``, as ``dlpvc simulate`` writes it) or BIDS PET/SPECT keys
    (``ReconMethodName``, ``ReconFilterType``/``ReconFilterSize``, ``AttenuationCorrection``)."""
    out: dict = {}
    rec = side.get("reconstruction")
    if isinstance(rec, dict):
        name = rec.get("name")
        if name in RECONSTRUCTIONS:
            out["reconstruction"] = name
        for key in ("iterations", "subsets"):
            if isinstance(rec.get(key), int):
                out[key] = rec[key]
        if isinstance(rec.get("scatter_correction"), str):
            out["scatter_correction"] = rec["scatter_correction"]
        out.setdefault("attenuation_correction", True)  # every dlpvc reconstruction corrects attenuation
        if "post_filter_fwhm_mm" in rec and isinstance(rec["post_filter_fwhm_mm"], (int, float)):
            out["post_filter_fwhm_mm"] = float(rec["post_filter_fwhm_mm"])
        elif name in RECONSTRUCTIONS:
            out["post_filter_fwhm_mm"] = 0.0
    if isinstance(side.get("ReconMethodName"), str):
        out.update({k: v for k, v in reconstruction_from_text(side["ReconMethodName"]).items() if k not in out})
    if isinstance(side.get("AttenuationCorrection"), str):
        out.setdefault("attenuation_correction", side["AttenuationCorrection"].strip().lower() not in ("", "none", "no"))
    ftype = str(side.get("ReconFilterType") or "").strip().lower()
    if ftype in ("none", "no"):
        out.setdefault("post_filter_fwhm_mm", 0.0)
    elif isinstance(side.get("ReconFilterSize"), (int, float)):
        out.setdefault("post_filter_fwhm_mm", float(side["ReconFilterSize"]))
    return out


def facts_from_dicom(ds) -> dict:
    """Facts from a SPECT DICOM dataset: ReconstructionMethod, CorrectedImage (ATTN, SCAT),
    the collimator of DetectorInformationSequence and the radionuclide."""
    out = reconstruction_from_text(str(getattr(ds, "ReconstructionMethod", "") or ""))
    corrected = [str(v).upper() for v in (ds.get("CorrectedImage") or [])]
    if corrected:
        out["attenuation_correction"] = "ATTN" in corrected
        if "SCAT" not in corrected:
            out["scatter_correction"] = "none"
    for item in ds.get("DetectorInformationSequence") or []:
        name = str(item.get("CollimatorGridName") or "").strip()
        if name:
            out["collimator"] = name
            break
    for item in ds.get("RadiopharmaceuticalInformationSequence") or []:
        for code in item.get("RadionuclideCodeSequence") or []:
            meaning = str(code.get("CodeMeaning") or "").strip()
            if meaning:
                out["isotope"] = meaning
                break
    return out


def _normal_isotope(text: str) -> str:
    """``'^177^Lutetium'``, ``'Lu-177'``, ``'177Lu'`` -> ``'lu177'``."""
    t = re.sub(r"[^a-z0-9]", "", text.lower())
    digits = "".join(ch for ch in t if ch.isdigit())
    letters = "".join(ch for ch in t if ch.isalpha())
    return {"lutetium": "lu"}.get(letters, letters) + digits


def _as_bounds(value) -> list | None:
    """A card's single value ``v`` as ``[v, v]``; a randomised run's ``[min, max]`` as it is; None if absent."""
    if value is None or value == []:
        return None
    return [value[0], value[-1]] if isinstance(value, (list, tuple)) else [value] * 2


def domain_from_trained_for(trained_for: dict) -> dict:
    """A ``domain`` block for a card that has only ``trained_for`` (every card the pipeline writes;
    the shipped cards carry their own). A value of a randomised run (``randomise``) is a
    ``[min, max]`` range (iterations, subsets, post-filter) or a list (``scatter_correction``)."""
    rec = trained_for.get("reconstruction") or {}
    corrections = " ".join(rec.get("corrections") or []).lower()
    scatter = ("simulated" if "simulated" in corrections else "model" if "scatter (model)" in corrections
               else "tew" if "tew" in corrections else None)
    scatters = list(rec["scatter_correction"]) if isinstance(rec.get("scatter_correction"), list) else (
        [scatter] if scatter else None)
    # a randomised run reconstructed at several voxels (resampled to its grid): the input's voxel may be any of them
    voxel = rec.get("reconstructed_voxel_mm") or trained_for.get("voxel_mm")
    count = (trained_for.get("count_level") or {}).get("total_activity_mbq")
    out = {
        "isotope": trained_for.get("isotope"),
        "collimator": trained_for.get("collimator"),
        "reconstruction": {
            "kind": rec.get("name"),
            "method": rec.get("method"),
            "iterations": _as_bounds(rec.get("iterations")),
            "subsets": _as_bounds(rec.get("subsets")),
            "scatter_correction": scatters,
            "attenuation_correction": True if "attenuation" in corrections else None,
            "post_filter_fwhm_mm": _as_bounds(rec.get("post_filter_fwhm_mm")) or [0.0, 0.0],
        },
        "voxel_mm": ([round(min(voxel) * (1 - VOXEL_TOLERANCE), 3), round(max(voxel) * (1 + VOXEL_TOLERANCE), 3)]
                     if voxel else None),
        "matrix": list(DERIVED_MATRIX_RANGE),
        "total_activity_mbq": list(count) if count else None,
    }
    return out


def card_domain(card: dict | None) -> dict:
    """The model's domain: the card's ``domain`` block, else derived from ``trained_for`` ({} without a card)."""
    card = card or {}
    if isinstance(card.get("domain"), dict):
        return card["domain"]
    return domain_from_trained_for(card.get("trained_for") or {}) if card.get("trained_for") else {}


def _within(value: float, bounds) -> bool:
    return bounds is None or bounds[0] <= value <= bounds[1]


def _range_text(bounds, unit: str = "") -> str:
    lo, hi = bounds
    return f"{lo:g}{unit}" if lo == hi else f"{lo:g}-{hi:g}{unit}"


def check_domain(facts: InputFacts, domain: dict) -> tuple[str, list[str]]:
    """(status, reasons): ``inside``, ``outside`` or ``unknown`` (see the module docstring)."""
    outside: list[str] = []
    unknown: list[str] = []
    if not domain:
        return UNKNOWN, ["the model has no card stating its domain"]
    rec = domain.get("reconstruction") or {}
    kind = rec.get("kind")
    if kind:
        if facts.reconstruction is None:
            unknown.append(f"reconstruction kind not stated (the model is for {kind}; give --reconstruction "
                           f"{'|'.join(RECONSTRUCTIONS)}, or a sidecar or DICOM ReconstructionMethod that says it)")
        elif facts.reconstruction != kind:
            outside.append(f"reconstruction {facts.reconstruction}, but the model is for {kind}")
    for key, label in (("iterations", "iterations"), ("subsets", "subsets")):
        bounds = rec.get(key)
        value = getattr(facts, key)
        if bounds and value is not None and not _within(value, bounds):
            outside.append(f"{value} {label}, but the model was trained with {_range_text(bounds)}")
    scatter = rec.get("scatter_correction")
    if scatter:
        if facts.scatter_correction is None:
            unknown.append(f"scatter correction not stated (the model was trained with {' or '.join(scatter)})")
        elif facts.scatter_correction.lower() not in [s.lower() for s in scatter]:
            oracle = " (the simulator's own scatter estimate, which no camera has)" if scatter == ["simulated"] else ""
            outside.append(f"scatter correction {facts.scatter_correction}, but the model was trained with "
                           f"{' or '.join(scatter)}{oracle}")
    if rec.get("attenuation_correction") and facts.attenuation_correction is False:
        outside.append("no attenuation correction, but the model was trained with it")
    pf = rec.get("post_filter_fwhm_mm")
    if pf and facts.post_filter_fwhm_mm is not None and not _within(facts.post_filter_fwhm_mm, pf):
        outside.append(f"post-filter {facts.post_filter_fwhm_mm:g} mm FWHM, but the model was trained with "
                       f"{_range_text(pf, ' mm')}")
    vox = domain.get("voxel_mm")
    if vox and not all(_within(v, vox) for v in facts.voxel_mm):
        outside.append(f"voxel size {' x '.join(f'{v:.3g}' for v in facts.voxel_mm)} mm, outside the model's "
                       f"{_range_text(vox, ' mm')} (the image is resampled, but the resolution the network learned "
                       "to undo is that of its training voxels)")
    mat = domain.get("matrix")
    if mat and not all(_within(n, mat) for n in facts.matrix):
        outside.append(f"matrix {' x '.join(map(str, facts.matrix))}, outside the model's {_range_text(mat)} voxels "
                       "per axis")
    tot = domain.get("total_activity_mbq")
    if tot and not _within(facts.total_mbq, tot):
        outside.append(f"total activity {facts.total_mbq:.4g} MBq, outside the model's training range "
                       f"{_range_text(tot, ' MBq')}")
    if domain.get("isotope") and facts.isotope and _normal_isotope(facts.isotope) != _normal_isotope(domain["isotope"]):
        outside.append(f"isotope {facts.isotope}, but the model is for {domain['isotope']}")
    if domain.get("collimator") and facts.collimator \
            and facts.collimator.strip().lower() not in domain["collimator"].lower():
        outside.append(f"collimator {facts.collimator}, but the model was trained for {domain['collimator']}")
    if outside:
        return OUTSIDE, outside + unknown
    if unknown:
        return UNKNOWN, unknown
    return INSIDE, []


def describe_domain(domain: dict) -> list[str]:
    """The domain as short lines for ``dlpvc models`` and the docs."""
    if not domain:
        return ["(no domain stated)"]
    rec = domain.get("reconstruction") or {}
    lines = [f"reconstruction: {rec.get('kind')} ({rec.get('method') or 'OSEM'}"
             + (f", {_range_text(rec['iterations'])} iterations" if rec.get("iterations") else "")
             + (f" x {_range_text(rec['subsets'])} subsets" if rec.get("subsets") else "") + ")"]
    if rec.get("scatter_correction"):
        lines.append(f"scatter correction: {' or '.join(rec['scatter_correction'])}")
    if rec.get("attenuation_correction"):
        lines.append("attenuation correction: yes (CT-based)")
    if rec.get("post_filter_fwhm_mm"):
        lines.append(f"post-filter: {_range_text(rec['post_filter_fwhm_mm'], ' mm')} FWHM")
    for key, label, unit in (("voxel_mm", "voxel size", " mm"), ("matrix", "matrix", " voxels per axis"),
                             ("total_activity_mbq", "image total", " MBq")):
        if domain.get(key):
            lines.append(f"{label}: {_range_text(domain[key], unit)}")
    for key in ("isotope", "collimator"):
        if domain.get(key):
            lines.append(f"{key}: {domain[key]}")
    return lines
