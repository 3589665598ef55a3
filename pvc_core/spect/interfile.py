"""Interfile 3.3 projections: one header + raw float32 file per energy window, and a set header.

Files written by ``write_projections('out/case_0001', p)``::

    case_0001.hdr                 the set: windows (names, keV bounds, file names), angles,
                                  radii, pixel size, time per view, units, meta (JSON)
    case_0001_photopeak.h00/.a00  one SPECT Interfile per window (STIR/SIMIND-style keys:
    case_0001_lower.h00/.a00      number of projections, extent of rotation, start angle,
    case_0001_upper.h00/.a00      direction of rotation, orbit := Non-circular, Radii := {...},
                                  energy window lower/upper level, time per projection)

Data are counts (not rates), little-endian float32, ordered view by view; each view is an image
of ``matrix size [1]`` columns (detector transaxial pixels, increasing u) by ``matrix size [2]``
rows, the first row being the highest axial index (the SIMIND/PyTomography convention, so
``pytomography.io.SPECT.simind.get_projections`` reads the same arrays). Radii are in mm;
angles follow :mod:`pvc_core.spect.geometry` and are also listed explicitly in the set header.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from pvc_core.errors import InputError
from pvc_core.io.atomic import atomic_path
from pvc_core.spect.energy_windows import WINDOW_NAMES
from pvc_core.spect.projections import SIMULATED_SCATTER, Projections


def _fmt_list(values: np.ndarray) -> str:
    return "{" + ", ".join(repr(float(v)) for v in values) + "}"


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def _window_bounds(p: Projections, window: str) -> tuple[float, float] | None:
    bounds = p.meta.get("energy_windows_kev", {}).get(window)
    return (float(bounds[0]), float(bounds[1])) if bounds else None


def _common_keys(p: Projections) -> list[str]:
    n_views, n_u, n_z = p.shape
    extent = 360.0
    direction = "CCW"
    return [
        f"!number of projections := {n_views}",
        f"!matrix size [1] := {n_u}",
        f"!matrix size [2] := {n_z}",
        f"scaling factor (mm/pixel) [1] := {p.pixel_mm!r}",
        f"scaling factor (mm/pixel) [2] := {p.pixel_mm!r}",
        f"!extent of rotation := {extent!r}",
        f"start angle := {float(p.angles_deg[0])!r}",
        f"!direction of rotation := {direction}",
        "orbit := Non-circular",
        f"Radii := {_fmt_list(p.radii_mm)}",
        f"!time per projection (sec) := {p.time_per_view_s!r}",
    ]


def write_projections(path_stem: str | Path, projections: Projections) -> Path:
    """Write ``projections`` as Interfile; returns the path of the set header ``<stem>.hdr``."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    n_views, n_u, n_z = projections.shape
    names = list(WINDOW_NAMES) + ([SIMULATED_SCATTER] if projections.simulated_scatter is not None else [])
    set_lines = ["!INTERFILE :=", "; dlpvc projection set: one Interfile per energy window (counts, float32)",
                 "!imaging modality := nucmed", "!version of keys := 3.3",
                 f"!number of energy windows := {len(names)}"]
    for i, w in enumerate(names, start=1):
        name = f"{stem.name}_{w}"
        data = projections.windows[w].astype("<f4")
        # (view, u, z) -> (view, row = z descending, column = u)
        with atomic_path(stem.parent / f"{name}.a00", replace=True) as tmp:
            np.ascontiguousarray(np.transpose(data, (0, 2, 1))[:, ::-1, :]).tofile(tmp)
        bounds = _window_bounds(projections, w)
        win_keys = [f"energy window [1] := {w}"]
        set_lines.append(f"energy window [{i}] := {w}")
        if bounds:
            win_keys += [f"energy window lower level [1] := {bounds[0]!r}", f"energy window upper level [1] := {bounds[1]!r}"]
            set_lines += [f"energy window lower level [{i}] := {bounds[0]!r}",
                          f"energy window upper level [{i}] := {bounds[1]!r}"]
        set_lines.append(f"window header [{i}] := {name}.h00")
        header = ["!INTERFILE :=", "!imaging modality := nucmed", "!version of keys := 3.3",
                  "!GENERAL DATA :=", "!originating system := dlpvc (pvc_core.spect)",
                  "!data offset in bytes := 0", f"!name of data file := {name}.a00",
                  "!GENERAL IMAGE DATA :=", "!type of data := Tomographic", "imagedata byte order := LITTLEENDIAN",
                  "!number of energy windows := 1", *win_keys,
                  "!SPECT STUDY (General) :=", "!process status := Acquired",
                  f"!number of images/energy window := {n_views}", f"!total number of images := {n_views}",
                  "!number format := short float", "!number of bytes per pixel := 4",
                  "data units := counts",
                  "!SPECT STUDY (acquired data) :=", *_common_keys(projections), "!END OF INTERFILE :="]
        with atomic_path(stem.parent / f"{name}.h00", replace=True) as tmp:
            tmp.write_text("\n".join(header) + "\n")
    set_lines += _common_keys(projections)
    set_lines += [f"angles (deg) := {_fmt_list(projections.angles_deg)}", "data units := counts",
                  f"dlpvc meta (json) := {json.dumps(projections.meta, default=_json_default, sort_keys=True)}",
                  "!END OF INTERFILE :="]
    header_path = stem.with_name(stem.name + ".hdr")
    with atomic_path(header_path, replace=True) as tmp:
        tmp.write_text("\n".join(set_lines) + "\n")
    return header_path


_KEY_RE = re.compile(r"^\s*!?\s*(.*?)\s*:=\s*(.*?)\s*$")


def _parse(path: Path) -> dict[str, str]:
    keys: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.lstrip().startswith(";"):
            continue
        m = _KEY_RE.match(line)
        if m:
            key = re.sub(r"\s+", " ", m.group(1).lower().replace("!", "")).strip()
            keys[key] = m.group(2)
    return keys


def _list(value: str) -> np.ndarray:
    return np.array([float(x) for x in value.strip().strip("{}").split(",") if x.strip()])


def read_projections(header_path: str | Path) -> Projections:
    """Read a projection set written by :func:`write_projections` (pass the ``.hdr`` set header)."""
    path = Path(header_path)
    if not path.is_file():
        raise InputError("projection header not found", path)
    keys = _parse(path)
    try:
        n_windows = int(keys["number of energy windows"])
        n_views = int(keys["number of projections"])
        n_u, n_z = int(keys["matrix size [1]"]), int(keys["matrix size [2]"])
        pixel = float(keys["scaling factor (mm/pixel) [1]"])
        radii = _list(keys["radii"])
        angles = _list(keys["angles (deg)"]) if "angles (deg)" in keys else (
            float(keys["start angle"]) + np.arange(n_views) * float(keys["extent of rotation"]) / n_views)
        time_per_view = float(keys["time per projection (sec)"])
        meta = json.loads(keys.get("dlpvc meta (json)", "{}"))
        windows = {}
        for i in range(1, n_windows + 1):
            name = keys[f"energy window [{i}]"]
            wkeys = _parse(path.parent / keys[f"window header [{i}]"])
            raw = np.fromfile(path.parent / wkeys["name of data file"], dtype="<f4")
            if raw.size != n_views * n_u * n_z:
                raise InputError(f"window '{name}' holds {raw.size} values, expected {n_views}x{n_u}x{n_z}", path)
            windows[name] = np.ascontiguousarray(np.transpose(raw.reshape(n_views, n_z, n_u)[:, ::-1, :], (0, 2, 1)))
    except KeyError as err:
        raise InputError(f"Interfile key {err.args[0]!r} is missing (not a dlpvc projection set header?)", path) from None
    return Projections(windows=windows, angles_deg=angles, radii_mm=radii, pixel_mm=pixel,
                       time_per_view_s=time_per_view, meta=meta)
