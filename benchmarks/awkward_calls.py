"""Awkward calls of ``dlpvc apply``, ``dlpvc iy`` and ``dlpvc models``, as a new or careless user makes them.

Every call runs as a whole command (``python -m pvc_core ...``, the same as ``dlpvc``) in a fresh
scratch folder that holds only what the call needs, and its outcome is classified automatically:

* ``exit 2 with one line``: refused as intended (exit 2, every stderr line ``dlpvc <cmd>: ...``,
  one refusal line per refused input), nothing written;
* ``accepted as intended``: exit 0 (or 130/143 for an intended interrupt) with the expected
  outputs, each with its sidecar, the total activity kept and any expected warning present;
* ``traceback``: "Traceback (most recent call last)" on stderr, or an exit code outside
  {0, 1, 2, 130, 143} (a process killed by signal N counts as 128 + N, what a shell reports);
* ``silently wrong``: exit 0 where a refusal was expected, a missing expected warning, a wrong
  set of outputs, an output total that differs from the input total by more than 1e-4
  (relative, sidecar), an input total that differs from the image's own, a wrong geometry ...;
* ``partial outputs``: new files after a call that should have written nothing (or, for a
  batch, files other than the expected outputs of its accepted inputs), and any ``.dlpvc-tmp-*``
  temporary left behind;
* ``input modified``: a file that existed before the call changed or vanished (unless the call
  was an intended ``--overwrite`` of it);
* ``other mismatch``: none of the above but not as intended (refused where success was right,
  a refusal of several lines, exit 1, a timeout, a stray stderr line ...).

The four bad classes are counted independently (one call may be in several); the first two only
for calls with no problem at all. Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/awkward_calls.py [--json results.json]
        [--only SUBSTRING] [--workdir DIR] [--keep] [--time-repeats 5]

It also times one refused call (a missing input) as a whole command, median of ``--time-repeats``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

TMP_MARK = ".dlpvc-tmp-"
VOX = 4.8


def _shipped_model() -> Path:
    """The shipped model.pt wherever this checkout keeps it (pvc_core/models/, formerly models/)."""
    try:
        from pvc_core.apply.model import SHIPPED_MODEL_DIR

        if (Path(SHIPPED_MODEL_DIR) / "model.pt").is_file():
            return Path(SHIPPED_MODEL_DIR) / "model.pt"
    except Exception:  # noqa: BLE001 - an older or half-edited checkout
        pass
    for cand in (REPO / "pvc_core" / "models" / "dlpvc_shipped" / "model.pt",
                 REPO / "models" / "dlpvc_shipped" / "model.pt"):
        if cand.is_file():
            return cand
    return REPO / "pvc_core" / "models" / "dlpvc_shipped" / "model.pt"


SHIPPED = _shipped_model()

REFUSED_OK = "exit 2 with one line"
ACCEPTED = "accepted as intended"
TRACEBACK = "traceback"
INPUT_MODIFIED = "input modified"
PARTIAL = "partial outputs"
SILENT = "silently wrong"
OTHER = "other mismatch"
SKIPPED = "skipped"
BAD = (TRACEBACK, SILENT, PARTIAL, INPUT_MODIFIED)
TOTAL_ORDER = (REFUSED_OK, ACCEPTED, TRACEBACK, SILENT, PARTIAL, INPUT_MODIFIED, OTHER, SKIPPED)

#: A dlpvc sidecar that puts an image inside the shipped model's domain (with an in-range total).
RR_SIDECAR = {"reconstruction": {"name": "RR", "method": "OSEM", "iterations": 6, "subsets": 6,
                                 "scatter_correction": "simulated"}}
NORR_SIDECAR = {"reconstruction": {"name": "noRR", "method": "OSEM", "iterations": 6, "subsets": 6,
                                   "scatter_correction": "simulated"}}

# ------------------------------------------------------------------------------------------ fixtures

_PHANTOMS: dict = {}


def phantom(shape=(32, 32, 32), total=400.0, vox=VOX, seed=0, blur=1.2, body=0.05) -> np.ndarray:
    """A blurred ellipsoid body (~``body`` MBq/mL) with three hot spheres (~1 MBq/mL), scaled to
    ``total`` MBq on voxels of ``vox`` mm (float32, MBq/mL)."""
    from scipy.ndimage import gaussian_filter

    vox3 = np.broadcast_to(np.asarray(vox, float), (3,))
    key = (tuple(shape), float(total), tuple(vox3), seed, blur, body)
    if key in _PHANTOMS:
        return _PHANTOMS[key].copy()
    shape = tuple(int(n) for n in shape)
    idx = np.indices(shape, dtype=float)
    centre = (np.asarray(shape, float) - 1) / 2
    rel = [(idx[a] - centre[a]) / (0.4 * shape[a]) for a in range(3)]
    img = np.where(sum(r * r for r in rel) <= 1.0, body, 0.0)
    rng = np.random.default_rng(seed)
    for frac, radius, value in (((0.0, 0.0, 0.0), 2.5, 1.0), ((0.2, -0.15, 0.1), 2.0, 0.8),
                                ((-0.2, 0.15, -0.12), 1.5, 1.2)):
        c = centre + np.asarray(frac) * np.asarray(shape)
        r2 = sum((idx[a] - c[a]) ** 2 for a in range(3))
        img = np.where(r2 <= radius * radius, value * (1 + 0.05 * rng.standard_normal()), img)
    img = gaussian_filter(img, blur)
    voxvol = float(np.prod(vox3)) / 1000.0
    img = (img * (total / (img.sum() * voxvol))).astype(np.float32)
    _PHANTOMS[key] = img
    return img.copy()


def diag_affine(vox=VOX, shape=(32, 32, 32)) -> np.ndarray:
    vox3 = np.broadcast_to(np.asarray(vox, float), (3,))
    aff = np.eye(4)
    aff[:3, :3] = np.diag(vox3)
    aff[:3, 3] = -0.5 * (np.asarray(shape[:3], float) - 1) * vox3
    return aff


def rotation(deg_x=0.0, deg_y=0.0, deg_z=0.0) -> np.ndarray:
    ax, ay, az = np.radians([deg_x, deg_y, deg_z])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


_UNIT_TO_MM = {"mm": 1.0, "unknown": 1.0, "meter": 1000.0, "micron": 0.001}


def nifti_truth(path: Path) -> tuple[float, np.ndarray] | None:
    """(total MBq of the positive voxels, affine in mm) of a NIfTI file, read independently of dlpvc."""
    import nibabel as nib

    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj, dtype=np.float64)
        aff = np.array(img.affine, dtype=float)
        unit = img.header.get_xyzt_units()[0]
    except Exception:  # noqa: BLE001 - a deliberately broken fixture
        return None
    aff[:3, :] *= _UNIT_TO_MM.get(unit, 1.0)
    voxvol = abs(float(np.linalg.det(aff[:3, :3]))) / 1000.0
    with np.errstate(invalid="ignore"):
        pos = np.where(np.isfinite(data) & (data > 0), data, 0.0)
    return float(pos.sum()) * voxvol, aff


class Fx:
    """Builds the files of one call in its scratch folder ``d`` and remembers their true totals."""

    def __init__(self, d: Path, py: str, env: dict) -> None:
        self.d = d
        self.py = py
        self.env = env
        self.totals: dict[str, float] = {}
        self.affines: dict[str, np.ndarray] = {}
        self.info: dict = {}

    def p(self, rel: str) -> Path:
        return self.d / rel

    def _record(self, rel: str) -> None:
        truth = nifti_truth(self.p(rel))
        if truth is not None:
            self.totals[os.path.normpath(rel)], self.affines[os.path.normpath(rel)] = truth

    def nii(self, rel="a.nii.gz", data=None, *, shape=(32, 32, 32), total=400.0, vox=VOX, affine=None,
            units="mm", dtype=None, sidecar=None, seed=0, blur=1.2, raw=False) -> Path:
        """A NIfTI image (MBq/mL). Plain float32 3-D images go through pvc_core.io.save_image; anything
        else (other dtypes, 4-D, units, scaled integers: ``dtype``) through nibabel directly."""
        import nibabel as nib

        path = self.p(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is None:
            data = phantom(shape[:3], total, vox, seed, blur)
            if len(shape) > 3:
                data = np.stack([data] * int(np.prod(shape[3:])), axis=-1).reshape(shape)
        aff = affine if affine is not None else diag_affine(vox, np.shape(data))
        plain = not raw and dtype is None and units == "mm" and np.asarray(data).ndim == 3 \
            and np.asarray(data).dtype == np.float32
        if plain:
            from pvc_core.io import save_image

            save_image(path, data, aff, "activity MBq/mL")
        else:
            img = nib.Nifti1Image(np.asarray(data), aff)
            img.header.set_xyzt_units(units, "sec")
            if dtype is not None:
                img.set_data_dtype(dtype)
            img.header["descrip"] = b"activity MBq/mL"
            nib.save(img, str(path))
        self._record(rel)
        if sidecar is not None:
            self.json(_sidecar_of(rel), sidecar)
        return path

    def json(self, rel: str, content) -> Path:
        path = self.p(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content) if not isinstance(content, str) else content)
        return path

    def text(self, rel: str, content: str | bytes = "") -> Path:
        path = self.p(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def mkdir(self, rel: str) -> Path:
        path = self.p(rel)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def dicom(self, rel="series", vol=None, *, shape=(32, 32, 32), total=400.0, vox=VOX, modality="PT",
              units="BQML", image_type=("ORIGINAL", "PRIMARY"), recon=None, series_uid=None, seed=0,
              multiframe=False, ct=False, edit=None, scale=1e6, prefix="IM") -> Path:
        """A DICOM series in Bq/mL (``scale`` x MBq/mL): one file per slice in folder ``rel``, or one
        multi-frame NM file ``rel`` (``multiframe``); ``ct``: a CT series in HU."""
        vol = phantom(shape, total, vox, seed) if vol is None else np.asarray(vol, float)
        path = write_dicom(self.p(rel), vol, vox=vox, modality=modality, units=units, image_type=image_type,
                           recon=recon, series_uid=series_uid, multiframe=multiframe, ct=ct, edit=edit,
                           scale=scale, prefix=prefix)
        if not ct:
            self.totals[os.path.normpath(rel)] = float(np.clip(vol, 0, None).sum()) * float(
                np.prod(np.broadcast_to(vox, (3,)))) / 1000.0
        return path

    def pre(self, args: list[str], expect_rc: int = 0) -> None:
        """Run a dlpvc call as part of the setup (not classified); it must exit ``expect_rc``."""
        proc = subprocess.run([self.py, "-m", "pvc_core", *args], cwd=self.d, env=self.env, capture_output=True,
                              text=True, timeout=300)
        if proc.returncode != expect_rc:
            raise SetupError(f"setup call {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()[-400:]}")

    def copy(self, src: str, dst: str) -> None:
        s, t = self.p(src), self.p(dst)
        t.parent.mkdir(parents=True, exist_ok=True)
        if s.is_dir():
            shutil.copytree(s, t)
        else:
            shutil.copy2(s, t)
        if os.path.normpath(src) in self.totals:
            self.totals[os.path.normpath(dst)] = self.totals[os.path.normpath(src)]
            if os.path.normpath(src) in self.affines:
                self.affines[os.path.normpath(dst)] = self.affines[os.path.normpath(src)]


class SetupError(RuntimeError):
    pass


def _sidecar_of(rel: str) -> str:
    """``x.nii.gz`` / ``x.nii`` -> ``x.json``; a folder ``x`` -> ``x.json`` (dlpvc's convention)."""
    p = Path(rel)
    name = p.name
    low = name.lower()
    if low.endswith(".nii.gz"):
        stem = name[:-7]
    elif low.endswith(".nii"):
        stem = name[:-4]
    else:
        stem = name.rstrip("/")
    return str(p.with_name(stem + ".json")) if stem else str(p.parent / ".json")


STUDY_UID = "1.2.826.0.1.3680043.8.498.7001"
FRAME_UID = "1.2.826.0.1.3680043.8.498.7002"


def write_dicom(path: Path, vol: np.ndarray, *, vox=VOX, modality="PT", units="BQML",
                image_type=("ORIGINAL", "PRIMARY"), recon=None, series_uid=None, multiframe=False, ct=False,
                edit=None, scale=1e6, prefix="IM") -> Path:
    """Write ``vol[c, r, k]`` (MBq/mL, or HU for ``ct``) as DICOM the way tests/helpers/dicom_series.py does:
    single-slice PT/NM/CT files (axial, ``vox`` mm pixels and slice step) or one NM multi-frame file
    with its geometry in DetectorInformationSequence and the unit in RealWorldValueMappingSequence."""
    import pydicom  # noqa: F401
    from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import (CTImageStorage, ExplicitVRLittleEndian, NuclearMedicineImageStorage,
                             PositronEmissionTomographyImageStorage, generate_uid)
    from pydicom.valuerep import format_number_as_ds

    series_uid = series_uid or generate_uid()
    vox3 = np.broadcast_to(np.asarray(vox, float), (3,))
    n_cols, n_rows, n_slices = vol.shape
    ipp0 = np.array([-0.5 * (n_cols - 1) * vox3[0], -0.5 * (n_rows - 1) * vox3[1], -0.5 * (n_slices - 1) * vox3[2]])
    if ct:
        sop_class, modality = CTImageStorage, "CT"
    elif modality == "NM" or multiframe:
        sop_class = NuclearMedicineImageStorage
    else:
        sop_class = PositronEmissionTomographyImageStorage

    def dataset() -> FileDataset:
        meta = FileMetaDataset()
        sop = generate_uid()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = sop
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = sop
        ds.Modality = modality
        ds.PatientID = "PHANTOM"
        ds.StudyInstanceUID = STUDY_UID
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = FRAME_UID
        ds.SeriesNumber = 7
        ds.SeriesDescription = "awkward calls"
        if image_type is not None:
            ds.ImageType = list(image_type)
        if recon is not None:
            ds.ReconstructionMethod = recon
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        return ds

    def quantise(values: np.ndarray, intercept: float = 0.0) -> tuple[np.ndarray, str]:
        slope = format_number_as_ds(max(float(values.max() - intercept), 1.0) / 65535)
        return np.clip(np.rint((values - intercept) / float(slope)), 0, 65535).astype("<u2"), slope

    if multiframe:
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels, slope = quantise(vol.transpose(2, 1, 0) * scale)
        ds = dataset()
        ds.NumberOfFrames = n_slices
        ds.NumberOfSlices = n_slices
        ds.FrameIncrementPointer = 0x00540080
        ds.SliceVector = list(range(1, n_slices + 1))
        ds.Rows, ds.Columns = n_rows, n_cols
        ds.PixelSpacing = [float(vox3[1]), float(vox3[0])]
        ds.SpacingBetweenSlices = float(vox3[2])
        ds.SliceThickness = float(vox3[2])
        det = Dataset()
        det.ImagePositionPatient = [float(v) for v in ipp0]
        det.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.DetectorInformationSequence = Sequence([det])
        if units is not None:
            code = Dataset()
            code.CodeValue = units
            code.CodingSchemeDesignator = "UCUM"
            code.CodeMeaning = units
            mapping = Dataset()
            mapping.RealWorldValueSlope = float(slope)
            mapping.RealWorldValueIntercept = 0.0
            mapping.MeasurementUnitsCodeSequence = Sequence([code])
            ds.RealWorldValueMappingSequence = Sequence([mapping])
        ds.PixelData = pixels.tobytes()
        if edit is not None:
            edit(ds, 0)
        ds.save_as(path, enforce_file_format=True)
        return path

    path.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(1).permutation(n_slices)
    for k in range(n_slices):
        ds = dataset()
        if ct:
            pixels, slope = quantise(vol[:, :, k].T + 1024.0)
            intercept = -1024.0
        else:
            pixels, slope = quantise(vol[:, :, k].T * scale)
            intercept = 0.0
        ds.InstanceNumber = k + 1
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.ImagePositionPatient = [float(ipp0[0]), float(ipp0[1]), float(ipp0[2] + k * vox3[2])]
        ds.PixelSpacing = [float(vox3[1]), float(vox3[0])]
        ds.SliceThickness = float(vox3[2])
        ds.Rows, ds.Columns = n_rows, n_cols
        ds.RescaleSlope = slope
        ds.RescaleIntercept = format_number_as_ds(intercept)
        if ct:
            ds.RescaleType = "HU"
        elif units is not None:
            ds.Units = units
        ds.PixelData = pixels.tobytes()
        if edit is not None:
            edit(ds, k)
        ds.save_as(path / f"{prefix}{int(order[k]):04d}.dcm", enforce_file_format=True)
    return path


# ------------------------------------------------------------------------------------------ catalogue

@dataclass
class Case:
    """One call and what it should do.

    ``expect``: ``refuse`` (exit 2, one line), ``ok`` (exit 0, ``outputs`` written with sidecars),
    ``batch`` (exit ``rc``, ``outputs`` written, ``absent`` not), ``interrupt`` (signal ``sig`` when
    ``trigger`` fires; exit ``rc``; only ``outputs`` may appear, whole), ``either`` (a correct
    refusal or a correct success), ``exit0`` (exit 0, nothing written: --help, models),
    ``fail_or_refuse`` (exit 1 or 2 with one line, nothing written).
    """

    id: str
    desc: str
    args: list | Callable | None = None
    setup: Callable | None = None
    expect: str = "refuse"
    outputs: tuple = ()
    absent: tuple = ()
    rc: int | None = None
    warn: tuple = ()
    no_warning: bool = False
    mention: str | None = None
    may_change: tuple = ()
    extra_new: tuple = ()
    shell: str | Callable | None = None
    sig: int | None = None
    trigger: tuple | None = None
    check: Callable | None = None
    single: bool = True
    cwd: str = ""
    timeout: float = 180.0
    skip: str | None = None
    max_seconds: float | None = None
    ok_codes: tuple = ()
    env: dict | None = None


CASES: list[Case] = []


def C(id, desc, args=None, **kw) -> None:
    CASES.append(Case(id, desc, args, **kw))


def A(*args) -> list[str]:
    return ["apply", *args]


def std(name="a.nii.gz", **kw):
    return lambda fx: fx.nii(name, **kw)


def seq(*fns):
    def run(fx):
        for f in fns:
            f(fx)
    return run


def _cuda_available(py: str, env: dict) -> bool:
    try:
        out = subprocess.run([py, "-c", "import torch; print(torch.cuda.is_available())"], env=env,
                             capture_output=True, text=True, timeout=120)
        return out.stdout.strip() == "True"
    except Exception:  # noqa: BLE001
        return False


def _json_stdout(fx, res) -> list[str]:
    try:
        data = json.loads(res["stdout"])
    except ValueError as err:
        return [f"stdout is not JSON: {err}"]
    if not isinstance(data, list) or not data or "domain" not in data[0]:
        return ["JSON lacks the models' domains"]
    return []


def _summary_lines(rel: str, n: int, statuses: tuple | None = None):
    def check(fx, res) -> list[str]:
        path = fx.p(rel)
        if not path.is_file():
            return [f"summary {rel} missing"]
        lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        probs = []
        if len(lines) != n:
            probs.append(f"summary has {len(lines)} lines, expected {n}")
        if statuses is not None:
            got = tuple(line.get("status") for line in lines)
            if got != statuses:
                probs.append(f"summary statuses {got}, expected {statuses}")
        return probs
    return check


def _dicom_derived(rel: str):
    """The DICOM output folder ``rel``: every file ImageType DERIVED\\SECONDARY, Units BQML."""
    def check(fx, res) -> list[str]:
        import pydicom

        folder = fx.p(rel)
        files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
        if not files:
            return [f"DICOM output {rel} holds no files"]
        probs = []
        for f in files:
            ds = pydicom.dcmread(f)
            it = [str(v).upper() for v in (ds.get("ImageType") or [])]
            if it[:2] != ["DERIVED", "SECONDARY"]:
                probs.append(f"{f.name}: ImageType {it}, expected DERIVED\\SECONDARY first")
                break
        return probs
    return check


def _unchanged_outputs_of_first_run(*rels):
    """Skipped outputs must not be touched (bytes and mtime)."""
    def check(fx, res) -> list[str]:
        probs = []
        for rel in rels:
            before = fx.info.get("mtimes", {}).get(rel)
            now = fx.p(rel).stat().st_mtime_ns if fx.p(rel).exists() else None
            if before is not None and now != before:
                probs.append(f"{rel} was rewritten (mtime changed) although skipped")
        return probs
    return check


def _record_mtimes(*rels):
    def run(fx):
        fx.info["mtimes"] = {rel: fx.p(rel).stat().st_mtime_ns for rel in rels}
    return run


def _exists_in(folder: str, suffix: str = ".json", n: int = 1):
    """Trigger: at least ``n`` names ending in ``suffix`` (not hidden) in ``folder``."""
    def fire(d: Path) -> bool:
        try:
            names = [e.name for e in os.scandir(d / folder)]
        except OSError:
            return False
        return sum(1 for x in names if x.endswith(suffix) and not x.startswith(".")) >= n
    return fire


def _temp_in(folder: str):
    """Trigger: a ``.dlpvc-tmp-`` temporary exists in ``folder``."""
    def fire(d: Path) -> bool:
        try:
            return any(e.name.startswith(TMP_MARK) for e in os.scandir(d / folder))
        except OSError:
            return False
    return fire


def build_catalogue(cuda: bool, root_user: bool) -> list[Case]:
    CASES.clear()
    rr = "--reconstruction", "RR"
    a_ok = dict(setup=std(), expect="ok", outputs=("b.nii.gz",))

    # ---------------------------------------------------------------- the call itself
    C("call-01", "one NIfTI, --reconstruction RR (scatter not stated: warning)", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      **a_ok, warn=("scatter correction not stated",))
    C("call-02", "inside the domain (RR sidecar): no warning", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=std(sidecar=RR_SIDECAR), expect="ok", outputs=("b.nii.gz",), no_warning=True)
    C("call-03", "no --reconstruction: warned", A("--input", "a.nii.gz", "--output", "b.nii.gz"), **a_ok,
      warn=("reconstruction kind not stated",))
    C("call-04", "--input ''", A("--input", "", "--output", "b.nii.gz"), setup=std())
    C("call-05", "--output ''", A("--input", "a.nii.gz", "--output", ""), setup=std())
    C("call-06", "missing input reported fast", A("--input", "missing.nii.gz", "--output", "b.nii.gz"),
      max_seconds=5.0, mention="missing.nii.gz")
    C("call-07", "no --output at all", A("--input", "a.nii.gz"), setup=std())
    C("call-08", "no arguments", A(), setup=std())
    C("call-09", "two --input, one --output", A("--input", "a.nii.gz", "--input", "c.nii.gz", "--output", "b.nii.gz"),
      setup=seq(std(), std("c.nii.gz")))
    C("call-10", "one --input, two --output", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--output", "c.nii.gz"),
      setup=std())
    C("call-11", "--overwrite with --skip-existing", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--overwrite",
                                                        "--skip-existing"), setup=std())
    C("call-12", "--device gpu (not a choice)", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--device", "gpu"),
      setup=std())
    C("call-13", "--reconstruction rr (lower case)", A("--input", "a.nii.gz", "--output", "b.nii.gz",
                                                      "--reconstruction", "rr"), setup=std())
    C("call-14", "--reconstruction noRR: the shipped noRR model corrects it",
      A("--input", "a.nii.gz", "--output", "b.nii.gz", "--reconstruction", "noRR"), setup=std(),
      expect="ok", outputs=("b.nii.gz",))
    C("call-15", "typo option --outptu", A("--input", "a.nii.gz", "--outptu", "b.nii.gz"), setup=std())
    C("call-16", "--input without a value", A("--input", "--output", "b.nii.gz"), setup=std())
    C("call-17", "positional arguments", A("a.nii.gz", "b.nii.gz"), setup=std())
    C("call-18", "--input=a --output=b syntax", A("--input=a.nii.gz", "--output=b.nii.gz", "--reconstruction=RR"),
      **a_ok)
    C("call-19", "apply --help", A("--help"), expect="exit0")
    C("call-20", "apply -h with other arguments", A("--input", "a.nii.gz", "-h"), setup=std(), expect="exit0")
    C("call-21", "misspelt command 'aply'", ["aply", "--input", "a.nii.gz", "--output", "b.nii.gz"], setup=std())
    C("call-22", "dlpvc --version", ["--version"], expect="exit0")
    C("call-23", "dlpvc with no command", [], expect="refuse")
    C("call-24", "--device cpu", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--device", "cpu", *rr), **a_ok)
    if cuda:
        C("call-25", "--device cuda (a GPU is present)", A("--input", "a.nii.gz", "--output", "b.nii.gz",
                                                           "--device", "cuda", *rr), **a_ok)
    else:
        C("call-25", "--device cuda without a GPU", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--device", "cuda"),
          setup=std(), mention="cuda")
    C("call-26", "--device auto", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--device", "auto", *rr), **a_ok)
    C("call-27", "--strict with --reconstruction RR but scatter unknown", A("--input", "a.nii.gz", "--output",
                                                                            "b.nii.gz", "--strict", *rr), setup=std())
    C("call-28", "--strict, image inside the domain", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--strict"),
      setup=std(sidecar=RR_SIDECAR), expect="ok", outputs=("b.nii.gz",), no_warning=True)
    C("call-29", "--strict without --reconstruction", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--strict"),
      setup=std())
    C("call-30", "--input given twice as the same file, same output twice",
      A("--input", "a.nii.gz", "--output", "b.nii.gz", "--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=std(), single=False)

    # ---------------------------------------------------------------- models
    C("model-01", "--model that does not exist", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--model", "nope.pt"),
      setup=std())
    C("model-02", "--model is a text file", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--model", "model.pt"),
      setup=seq(std(), lambda fx: fx.text("model.pt", "not a model\n")))
    C("model-03", "--model is a folder", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--model", "m"),
      setup=seq(std(), lambda fx: fx.mkdir("m")))
    C("model-04", "--model is the input image", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--model", "a.nii.gz"),
      setup=std())
    C("model-05", "--model ''", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--model", ""), setup=std())
    C("model-06", "--model empty file", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--model", "model.pt"),
      setup=seq(std(), lambda fx: fx.text("model.pt", b"")))
    C("model-07", "--model truncated copy of the shipped model", A("--input", "a.nii.gz", "--output", "b.nii.gz",
                                                                   "--model", "m/model.pt"),
      setup=seq(std(), lambda fx: fx.text("m/model.pt", SHIPPED.read_bytes()[: SHIPPED.stat().st_size // 2])))
    C("model-08", "--model copy of the shipped model without its card (domain unknown: warned)",
      A("--input", "a.nii.gz", "--output", "b.nii.gz", "--model", "m/model.pt", *rr),
      setup=seq(std(), lambda fx: fx.text("m/model.pt", SHIPPED.read_bytes())), expect="ok", outputs=("b.nii.gz",),
      warn=("card",))
    C("model-09", "--model the shipped model by path", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--model",
                                                         str(SHIPPED)), setup=std(sidecar=RR_SIDECAR), expect="ok",
      outputs=("b.nii.gz",), no_warning=True)
    C("model-10", "--model a model.pt whose card is garbage", A("--input", "a.nii.gz", "--output", "b.nii.gz",
                                                                "--model", "m/model.pt", *rr),
      setup=seq(std(), lambda fx: fx.text("m/model.pt", SHIPPED.read_bytes()),
                lambda fx: fx.text("m/model_card.json", "{garbage")), expect="ok", outputs=("b.nii.gz",), warn=("card",))
    C("model-11", "--model a pickle of something else (torch.save of a dict)",
      A("--input", "a.nii.gz", "--output", "b.nii.gz", "--model", "m/model.pt"),
      setup=seq(std(), lambda fx: _torch_save_dict(fx, "m/model.pt")))
    C("model-12", "--model a NIfTI-named model file (model.nii.gz) that is the shipped model",
      A("--input", "a.nii.gz", "--output", "b.nii.gz", "--model", "m/model.nii.gz", *rr),
      setup=seq(std(), lambda fx: fx.text("m/model.nii.gz", SHIPPED.read_bytes())), expect="either",
      outputs=("b.nii.gz",))
    C("model-13", "--model given with --reconstruction noRR (the RR shipped model by path): outside, warned",
      A("--input", "a.nii.gz", "--output", "b.nii.gz", "--model", str(SHIPPED), "--reconstruction", "noRR"),
      **a_ok, warn=("reconstruction noRR",))

    # ---------------------------------------------------------------- CT
    C("ct-01", "--ct with a model without the CT channel", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--ct",
                                                             "ct.nii.gz"), setup=seq(std(), std("ct.nii.gz")),
      mention="--ct")
    C("ct-02", "--ct count does not match the inputs", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--input",
                                                         "c.nii.gz", "--output", "d.nii.gz", "--ct", "ct.nii.gz"),
      setup=seq(std(), std("c.nii.gz"), std("ct.nii.gz")))
    C("ct-03", "--ct missing file", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--ct", "ct.nii.gz"), setup=std())
    C("ct-04", "--ct with a folder of inputs", A("--input", "D", "--output", "out", "--ct", "ct.nii.gz"),
      setup=seq(std("D/a.nii.gz"), std("ct.nii.gz")))
    C("ct-05", "--ct ''", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--ct", ""), setup=std())
    C("ct-06", "--ct is a text file", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--ct", "ct.txt"),
      setup=seq(std(), lambda fx: fx.text("ct.txt", "hu")))
    C("ct-07", "--ct is the input itself", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--ct", "a.nii.gz"),
      setup=std())
    C("ct-08", "--output is the --ct file, with --overwrite", A("--input", "a.nii.gz", "--output", "ct.nii.gz",
                                                                "--ct", "ct.nii.gz", "--overwrite"),
      setup=seq(std(), std("ct.nii.gz")))
    C("ct-09", "DICOM output onto the CT series folder, --overwrite",
      A("--input", "spect", "--output", "ctdir", "--ct", "ctdir", "--overwrite"),
      setup=lambda fx: (fx.dicom("spect"), fx.dicom("ctdir", np.zeros((32, 32, 32)), ct=True)))
    C("ct-11", "--ct a DICOM CT series with a model without the CT channel", A("--input", "a.nii.gz", "--output",
                                                                             "b.nii.gz", "--ct", "ctdir"),
      setup=lambda fx: (fx.nii("a.nii.gz"), fx.dicom("ctdir", np.zeros((32, 32, 32)), ct=True)), mention="--ct")
    C("ct-10", "two inputs, two --ct, shipped model", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--ct", "ct.nii.gz",
                                                        "--input", "c.nii.gz", "--output", "d.nii.gz", "--ct", "ct.nii.gz"),
      setup=seq(std(), std("c.nii.gz"), std("ct.nii.gz")), single=False)

    # ---------------------------------------------------------------- summary
    C("sum-01", "--summary new file", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--summary", "s.jsonl", *rr),
      **a_ok, extra_new=("s.jsonl",), check=_summary_lines("s.jsonl", 1, ("done",)))
    C("sum-02", "--summary ''", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--summary", ""), setup=std())
    C("sum-03", "--summary is the input", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--summary", "a.nii.gz"),
      setup=std())
    C("sum-04", "--summary is an existing file", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--summary",
                                                   "notes.txt"), setup=seq(std(), lambda fx: fx.text("notes.txt", "x")))
    C("sum-05", "--summary existing file with --overwrite", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--summary",
                                                              "s.jsonl", "--overwrite", *rr),
      setup=seq(std(), lambda fx: fx.text("s.jsonl", "old\n")), expect="ok", outputs=("b.nii.gz",),
      may_change=("s.jsonl",), check=_summary_lines("s.jsonl", 1, ("done",)))
    C("sum-06", "--summary in a missing folder (created, like an output folder)",
      A("--input", "a.nii.gz", "--output", "b.nii.gz", "--summary", "no/s.jsonl", *rr), setup=std(), expect="ok",
      outputs=("b.nii.gz",), extra_new=("no/s.jsonl",))
    C("sum-07", "--summary is a folder", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--summary", "sdir"),
      setup=seq(std(), lambda fx: fx.mkdir("sdir")))
    C("sum-08", "--summary is the output's sidecar", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--summary",
                                                       "b.json"), setup=std(), single=False)
    C("sum-09", "--summary is the output image", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--summary",
                                                   "b.nii.gz"), setup=std(), single=False)
    C("sum-10", "--summary is the input's BIDS sidecar", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--summary",
                                                          "a.json"), setup=std(sidecar={"ReconMethodName": "OSEM RR"}))
    C("sum-11", "--summary with a refused input (missing): summary may record it",
      A("--input", "missing.nii.gz", "--output", "b.nii.gz", "--summary", "s.jsonl"), extra_new=("s.jsonl",))
    C("sum-12", "--summary for a folder batch", A("--input", "D", "--output", "out", "--summary", "s.jsonl", *rr),
      setup=seq(std("D/a.nii.gz"), std("D/c.nii.gz", seed=1)), expect="batch", rc=0,
      outputs=("out/a_dlpvc.nii.gz", "out/c_dlpvc.nii.gz"), extra_new=("s.jsonl",),
      check=_summary_lines("s.jsonl", 2, ("done", "done")))
    C("sum-13", "--summary symlink pointing at the input", A("--input", "a.nii.gz", "--output", "b.nii.gz",
                                                             "--summary", "s.jsonl", "--overwrite"),
      setup=seq(std(), lambda fx: os.symlink("a.nii.gz", fx.p("s.jsonl"))))
    C("sum-14", "--summary inside the output folder of a folder batch", A("--input", "D", "--output", "out", "--summary",
                                                                         "out/s.jsonl", *rr),
      setup=std("D/a.nii.gz"), expect="batch", rc=0, outputs=("out/a_dlpvc.nii.gz",), extra_new=("out/s.jsonl",))

    # ---------------------------------------------------------------- output names and places
    C("name-01", "--output out.txt", A("--input", "a.nii.gz", "--output", "out.txt"), setup=std())
    C("name-02", "--output .nii.gz alone", A("--input", "a.nii.gz", "--output", ".nii.gz"), setup=std())
    C("name-03", "--output .nii alone", A("--input", "a.nii.gz", "--output", ".nii"), setup=std())
    C("name-04", "--output upper case B.NII.GZ", A("--input", "a.nii.gz", "--output", "B.NII.GZ", *rr), setup=std(),
      expect="ok", outputs=("B.NII.GZ",))
    C("name-05", "input upper case A.NII.GZ", A("--input", "A.NII.GZ", "--output", "b.nii.gz", *rr),
      setup=std("A.NII.GZ"), expect="ok", outputs=("b.nii.gz",))
    C("name-06", "input mixed case a.Nii (nibabel cannot read it): refused with what to do",
      A("--input", "a.Nii", "--output", "b.NII", *rr), setup=seq(std("a.nii"), lambda fx: _rename(fx, "a.nii", "a.Nii")))
    C("name-07", "spaces in names", A("--input", "my scan.nii.gz", "--output", "my out.nii.gz", *rr),
      setup=std("my scan.nii.gz"), expect="ok", outputs=("my out.nii.gz",))
    C("name-08", "unicode names", A("--input", "pätient_ü_测试.nii.gz", "--output", "корр_é.nii.gz", *rr),
      setup=std("pätient_ü_测试.nii.gz"), expect="ok", outputs=("корр_é.nii.gz",))
    C("name-09", "unicode names with LC_ALL=C", A("--input", "pätient.nii.gz", "--output", "kórr.nii.gz", *rr),
      setup=std("pätient.nii.gz"), expect="ok", outputs=("kórr.nii.gz",), env={"LC_ALL": "C", "LANG": "C"})
    C("name-10", "output in a missing folder", A("--input", "a.nii.gz", "--output", "no/such/b.nii.gz"), setup=std())
    C("name-11", "output via '..' (sub/../b.nii.gz)", A("--input", "a.nii.gz", "--output", "sub/../b.nii.gz", *rr),
      setup=seq(std(), lambda fx: fx.mkdir("sub")), expect="ok", outputs=("b.nii.gz",))
    C("name-12", "output via '..' is the input (sub/../a.nii.gz)", A("--input", "a.nii.gz", "--output",
                                                                     "sub/../a.nii.gz", "--overwrite"),
      setup=seq(std(), lambda fx: fx.mkdir("sub")))
    C("name-13", "output is the input", A("--input", "a.nii.gz", "--output", "a.nii.gz"), setup=std())
    C("name-14", "output is the input, --overwrite", A("--input", "a.nii.gz", "--output", "a.nii.gz", "--overwrite"),
      setup=std())
    C("name-15", "output A.nii next to input A.nii.gz + A.json (BIDS sidecar must survive)",
      A("--input", "A.nii.gz", "--output", "A.nii"), setup=std("A.nii.gz", sidecar={"ReconMethodName": "OSEM 6i6s RR"}))
    C("name-16", "output A.nii next to input A.nii.gz + A.json, --overwrite",
      A("--input", "A.nii.gz", "--output", "A.nii", "--overwrite"),
      setup=std("A.nii.gz", sidecar={"ReconMethodName": "OSEM 6i6s RR"}))
    C("name-17", "output A.nii next to input A.nii.gz (no A.json yet)", A("--input", "A.nii.gz", "--output", "A.nii"),
      setup=std("A.nii.gz"))
    C("name-18", "output symlink pointing at the input", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=seq(std(), lambda fx: os.symlink("a.nii.gz", fx.p("b.nii.gz"))))
    C("name-19", "output symlink pointing at the input, --overwrite", A("--input", "a.nii.gz", "--output", "b.nii.gz",
                                                                        "--overwrite"),
      setup=seq(std(), lambda fx: os.symlink("a.nii.gz", fx.p("b.nii.gz"))))
    C("name-20", "output hard link of the input", A("--input", "a.nii.gz", "--output", "h.nii.gz"),
      setup=seq(std(), lambda fx: os.link(fx.p("a.nii.gz"), fx.p("h.nii.gz"))))
    C("name-21", "output hard link of the input, --overwrite", A("--input", "a.nii.gz", "--output", "h.nii.gz",
                                                                 "--overwrite"),
      setup=seq(std(), lambda fx: os.link(fx.p("a.nii.gz"), fx.p("h.nii.gz"))))
    C("name-22", "output dangling symlink", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=seq(std(), lambda fx: os.symlink("nowhere.nii.gz", fx.p("b.nii.gz"))))
    C("name-23", "output sidecar name is a symlink to the input (b.json -> a.nii.gz), --overwrite",
      A("--input", "a.nii.gz", "--output", "b.nii.gz", "--overwrite"),
      setup=seq(std(), lambda fx: os.symlink("a.nii.gz", fx.p("b.json"))))
    C("name-24", "output exists (not dlpvc's), no --overwrite", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=seq(std(), std("b.nii.gz", seed=3)))
    C("name-25", "output exists, --overwrite", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--overwrite", *rr),
      setup=seq(std(), std("b.nii.gz", seed=3)), expect="ok", outputs=("b.nii.gz",), may_change=("b.nii.gz",))
    C("name-26", "output's sidecar exists (image does not), no --overwrite", A("--input", "a.nii.gz", "--output",
                                                                              "b.nii.gz"),
      setup=seq(std(), lambda fx: fx.json("b.json", {"mine": 1})))
    C("name-27", "output is an existing folder", A("--input", "a.nii.gz", "--output", "outdir"),
      setup=seq(std(), lambda fx: fx.mkdir("outdir")))
    C("name-28", "output is an existing folder named x.nii.gz", A("--input", "a.nii.gz", "--output", "x.nii.gz",
                                                                  "--overwrite"),
      setup=seq(std(), lambda fx: fx.text("x.nii.gz/keep.txt", "keep")))
    C("name-29", "output trailing slash 'outdir/' for a NIfTI input", A("--input", "a.nii.gz", "--output", "outdir/"),
      setup=std())
    C("name-30", "output's parent is a file (a.nii.gz/b.nii.gz)", A("--input", "a.nii.gz", "--output",
                                                                    "a.nii.gz/b.nii.gz"), setup=std())
    C("name-31", "absolute output path", lambda fx: A("--input", "a.nii.gz", "--output", str(fx.p("b.nii.gz")), *rr),
      **a_ok)
    C("name-32", "./ relative paths", A("--input", "./a.nii.gz", "--output", "./b.nii.gz", *rr), **a_ok)
    C("name-33", "output with a trailing space 'b.nii.gz '", A("--input", "a.nii.gz", "--output", "b.nii.gz "),
      setup=std())
    C("name-34", "output b.nii.gz.nii.gz", A("--input", "a.nii.gz", "--output", "b.nii.gz.nii.gz", *rr), setup=std(),
      expect="ok", outputs=("b.nii.gz.nii.gz",))
    C("name-35", "output b.gz", A("--input", "a.nii.gz", "--output", "b.gz"), setup=std())
    C("name-36", "output starting with a dash '-b.nii.gz'", A("--input", "a.nii.gz", "--output", "-b.nii.gz"),
      setup=std())
    C("name-37", "output hidden name .b.nii.gz", A("--input", "a.nii.gz", "--output", ".b.nii.gz", *rr), setup=std(),
      expect="ok", outputs=(".b.nii.gz",))
    C("name-38", "output in /proc (not writable even for root)", A("--input", "a.nii.gz", "--output",
                                                                   "/proc/dlpvc_b.nii.gz"),
      setup=std(), expect="fail_or_refuse")
    C("name-39", "output in an unwritable folder (chmod 555)", A("--input", "a.nii.gz", "--output", "ro/b.nii.gz"),
      setup=seq(std(), lambda fx: fx.mkdir("ro"), lambda fx: os.chmod(fx.p("ro"), 0o555)),
      skip="running as root: permissions do not apply" if root_user else None)
    C("name-40", "output named like the input's sidecar (a.json)", A("--input", "a.nii.gz", "--output", "a.json"),
      setup=std())
    C("name-41", "output b.nii.gz with the input in a sub folder (sub/a.nii.gz), output in cwd",
      A("--input", "sub/a.nii.gz", "--output", "b.nii.gz", *rr), setup=std("sub/a.nii.gz"), expect="ok",
      outputs=("b.nii.gz",))
    C("name-42", "output through a symlinked folder that is the input's folder",
      A("--input", "sub/a.nii.gz", "--output", "link/a.nii.gz", "--overwrite"),
      setup=seq(std("sub/a.nii.gz"), lambda fx: os.symlink("sub", fx.p("link"))))
    C("name-43", "output is a FIFO named b.nii.gz", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=seq(std(), lambda fx: os.mkfifo(fx.p("b.nii.gz"))))
    C("name-44", "output '~/b.nii.gz' in quotes (no shell expansion)", A("--input", "a.nii.gz", "--output",
                                                                       "~/b.nii.gz"), setup=std())
    C("name-45", "output name with a newline", A("--input", "a.nii.gz", "--output", "b\nc.nii.gz", *rr), setup=std(),
      expect="either", outputs=("b\nc.nii.gz",))
    C("name-46", "output b.nii (uncompressed)", A("--input", "a.nii.gz", "--output", "b.nii", *rr), setup=std(),
      expect="ok", outputs=("b.nii",))
    C("name-47", "input .nii, output .nii.gz", A("--input", "a.nii", "--output", "b.nii.gz", *rr), setup=std("a.nii"),
      expect="ok", outputs=("b.nii.gz",))
    C("name-48", "output very long name (300 characters)", A("--input", "a.nii.gz", "--output", "x" * 300 + ".nii.gz"),
      setup=std(), expect="fail_or_refuse")
    # mixed-case suffixes: a clean one-line refusal is as good as a correct output (nibabel handles neither)
    mixed = {**a_ok, "expect": "either"}
    C("name-50", "output mixed case b.Nii", A("--input", "a.nii.gz", "--output", "b.Nii", *rr), **{**mixed, "outputs": ("b.Nii",)})
    C("name-51", "output mixed case b.Nii.Gz", A("--input", "a.nii.gz", "--output", "b.Nii.Gz", *rr),
      **{**mixed, "outputs": ("b.Nii.Gz",)})
    C("name-52", "output b.nii.GZ", A("--input", "a.nii.gz", "--output", "b.nii.GZ", *rr), **{**mixed, "outputs": ("b.nii.GZ",)})
    C("name-53", "--output / for a NIfTI input", A("--input", "a.nii.gz", "--output", "/"), setup=std())
    C("name-49", "--output is the input folder path for a NIfTI input ('.')", A("--input", "a.nii.gz", "--output", "."),
      setup=std())

    # ---------------------------------------------------------------- bad input files
    C("file-01", "empty file a.nii.gz", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=lambda fx: fx.text("a.nii.gz", b""))
    C("file-02", "empty file a.nii", A("--input", "a.nii", "--output", "b.nii.gz"), setup=lambda fx: fx.text("a.nii", b""))
    C("file-03", "truncated .nii.gz", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=seq(std("full.nii.gz"), lambda fx: fx.text("a.nii.gz", fx.p("full.nii.gz").read_bytes()[:5000])))
    C("file-04", "truncated .nii (header whole, data short)", A("--input", "a.nii", "--output", "b.nii.gz"),
      setup=seq(std("full.nii"), lambda fx: fx.text("a.nii", fx.p("full.nii").read_bytes()[:20000])))
    C("file-05", "plain NIfTI bytes named .nii.gz", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=seq(std("full.nii"), lambda fx: fx.text("a.nii.gz", fx.p("full.nii").read_bytes())),
      expect="either", outputs=("b.nii.gz",))
    C("file-06", "gzipped NIfTI named .nii", A("--input", "a.nii", "--output", "b.nii.gz", *rr),
      setup=seq(std("full.nii.gz"), lambda fx: fx.text("a.nii", fx.p("full.nii.gz").read_bytes())),
      expect="either", outputs=("b.nii.gz",))
    C("file-07", "a JSON file as input", A("--input", "a.json", "--output", "b.nii.gz"),
      setup=lambda fx: fx.json("a.json", RR_SIDECAR))
    C("file-08", "a text file named a.nii.gz", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=lambda fx: fx.text("a.nii.gz", "hello\n"))
    C("file-09", "random bytes named a.nii", A("--input", "a.nii", "--output", "b.nii.gz"),
      setup=lambda fx: fx.text("a.nii", np.random.default_rng(0).bytes(100000)))
    C("file-10", "gzip of random bytes named a.nii.gz", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=lambda fx: fx.text("a.nii.gz", gzip.compress(np.random.default_rng(0).bytes(100000))))
    C("file-11", "Analyze .img/.hdr pair", A("--input", "a.img", "--output", "b.nii.gz"),
      setup=lambda fx: _analyze(fx, "a.img"))
    C("file-12", "NIfTI with wrong extension (a.dat)", A("--input", "a.dat", "--output", "b.nii.gz"),
      setup=seq(std("full.nii"), lambda fx: fx.text("a.dat", fx.p("full.nii").read_bytes())))
    C("file-13", "input is an empty folder", A("--input", "D", "--output", "out"), setup=lambda fx: fx.mkdir("D"))
    C("file-14", "input folder holds only text files", A("--input", "D", "--output", "out"),
      setup=lambda fx: fx.text("D/readme.txt", "x"))
    C("file-15", "input folder named x.nii.gz", A("--input", "x.nii.gz", "--output", "b.nii.gz"),
      setup=std("x.nii.gz/a.nii.gz"))
    C("file-16", "input is /dev/null", A("--input", "/dev/null", "--output", "b.nii.gz"))
    C("file-17", "input symlink to a NIfTI", A("--input", "l.nii.gz", "--output", "b.nii.gz", *rr),
      setup=seq(std(), lambda fx: os.symlink("a.nii.gz", fx.p("l.nii.gz"))), expect="ok", outputs=("b.nii.gz",))
    C("file-18", "input dangling symlink", A("--input", "l.nii.gz", "--output", "b.nii.gz"),
      setup=lambda fx: os.symlink("nowhere.nii.gz", fx.p("l.nii.gz")))
    C("file-19", "input unreadable (chmod 000)", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=seq(std(), lambda fx: os.chmod(fx.p("a.nii.gz"), 0)),
      skip="running as root: permissions do not apply" if root_user else None)
    C("file-20", "input is a FIFO", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=lambda fx: os.mkfifo(fx.p("a.nii.gz")), timeout=30)
    C("file-21", "NIfTI-2 file", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr), setup=lambda fx: _nifti2(fx),
      expect="either", outputs=("b.nii.gz",))
    C("file-22", "big-endian NIfTI", A("--input", "a.nii", "--output", "b.nii.gz", *rr),
      setup=lambda fx: _bigendian(fx, "a.nii"), expect="ok", outputs=("b.nii.gz",))
    C("file-23", "input with a trailing slash a.nii.gz/", A("--input", "a.nii.gz/", "--output", "b.nii.gz"),
      setup=std(), expect="either", outputs=("b.nii.gz",))

    # ---------------------------------------------------------------- image content
    def img(data_fn, **kw):
        return lambda fx: fx.nii("a.nii.gz", data_fn(), **kw)

    C("img-01", "4-D image (2 volumes)", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=std(shape=(32, 32, 32, 2)))
    C("img-02", "4-D image with one volume (32,32,32,1)", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=std(shape=(32, 32, 32, 1)), expect="either", outputs=("b.nii.gz",))
    C("img-03", "2-D image", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=lambda fx: fx.nii("a.nii.gz", phantom()[:, :, 16].copy(), affine=np.diag([VOX, VOX, VOX, 1.0]), raw=True))
    C("img-04", "5-D image", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=img(lambda: phantom()[..., None, None].repeat(2, axis=4)))
    C("img-05", "integer image int16 with scl_slope", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=std(dtype=np.int16), expect="ok", outputs=("b.nii.gz",))
    C("img-06", "uint8 image with scl_slope", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=std(dtype=np.uint8), expect="ok", outputs=("b.nii.gz",))
    C("img-07", "plain int32 image (0/1 MBq/mL)", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=img(lambda: (phantom() > 0.04).astype(np.int32)), expect="ok", outputs=("b.nii.gz",),
      warn=("scatter",))
    C("img-08", "float64 image", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=img(lambda: phantom().astype(np.float64)), expect="ok", outputs=("b.nii.gz",))
    C("img-09", "counts image (int16, ~1e5 MBq if read as MBq/mL)", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=img(lambda: np.rint(phantom() * 2000).astype(np.int16)))
    C("img-10", "uint16 image with scl_slope", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=std(dtype=np.uint16), expect="ok", outputs=("b.nii.gz",))
    C("img-11", "complex64 image", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=img(lambda: phantom().astype(np.complex64)))
    C("img-12", "RGB image", A("--input", "a.nii.gz", "--output", "b.nii.gz"), setup=lambda fx: _rgb_nifti(fx))
    C("img-13", "NaN voxel", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=img(lambda: _set(phantom(), (3, 3, 3), np.nan)))
    C("img-14", "Inf voxel", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=img(lambda: _set(phantom(), (3, 3, 3), np.inf)))
    C("img-15", "all zeros", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=img(lambda: np.zeros((32, 32, 32), np.float32)))
    C("img-16", "all negative", A("--input", "a.nii.gz", "--output", "b.nii.gz"), setup=img(lambda: -phantom()))
    C("img-17", "negatives > 1 % of the activity", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=img(lambda: _noisy(phantom(), 0.2)))
    C("img-18", "tiny negatives (OSEM-like, < 1 %): corrected with a note", A("--input", "a.nii.gz", "--output",
                                                                             "b.nii.gz", *rr),
      setup=img(lambda: _noisy(phantom(), 0.0005)), expect="ok", outputs=("b.nii.gz",))
    C("img-19", "Bq/mL stored as MBq/mL (total ~4e8 MBq)", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=img(lambda: phantom() * 1e6), mention="1e6")
    C("img-20", "kBq/mL stored as MBq/mL (total ~4e5 MBq)", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=img(lambda: phantom() * 1e3), mention="1e3")
    C("img-21", "total 0.5 MBq (GBq/mL or per-voxel)", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=std(total=0.5))
    C("img-22", "total 50 MBq: outside the model's range, warned", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=std(total=50.0), expect="ok", outputs=("b.nii.gz",), warn=("total activity",))
    C("img-23", "total 5000 MBq: warned", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=std(total=5000.0), expect="ok", outputs=("b.nii.gz",), warn=("total activity",))
    C("img-24", "total 40000 MBq (below the 50 GBq limit): warned", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=std(total=40000.0), expect="ok", outputs=("b.nii.gz",), warn=("total activity",))
    C("img-25", "total 60000 MBq: refused", A("--input", "a.nii.gz", "--output", "b.nii.gz"), setup=std(total=60000.0))
    C("img-26", "a single hot voxel (total 300 MBq)", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=img(lambda: _set(np.zeros((32, 32, 32), np.float32), (16, 16, 16), 300 / (VOX ** 3 / 1000))),
      expect="ok", outputs=("b.nii.gz",))
    C("img-27", "uniform image (constant everywhere)", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=img(lambda: np.full((32, 32, 32), 0.1, np.float32)), expect="ok", outputs=("b.nii.gz",))
    C("img-28", "noRR-like heavily Gaussian-blurred image", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=std(blur=3.0), expect="ok", outputs=("b.nii.gz",))
    C("img-29", "a large uniform hot sphere (hollow guard may warn)", A("--input", "a.nii.gz", "--output", "b.nii.gz",
                                                                       *rr),
      setup=img(lambda: _sphere(32, 9, 1.0)), expect="ok", outputs=("b.nii.gz",))
    C("img-30", "negative zero and denormals", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=img(lambda: _denormal(phantom())), expect="ok", outputs=("b.nii.gz",))
    C("img-31", "input values all -0.0 except a body", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=img(lambda: np.where(phantom() > 0.01, phantom(), np.float32(-0.0)).astype(np.float32)),
      expect="ok", outputs=("b.nii.gz",))
    C("img-32", "negative total (mostly negative, one positive voxel)", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=img(lambda: _set(-phantom(), (0, 0, 0), 1.0)))

    # ---------------------------------------------------------------- geometry
    C("geo-01", "voxel size in metres (affine 0.0048, unit mm)", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=lambda fx: fx.nii("a.nii.gz", phantom(), affine=diag_affine(0.0048)), mention="metres")
    C("geo-02", "voxel size in metres with NIfTI unit 'meter' (converted)", A("--input", "a.nii.gz", "--output",
                                                                             "b.nii.gz", *rr),
      setup=lambda fx: fx.nii("a.nii.gz", phantom(), affine=diag_affine(0.0048), units="meter"),
      expect="ok", outputs=("b.nii.gz",))
    C("geo-03", "voxel size in cm (0.48)", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=lambda fx: fx.nii("a.nii.gz", phantom(), affine=diag_affine(0.48)))
    C("geo-04", "voxel 25 mm", A("--input", "a.nii.gz", "--output", "b.nii.gz"), setup=std(vox=25.0))
    C("geo-05", "voxel 2.4 mm: warned", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr), setup=std(vox=2.4),
      expect="ok", outputs=("b.nii.gz",), warn=("voxel size",))
    C("geo-06", "voxel 9.6 mm: warned", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr), setup=std(vox=9.6),
      expect="ok", outputs=("b.nii.gz",), warn=("voxel size",))
    C("geo-07", "anisotropic 4.8 x 4.8 x 2.4 mm: warned", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=std(vox=(4.8, 4.8, 2.4)), expect="ok", outputs=("b.nii.gz",), warn=("voxel size",))
    C("geo-08", "8 voxels along an axis", A("--input", "a.nii.gz", "--output", "b.nii.gz"), setup=std(shape=(32, 32, 8)),
      mention="16")
    C("geo-09", "15 voxels along an axis", A("--input", "a.nii.gz", "--output", "b.nii.gz"), setup=std(shape=(15, 32, 32)))
    C("geo-10", "16 voxels along an axis (the minimum)", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=std(shape=(16, 32, 32)), expect="ok", outputs=("b.nii.gz",))
    C("geo-11", "odd matrix 17 x 33 x 21", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=std(shape=(17, 33, 21)), expect="ok", outputs=("b.nii.gz",))
    C("geo-12", "oblique affine (30 deg about z, 10 about x)", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=lambda fx: fx.nii("a.nii.gz", phantom(), affine=_oblique(30, 10)), expect="ok", outputs=("b.nii.gz",))
    C("geo-13", "flipped axes (LPS-like negative diagonal)", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=lambda fx: fx.nii("a.nii.gz", phantom(), affine=np.diag([-VOX, -VOX, VOX, 1.0])), expect="ok",
      outputs=("b.nii.gz",))
    C("geo-14", "permuted axes affine", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=lambda fx: fx.nii("a.nii.gz", phantom(), affine=_permuted()), expect="ok", outputs=("b.nii.gz",))
    C("geo-15", "zero voxel size (singular affine)", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=lambda fx: _singular(fx, "a.nii.gz"))
    C("geo-16", "sheared affine", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=lambda fx: fx.nii("a.nii.gz", phantom(), affine=_sheared()), expect="either", outputs=("b.nii.gz",))
    C("geo-17", "matrix 260 x 16 x 16 (long axis outside the model's matrix range): warned",
      A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr), setup=std(shape=(260, 16, 16)), expect="ok",
      outputs=("b.nii.gz",), warn=("matrix",))
    C("geo-18", "NIfTI unit micron with 4800 um voxels (converted)", A("--input", "a.nii.gz", "--output", "b.nii.gz",
                                                                      *rr),
      setup=lambda fx: fx.nii("a.nii.gz", phantom(), affine=diag_affine(4800.0), units="micron"), expect="ok",
      outputs=("b.nii.gz",))
    C("geo-19", "voxel size in metres, --strict", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--strict"),
      setup=lambda fx: fx.nii("a.nii.gz", phantom(), affine=diag_affine(0.0048)))
    C("geo-20", "16 x 16 x 16 image, 4.8 mm", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=std(shape=(16, 16, 16)), expect="ok", outputs=("b.nii.gz",))
    C("geo-21", "oblique affine, --reconstruction RR, DICOM-like LPS flip + rotation", A("--input", "a.nii.gz",
                                                                                       "--output", "b.nii.gz", *rr),
      setup=lambda fx: fx.nii("a.nii.gz", phantom(), affine=np.diag([-1, -1, 1, 1]) @ _oblique(45, 0)), expect="ok",
      outputs=("b.nii.gz",))
    C("geo-22", "huge translation in the affine (1e6 mm)", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=lambda fx: fx.nii("a.nii.gz", phantom(), affine=_translated(1e6)), expect="either", outputs=("b.nii.gz",))
    C("geo-23", "NaN in the affine", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=lambda fx: fx.nii("a.nii.gz", phantom(), affine=_translated(np.nan)))

    # ---------------------------------------------------------------- domain (sidecars, --strict)
    C("dom-01", "sidecar says noRR: the shipped noRR model corrects it", A("--input", "a.nii.gz", "--output",
                                                                          "b.nii.gz"),
      setup=std(sidecar=NORR_SIDECAR), expect="ok", outputs=("b.nii.gz",))
    C("dom-02", "sidecar says noRR, --reconstruction RR overrides", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=std(sidecar=NORR_SIDECAR), expect="ok", outputs=("b.nii.gz",))
    C("dom-03", "sidecar says noRR, --model shipped: outside, warned", A("--input", "a.nii.gz", "--output", "b.nii.gz",
                                                                        "--model", str(SHIPPED)),
      setup=std(sidecar=NORR_SIDECAR), expect="ok", outputs=("b.nii.gz",), warn=("noRR",))
    C("dom-04", "sidecar scatter TEW: outside, warned", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=std(sidecar={"reconstruction": {**RR_SIDECAR["reconstruction"], "scatter_correction": "TEW"}}),
      expect="ok", outputs=("b.nii.gz",), warn=("scatter correction TEW",))
    C("dom-05", "sidecar 20 iterations: warned", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=std(sidecar={"reconstruction": {**RR_SIDECAR["reconstruction"], "iterations": 20}}), expect="ok",
      outputs=("b.nii.gz",), warn=("20 iterations",))
    C("dom-06", "sidecar post-filter 10 mm: warned", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=std(sidecar={"reconstruction": {**RR_SIDECAR["reconstruction"], "post_filter_fwhm_mm": 10}}),
      expect="ok", outputs=("b.nii.gz",), warn=("post-filter",))
    C("dom-07", "BIDS sidecar AttenuationCorrection none: warned", A("--input", "a.nii.gz", "--output", "b.nii.gz",
                                                                     *rr),
      setup=std(sidecar={"AttenuationCorrection": "none"}), expect="ok", outputs=("b.nii.gz",),
      warn=("attenuation",))
    C("dom-08", "BIDS ReconMethodName 'OSEM 6i6s Flash3D' (RR stated)", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=std(sidecar={"ReconMethodName": "OSEM 6i6s Flash3D"}), expect="ok", outputs=("b.nii.gz",),
      warn=("scatter",))
    C("dom-09", "malformed JSON sidecar beside the input (ignored, untouched)", A("--input", "a.nii.gz", "--output",
                                                                                "b.nii.gz", *rr),
      setup=seq(std(), lambda fx: fx.json("a.json", "{not json")), expect="ok", outputs=("b.nii.gz",))
    C("dom-10", "sidecar is a JSON list", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=seq(std(), lambda fx: fx.json("a.json", [1, 2])), expect="ok", outputs=("b.nii.gz",))
    C("dom-11", "sidecar path is a folder (a.json/)", A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=seq(std(), lambda fx: fx.text("a.json/x", "x")), expect="ok", outputs=("b.nii.gz",))
    C("dom-12", "input is an earlier dlpvc output (noted, corrected again)", A("--input", "b.nii.gz", "--output",
                                                                              "c.nii.gz", *rr),
      setup=seq(std(), lambda fx: fx.pre(A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr))),
      expect="ok", outputs=("c.nii.gz",))
    C("dom-13", "--strict, total 50 MBq", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--strict"),
      setup=std(total=50.0, sidecar=RR_SIDECAR), mention="total activity")
    C("dom-14", "--strict, voxel 2.4 mm", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--strict"),
      setup=std(vox=2.4, sidecar=RR_SIDECAR), mention="voxel size")
    C("dom-15", "--strict, scatter TEW", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--strict"),
      setup=std(sidecar={"reconstruction": {**RR_SIDECAR["reconstruction"], "scatter_correction": "TEW"}}))
    C("dom-16", "--strict, --reconstruction noRR with --model shipped", A("--input", "a.nii.gz", "--output", "b.nii.gz",
                                                                         "--strict", "--model", str(SHIPPED),
                                                                         "--reconstruction", "noRR"),
      setup=std(sidecar=RR_SIDECAR))
    C("dom-17", "--strict, 8 voxels (impossible, refused before the domain)", A("--input", "a.nii.gz", "--output",
                                                                               "b.nii.gz", "--strict"),
      setup=std(shape=(8, 32, 32)))
    C("dom-18", "sidecar reconstruction name 'rr' (lower case)", A("--input", "a.nii.gz", "--output", "b.nii.gz"),
      setup=std(sidecar={"reconstruction": {**RR_SIDECAR["reconstruction"], "name": "rr"}}), expect="ok",
      outputs=("b.nii.gz",), warn=("reconstruction",))
    C("dom-19", "BIDS ReconMethodName says 'OSEM noRR' with --reconstruction RR given", A("--input", "a.nii.gz",
                                                                                         "--output", "b.nii.gz", *rr),
      setup=std(sidecar={"ReconMethodName": "OSEM noRR"}), expect="ok", outputs=("b.nii.gz",))
    C("dom-20", "sidecar of a dlpvc output beside an input with the same stem (input looks like our output)",
      A("--input", "a.nii.gz", "--output", "b.nii.gz", *rr),
      setup=seq(std(), lambda fx: fx.json("a.json", {"format": "dlpvc-apply", "status": "done"})), expect="ok",
      outputs=("b.nii.gz",))

    # ---------------------------------------------------------------- DICOM
    C("dcm-01", "DICOM PT series -> DICOM output (DERIVED\\SECONDARY)", A("--input", "series", "--output", "out", *rr),
      setup=lambda fx: fx.dicom("series"), expect="ok", outputs=("out",), check=_dicom_derived("out"))
    C("dcm-02", "DICOM NM single slices without ImageType -> DERIVED\\SECONDARY", A("--input", "series", "--output",
                                                                                   "out", *rr),
      setup=lambda fx: fx.dicom("series", modality="NM", image_type=None), expect="ok", outputs=("out",),
      check=_dicom_derived("out"))
    C("dcm-03", "DICOM NM multi-frame file without ImageType", A("--input", "nm.dcm", "--output", "out", *rr),
      setup=lambda fx: fx.dicom("nm.dcm", multiframe=True, image_type=None, units="Bq/ml"), expect="ok",
      outputs=("out",), check=_dicom_derived("out"))
    C("dcm-04", "DICOM output in nested missing folders", A("--input", "series", "--output", "a/b/c/out", *rr),
      setup=lambda fx: fx.dicom("series"), expect="ok", outputs=("a/b/c/out",))
    C("dcm-05", "DICOM output is an existing file", A("--input", "series", "--output", "out"),
      setup=lambda fx: (fx.dicom("series"), fx.text("out", "x")))
    C("dcm-06", "DICOM output is the input folder", A("--input", "series", "--output", "series"),
      setup=lambda fx: fx.dicom("series"))
    C("dcm-07", "DICOM output is the input folder, --overwrite", A("--input", "series", "--output", "series",
                                                                  "--overwrite"), setup=lambda fx: fx.dicom("series"))
    C("dcm-08", "DICOM output inside the input folder", A("--input", "series", "--output", "series/out"),
      setup=lambda fx: fx.dicom("series"))
    C("dcm-09", "DICOM output holds the input (study/spect -> study), --overwrite",
      A("--input", "study/spect", "--output", "study", "--overwrite"), setup=lambda fx: fx.dicom("study/spect"))
    C("dcm-10", "DICOM output folder exists, non-empty, no --overwrite", A("--input", "series", "--output", "out"),
      setup=lambda fx: (fx.dicom("series"), fx.text("out/old.dcm", "x")))
    C("dcm-11", "DICOM output folder exists but empty", A("--input", "series", "--output", "out", *rr),
      setup=lambda fx: (fx.dicom("series"), fx.mkdir("out")), expect="ok", outputs=("out",))
    C("dcm-12", "DICOM --overwrite of a previous dlpvc output", A("--input", "series", "--output", "out", "--overwrite",
                                                                 *rr),
      setup=lambda fx: (fx.dicom("series"), fx.pre(A("--input", "series", "--output", "out", *rr))), expect="ok",
      outputs=("out",), may_change=("out", "out.json"))
    C("dcm-13", "DICOM --overwrite onto a folder of the user's other files (not a dlpvc output)",
      A("--input", "series", "--output", "results", "--overwrite", *rr),
      setup=lambda fx: (fx.dicom("series"), fx.text("results/notes.txt", "precious"),
                        fx.text("results/other.nii.gz", "precious")))
    C("dcm-14", "NIfTI file inside a DICOM series folder", A("--input", "series", "--output", "out"),
      setup=lambda fx: (fx.dicom("series"), fx.nii("series/extra.nii.gz")))
    C("dcm-15", "DICOM -> NIfTI output", A("--input", "series", "--output", "b.nii.gz", *rr),
      setup=lambda fx: fx.dicom("series"), expect="ok", outputs=("b.nii.gz",))
    C("dcm-16", "DICOM in counts (Units CNTS)", A("--input", "series", "--output", "out"),
      setup=lambda fx: fx.dicom("series", units="CNTS"))
    C("dcm-17", "DICOM without Units", A("--input", "series", "--output", "out"),
      setup=lambda fx: fx.dicom("series", units=None))
    C("dcm-18", "DICOM folder with one truncated slice", A("--input", "series", "--output", "out"),
      setup=lambda fx: (fx.dicom("series"), _truncate_one(fx.p("series"))))
    C("dcm-19", "DICOM folder with a missing slice (gap)", A("--input", "series", "--output", "out", *rr),
      setup=lambda fx: (fx.dicom("series"), _remove_middle(fx.p("series"))), expect="either", outputs=("out",))
    C("dcm-20", "DICOM folder with two series", A("--input", "series", "--output", "out"),
      setup=lambda fx: (fx.dicom("series"), fx.dicom("series", seed=1, prefix="ZZ")))
    C("dcm-21", "a CT series given as the SPECT input", A("--input", "ct", "--output", "out"),
      setup=lambda fx: fx.dicom("ct", np.zeros((32, 32, 32)), ct=True))
    C("dcm-22", "DICOM ReconstructionMethod 'OSEM 6i6s Flash3D' (RR stated)", A("--input", "series", "--output", "out"),
      setup=lambda fx: fx.dicom("series", recon="OSEM 6i6s Flash3D"), expect="ok", outputs=("out",),
      warn=("scatter",))
    C("dcm-23", "DICOM ReconstructionMethod 'OSEM 6i6s noRR': the noRR model", A("--input", "series", "--output", "out"),
      setup=lambda fx: fx.dicom("series", recon="OSEM 6i6s noRR"), expect="ok", outputs=("out",))
    C("dcm-24", "one slice file of a series given as input", lambda fx: A("--input", "series/" + sorted(
        os.listdir(fx.p("series")))[0], "--output", "out"), setup=lambda fx: fx.dicom("series"))
    C("dcm-25", "DICOM folder with a stray README.txt and .DS_Store", A("--input", "series", "--output", "out", *rr),
      setup=lambda fx: (fx.dicom("series"), fx.text("series/README.txt", "x"), fx.text("series/.DS_Store", b"\0\1")),
      expect="ok", outputs=("out",))
    C("dcm-26", "DICOM stored with Units MBq/ml but values in Bq/mL (1e6 too large)", A("--input", "series", "--output",
                                                                                      "out"),
      setup=lambda fx: fx.dicom("series", units="MBq/ml"))
    C("dcm-27", "DICOM pixel spacing 0.0048 (metres)", A("--input", "series", "--output", "out"),
      setup=lambda fx: fx.dicom("series", vox=0.0048))
    C("dcm-28", "DICOM 8 slices", A("--input", "series", "--output", "out"), setup=lambda fx: fx.dicom("series",
                                                                                                       shape=(32, 32, 8)))
    C("dcm-29", "DICOM output with a trailing slash (out/)", A("--input", "series/", "--output", "out/", *rr),
      setup=lambda fx: fx.dicom("series"), expect="ok", outputs=("out",))
    C("dcm-30", "DICOM output '.' (the folder holding the input)", A("--input", "series", "--output", "."),
      setup=lambda fx: fx.dicom("series"))
    C("dcm-31", "DICOM output '..'", A("--input", "series", "--output", ".."), setup=lambda fx: fx.dicom("series"))
    C("dcm-32", "DICOM output named out.json", A("--input", "series", "--output", "out.json", *rr),
      setup=lambda fx: fx.dicom("series"), expect="either", outputs=("out.json",))
    C("dcm-33", "DICOM output whose sidecar (out.json) exists", A("--input", "series", "--output", "out"),
      setup=lambda fx: (fx.dicom("series"), fx.json("out.json", {"mine": 1})))
    C("dcm-34", "DICOM output is the input series' sidecar name (series.json) (folder)",
      A("--input", "series", "--output", "series.json"),
      setup=lambda fx: (fx.dicom("series"), fx.json("series.json", {"ReconMethodName": "OSEM RR"})))
    C("dcm-35", "DICOM NM single slices with Units 'Bq/ml'",
      A("--input", "series", "--output", "out", *rr), setup=lambda fx: fx.dicom("series", modality="NM", units="Bq/ml"),
      expect="ok", outputs=("out",))
    C("dcm-36", "DICOM multi-frame NM -> NIfTI output", A("--input", "nm.dcm", "--output", "b.nii.gz", *rr),
      setup=lambda fx: fx.dicom("nm.dcm", multiframe=True, units="Bq/ml"), expect="ok", outputs=("b.nii.gz",))
    C("dcm-37", "DICOM output folder named like a NIfTI file but uppercase (OUT.NII)", A("--input", "series", "--output",
                                                                                       "OUT.NII", *rr),
      setup=lambda fx: fx.dicom("series"), expect="ok", outputs=("OUT.NII",))
    C("dcm-38", "DICOM file without preamble named .dcm but not DICOM", A("--input", "x.dcm", "--output", "out"),
      setup=lambda fx: fx.text("x.dcm", "not dicom"))
    C("dcm-39", "DICOM series in kBq/mL", A("--input", "series", "--output", "out", *rr),
      setup=lambda fx: fx.dicom("series", units="kBq/ml", scale=1e3), expect="ok", outputs=("out",))
    C("dcm-40", "DICOM output symlink to the input folder", A("--input", "series", "--output", "out", "--overwrite"),
      setup=lambda fx: (fx.dicom("series"), os.symlink("series", fx.p("out"))))

    # ---------------------------------------------------------------- folder of inputs
    C("dir-01", "folder of 3 NIfTI", A("--input", "D", "--output", "out", *rr),
      setup=seq(std("D/a.nii.gz"), std("D/b.nii.gz", seed=1), std("D/c.nii", seed=2)), expect="batch", rc=0,
      outputs=("out/a_dlpvc.nii.gz", "out/b_dlpvc.nii.gz", "out/c_dlpvc.nii.gz"))
    C("dir-02", "folder holding a.nii and a.nii.gz (+ b.nii.gz)", A("--input", "D", "--output", "out", *rr),
      setup=seq(std("D/a.nii"), std("D/a.nii.gz", seed=1), std("D/b.nii.gz", seed=2)), expect="batch", rc=2,
      outputs=("out/b_dlpvc.nii.gz",), absent=("out/a_dlpvc.nii.gz",), single=False)
    C("dir-03", "output folder inside the input folder, first run", A("--input", "D", "--output", "D/out", *rr),
      setup=seq(std("D/a.nii.gz"), std("D/b.nii.gz", seed=1)), expect="batch", rc=0,
      outputs=("D/out/a_dlpvc.nii.gz", "D/out/b_dlpvc.nii.gz"))
    C("dir-04", "output folder inside the input folder, same call again", A("--input", "D", "--output", "D/out", *rr),
      setup=seq(std("D/a.nii.gz"), std("D/b.nii.gz", seed=1),
                lambda fx: fx.pre(A("--input", "D", "--output", "D/out", *rr))), expect="batch", rc=2, single=False,
      outputs=("D/out/a_dlpvc.nii.gz", "D/out/b_dlpvc.nii.gz"))
    C("dir-05", "output folder inside the input folder, again with --skip-existing (untouched)",
      A("--input", "D", "--output", "D/out", "--skip-existing", *rr),
      setup=seq(std("D/a.nii.gz"), std("D/b.nii.gz", seed=1),
                lambda fx: fx.pre(A("--input", "D", "--output", "D/out", *rr)),
                _record_mtimes("D/out/a_dlpvc.nii.gz", "D/out/b_dlpvc.nii.gz")),
      expect="batch", rc=0, outputs=("D/out/a_dlpvc.nii.gz", "D/out/b_dlpvc.nii.gz"),
      check=_unchanged_outputs_of_first_run("D/out/a_dlpvc.nii.gz", "D/out/b_dlpvc.nii.gz"))
    C("dir-06", "output folder inside the input folder, again with --overwrite",
      A("--input", "D", "--output", "D/out", "--overwrite", *rr),
      setup=seq(std("D/a.nii.gz"), std("D/b.nii.gz", seed=1),
                lambda fx: fx.pre(A("--input", "D", "--output", "D/out", *rr))),
      expect="batch", rc=0, outputs=("D/out/a_dlpvc.nii.gz", "D/out/b_dlpvc.nii.gz"),
      may_change=("D/out/a_dlpvc.nii.gz", "D/out/b_dlpvc.nii.gz", "D/out/a_dlpvc.json", "D/out/b_dlpvc.json"))
    C("dir-07", "output folder = input folder, first run", A("--input", "D", "--output", "D", *rr),
      setup=seq(std("D/a.nii.gz"), std("D/b.nii.gz", seed=1)), expect="batch", rc=0,
      outputs=("D/a_dlpvc.nii.gz", "D/b_dlpvc.nii.gz"))
    C("dir-08", "output folder = input folder, twice (own outputs skipped, existing refused)",
      A("--input", "D", "--output", "D", *rr),
      setup=seq(std("D/a.nii.gz"), std("D/b.nii.gz", seed=1), lambda fx: fx.pre(A("--input", "D", "--output", "D", *rr))),
      expect="batch", rc=2, single=False, outputs=("D/a_dlpvc.nii.gz", "D/b_dlpvc.nii.gz"),
      absent=("D/a_dlpvc_dlpvc.nii.gz", "D/b_dlpvc_dlpvc.nii.gz"))
    C("dir-09", "output folder = input folder, twice with --skip-existing", A("--input", "D", "--output", "D",
                                                                             "--skip-existing", *rr),
      setup=seq(std("D/a.nii.gz"), std("D/b.nii.gz", seed=1), lambda fx: fx.pre(A("--input", "D", "--output", "D", *rr))),
      expect="batch", rc=0, outputs=("D/a_dlpvc.nii.gz", "D/b_dlpvc.nii.gz"),
      absent=("D/a_dlpvc_dlpvc.nii.gz", "D/b_dlpvc_dlpvc.nii.gz"))
    C("dir-10", "folder input, --output x.nii.gz", A("--input", "D", "--output", "x.nii.gz"), setup=std("D/a.nii.gz"))
    C("dir-11", "folder input, --output an existing file", A("--input", "D", "--output", "f"),
      setup=seq(std("D/a.nii.gz"), lambda fx: fx.text("f", "x")))
    C("dir-12", "folder with one NaN image and two good ones", A("--input", "D", "--output", "out", *rr),
      setup=seq(std("D/a.nii.gz"), lambda fx: fx.nii("D/bad.nii.gz", _set(phantom(), (1, 1, 1), np.nan)),
                std("D/c.nii.gz", seed=1)), expect="batch", rc=2, single=False,
      outputs=("out/a_dlpvc.nii.gz", "out/c_dlpvc.nii.gz"), absent=("out/bad_dlpvc.nii.gz",))
    C("dir-13", "folder with a DICOM series sub-folder and a NIfTI", A("--input", "D", "--output", "out", *rr),
      setup=lambda fx: (fx.nii("D/a.nii.gz"), fx.dicom("D/series")), expect="batch", rc=0,
      outputs=("out/a_dlpvc.nii.gz", "out/series_dlpvc"), check=_dicom_derived("out/series_dlpvc"))
    C("dir-14", "folder with a nested sub-folder of NIfTI (not searched)", A("--input", "D", "--output", "out", *rr),
      setup=seq(std("D/a.nii.gz"), std("D/sub/b.nii.gz", seed=1)), expect="batch", rc=0,
      outputs=("out/a_dlpvc.nii.gz",), absent=("out/b_dlpvc.nii.gz",))
    C("dir-15", "folder with a hidden .x.nii.gz (skipped)", A("--input", "D", "--output", "out", *rr),
      setup=seq(std("D/a.nii.gz"), std("D/.x.nii.gz", seed=1)), expect="batch", rc=0,
      outputs=("out/a_dlpvc.nii.gz",), absent=("out/.x_dlpvc.nii.gz", "out/x_dlpvc.nii.gz"))
    C("dir-16", "folder with a stale temporary from a crash (skipped)", A("--input", "D", "--output", "out", *rr),
      setup=seq(std("D/a.nii.gz"), std("D/.dlpvc-tmp-999-0.c.nii.gz", seed=1)), expect="batch", rc=0,
      outputs=("out/a_dlpvc.nii.gz",))
    C("dir-17", "--skip-existing resumes a half-done batch (skipped outputs untouched)",
      A("--input", "D", "--output", "out", "--skip-existing", *rr),
      setup=seq(std("D/a.nii.gz"), std("D/b.nii.gz", seed=1), lambda fx: fx.pre(A("--input", "D", "--output", "out", *rr)),
                std("D/c.nii.gz", seed=2), std("D/d.nii.gz", seed=3),
                _record_mtimes("out/a_dlpvc.nii.gz", "out/b_dlpvc.nii.gz")),
      expect="batch", rc=0, outputs=("out/a_dlpvc.nii.gz", "out/b_dlpvc.nii.gz", "out/c_dlpvc.nii.gz",
                                     "out/d_dlpvc.nii.gz"),
      check=_unchanged_outputs_of_first_run("out/a_dlpvc.nii.gz", "out/b_dlpvc.nii.gz"))
    C("dir-18", "--skip-existing where an input changed since (refused, old output untouched)",
      A("--input", "D", "--output", "out", "--skip-existing", *rr),
      setup=seq(std("D/a.nii.gz"), lambda fx: fx.pre(A("--input", "D", "--output", "out", *rr)),
                std("D/a.nii.gz", seed=5)), expect="batch", rc=2, outputs=("out/a_dlpvc.nii.gz",))
    C("dir-19", "--skip-existing, output exists without its sidecar", A("--input", "D", "--output", "out",
                                                                        "--skip-existing", *rr),
      setup=seq(std("D/a.nii.gz"), lambda fx: fx.pre(A("--input", "D", "--output", "out", *rr)),
                lambda fx: fx.p("out/a_dlpvc.json").unlink()), expect="refuse")
    C("dir-20", "--overwrite rerun of a folder batch", A("--input", "D", "--output", "out", "--overwrite", *rr),
      setup=seq(std("D/a.nii.gz"), lambda fx: fx.pre(A("--input", "D", "--output", "out", *rr))), expect="batch", rc=0,
      outputs=("out/a_dlpvc.nii.gz",), may_change=("out/a_dlpvc.nii.gz", "out/a_dlpvc.json"))
    C("dir-21", "user file a_dlpvc.nii.gz (no sidecar) in a folder written into itself",
      A("--input", "D", "--output", "D", *rr),
      setup=seq(std("D/a.nii.gz"), std("D/a_dlpvc.nii.gz", seed=1)), expect="batch", rc=2, single=False,
      outputs=("D/a_dlpvc_dlpvc.nii.gz",))
    C("dir-22", "folder given with a trailing slash", A("--input", "D/", "--output", "out/", *rr),
      setup=std("D/a.nii.gz"), expect="batch", rc=0, outputs=("out/a_dlpvc.nii.gz",))
    C("dir-23", "folder '.' (cwd holds the images)", A("--input", ".", "--output", "out", *rr),
      setup=seq(std("a.nii.gz"), std("b.nii.gz", seed=1)), expect="batch", rc=0,
      outputs=("out/a_dlpvc.nii.gz", "out/b_dlpvc.nii.gz"))
    C("dir-24", "output folder in nested missing folders", A("--input", "D", "--output", "x/y/out", *rr),
      setup=std("D/a.nii.gz"), expect="batch", rc=0, outputs=("x/y/out/a_dlpvc.nii.gz",))
    C("dir-25", "folder holding a symlink to a NIfTI elsewhere", A("--input", "D", "--output", "out", *rr),
      setup=seq(std("E/a.nii.gz"), lambda fx: fx.mkdir("D"), lambda fx: os.symlink("../E/a.nii.gz", fx.p("D/l.nii.gz"))),
      expect="batch", rc=0, outputs=("out/l_dlpvc.nii.gz",))
    C("dir-26", "folder holding a renamed dlpvc output (its sidecar says so): left out",
      A("--input", "D", "--output", "out", *rr),
      setup=seq(std("D/a.nii.gz"), lambda fx: fx.pre(A("--input", "D/a.nii.gz", "--output", "D/fixed.nii.gz", *rr))),
      expect="batch", rc=0, outputs=("out/a_dlpvc.nii.gz",), absent=("out/fixed_dlpvc.nii.gz",))
    C("dir-27", "folder output is a DICOM series sub-folder of the input folder", A("--input", "D", "--output",
                                                                                   "D/series"),
      setup=lambda fx: (fx.nii("D/a.nii.gz"), fx.dicom("D/series")), single=False)
    C("dir-28", "folder input is a symlink to a folder", A("--input", "L", "--output", "out", *rr),
      setup=seq(std("D/a.nii.gz"), lambda fx: os.symlink("D", fx.p("L"))), expect="batch", rc=0,
      outputs=("out/a_dlpvc.nii.gz",))
    C("dir-29", "folder with a.nii.gz + a.json (BIDS) written into itself", A("--input", "D", "--output", "D", *rr),
      setup=std("D/a.nii.gz", sidecar={"ReconMethodName": "OSEM 6i6s RR"}), expect="batch", rc=0,
      outputs=("D/a_dlpvc.nii.gz",))
    C("dir-30", "folder with an empty file x.nii.gz and a good one", A("--input", "D", "--output", "out", *rr),
      setup=seq(std("D/a.nii.gz"), lambda fx: fx.text("D/x.nii.gz", b"")), expect="batch", rc=2, single=False,
      outputs=("out/a_dlpvc.nii.gz",), absent=("out/x_dlpvc.nii.gz",))
    C("dir-31", "folder with A.nii.gz and a.nii.gz (case-different names)", A("--input", "D", "--output", "out", *rr),
      setup=seq(std("D/A.nii.gz"), std("D/a.nii.gz", seed=1)), expect="batch", rc=0,
      outputs=("out/A_dlpvc.nii.gz", "out/a_dlpvc.nii.gz"))
    C("dir-32", "folder input with --output ''", A("--input", "D", "--output", ""), setup=std("D/a.nii.gz"))
    C("dir-33", "folder with 2 inputs, output folder exists with unrelated user files", A("--input", "D", "--output",
                                                                                         "out", *rr),
      setup=seq(std("D/a.nii.gz"), lambda fx: fx.text("out/keep.txt", "precious")), expect="batch", rc=0,
      outputs=("out/a_dlpvc.nii.gz",))
    C("dir-34", "two folders as two --input", A("--input", "D", "--output", "o1", "--input", "E", "--output", "o2"),
      setup=seq(std("D/a.nii.gz"), std("E/b.nii.gz")), single=False)
    C("dir-36", "folder input, --output . (cwd)", A("--input", "D", "--output", ".", *rr), setup=std("D/a.nii.gz"),
      expect="batch", rc=0, outputs=("a_dlpvc.nii.gz",))
    C("dir-37", "folder with a mixed-case a.Nii.Gz (refused, the rest corrected)", A("--input", "D", "--output", "out", *rr),
      setup=seq(std("D/a.nii.gz"), std("D/b.nii.gz"), lambda fx: _rename(fx, "D/a.nii.gz", "D/a.Nii.Gz")),
      expect="batch", rc=2, outputs=("out/b_dlpvc.nii.gz",))
    C("dir-35", "folder with a DICOM series sub-folder holding a NIfTI file", A("--input", "D", "--output", "out", *rr),
      setup=lambda fx: (fx.nii("D/a.nii.gz"), fx.dicom("D/series"), fx.nii("D/series/x.nii.gz", seed=2)),
      expect="batch", rc=2, single=False, outputs=("out/a_dlpvc.nii.gz",), absent=("out/series_dlpvc",))

    # ---------------------------------------------------------------- pairs
    C("pair-01", "--input A --output B --input B --output C (B exists): B never overwritten",
      A("--input", "A.nii.gz", "--output", "B.nii.gz", "--input", "B.nii.gz", "--output", "C.nii.gz", *rr),
      setup=seq(std("A.nii.gz"), std("B.nii.gz", seed=1)), expect="batch", rc=2, single=False, outputs=("C.nii.gz",))
    C("pair-02", "--input A --output B --input B --output C (B does not exist)",
      A("--input", "A.nii.gz", "--output", "B.nii.gz", "--input", "B.nii.gz", "--output", "C.nii.gz", *rr),
      setup=std("A.nii.gz"), expect="batch", rc=2, single=False, absent=("B.nii.gz", "C.nii.gz"))
    C("pair-03", "the same --output twice", A("--input", "a.nii.gz", "--output", "o.nii.gz", "--input", "c.nii.gz",
                                              "--output", "o.nii.gz", *rr),
      setup=seq(std(), std("c.nii.gz", seed=1)), expect="batch", rc=2, single=False, absent=("o.nii.gz",))
    C("pair-04", "outputs x.nii.gz and x.nii (same sidecar x.json)", A("--input", "a.nii.gz", "--output", "x.nii.gz",
                                                                       "--input", "c.nii.gz", "--output", "x.nii", *rr),
      setup=seq(std(), std("c.nii.gz", seed=1)), expect="batch", rc=2, single=False, absent=("x.nii.gz", "x.nii"))
    C("pair-05", "A->B and C->A (A is an input)", A("--input", "A.nii.gz", "--output", "B.nii.gz", "--input", "C.nii.gz",
                                                    "--output", "A.nii.gz", "--overwrite", *rr),
      setup=seq(std("A.nii.gz"), std("C.nii.gz", seed=1)), expect="batch", rc=2, single=False, outputs=("B.nii.gz",))
    C("pair-06", "output c.nii where c.nii.gz (another input) has the sidecar c.json",
      A("--input", "a.nii.gz", "--output", "c.nii", "--input", "c.nii.gz", "--output", "d.nii.gz", *rr),
      setup=seq(std(), std("c.nii.gz", seed=1, sidecar={"ReconMethodName": "OSEM RR"})), expect="batch", rc=2,
      single=False, outputs=("d.nii.gz",), absent=("c.nii",))
    C("pair-07", "two pairs, one input missing", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--input", "no.nii.gz",
                                                   "--output", "d.nii.gz", *rr),
      setup=std(), expect="batch", rc=2, single=False, outputs=("b.nii.gz",), absent=("d.nii.gz",))
    C("pair-08", "three good pairs", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--input", "c.nii.gz", "--output",
                                       "d.nii.gz", "--input", "e.nii.gz", "--output", "f.nii.gz", *rr),
      setup=seq(std(), std("c.nii.gz", seed=1), std("e.nii.gz", seed=2)), expect="batch", rc=0,
      outputs=("b.nii.gz", "d.nii.gz", "f.nii.gz"))
    C("pair-09", "DICOM and NIfTI pairs", A("--input", "series", "--output", "out", "--input", "a.nii.gz", "--output",
                                            "b.nii.gz", *rr),
      setup=lambda fx: (fx.dicom("series"), fx.nii("a.nii.gz")), expect="batch", rc=0, outputs=("out", "b.nii.gz"))
    C("pair-10", "two pairs, one NaN image", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--input", "n.nii.gz",
                                               "--output", "m.nii.gz", *rr),
      setup=seq(std(), lambda fx: fx.nii("n.nii.gz", _set(phantom(), (2, 2, 2), np.nan))), expect="batch", rc=2,
      single=False, outputs=("b.nii.gz",), absent=("m.nii.gz",))
    C("pair-11", "two pairs, one output folder missing", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--input",
                                                           "c.nii.gz", "--output", "no/d.nii.gz", *rr),
      setup=seq(std(), std("c.nii.gz", seed=1)), expect="batch", rc=2, single=False, outputs=("b.nii.gz",))
    C("pair-12", "the same input twice to two outputs", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--input",
                                                          "a.nii.gz", "--output", "c.nii.gz", *rr),
      setup=std(), expect="batch", rc=0, outputs=("b.nii.gz", "c.nii.gz"))
    C("pair-13", "swap: a->b and b->a (b missing)", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--input",
                                                     "b.nii.gz", "--output", "a.nii.gz", "--overwrite"),
      setup=std(), expect="batch", rc=2, single=False, absent=("b.nii.gz",))
    C("pair-14", "output of pair 1 is the sidecar of pair 2's NIfTI output name? (b.nii.gz and b.json clash)",
      A("--input", "a.nii.gz", "--output", "b.nii.gz", "--input", "c.nii.gz", "--output", "b.nii", *rr),
      setup=seq(std(), std("c.nii.gz", seed=1)), expect="batch", rc=2, single=False, absent=("b.nii.gz", "b.nii"))
    C("pair-15", "two DICOM series to the same output folder", A("--input", "s1", "--output", "out", "--input", "s2",
                                                                "--output", "out", *rr),
      setup=lambda fx: (fx.dicom("s1"), fx.dicom("s2", seed=1)), expect="batch", rc=2, single=False, absent=("out",))
    C("pair-16", "pair 2's output inside pair 1's DICOM output folder", A("--input", "s1", "--output", "out",
                                                                         "--input", "a.nii.gz", "--output",
                                                                         "out/b.nii.gz", *rr),
      setup=lambda fx: (fx.dicom("s1"), fx.nii("a.nii.gz")), expect="batch", rc=2, single=False, outputs=("out",))
    C("pair-17", "pair 2's input is pair 1's DICOM output folder (not yet written)",
      A("--input", "s1", "--output", "out", "--input", "out", "--output", "b.nii.gz", *rr),
      setup=lambda fx: fx.dicom("s1"), expect="batch", rc=2, single=False, absent=("b.nii.gz", "out"))
    C("pair-18", "one good pair and one --output ''", A("--input", "a.nii.gz", "--output", "b.nii.gz", "--input",
                                                       "c.nii.gz", "--output", ""),
      setup=seq(std(), std("c.nii.gz", seed=1)))

    # ---------------------------------------------------------------- interrupts, pipes, closed streams
    many = seq(*[std(f"D/img{k:02d}.nii.gz", seed=k, shape=(40, 40, 40)) for k in range(10)])
    outs10 = tuple(f"out/img{k:02d}_dlpvc.nii.gz" for k in range(10))
    C("sig-01", "SIGTERM mid-batch (after the first output)", A("--input", "D", "--output", "out", *rr), setup=many,
      expect="interrupt", sig=signal.SIGTERM, trigger=("when", _exists_in("out", ".json", 1)), rc=143, outputs=outs10)
    C("sig-02", "SIGINT mid-batch (after the first output)", A("--input", "D", "--output", "out", *rr), setup=many,
      expect="interrupt", sig=signal.SIGINT, trigger=("when", _exists_in("out", ".json", 1)), rc=130, outputs=outs10)
    C("sig-03", "SIGTERM while a temporary is being written", A("--input", "D", "--output", "out", *rr), setup=many,
      expect="interrupt", sig=signal.SIGTERM, trigger=("when", _temp_in("out")), rc=143, outputs=outs10)
    C("sig-04", "SIGINT while a temporary is being written", A("--input", "D", "--output", "out", *rr), setup=many,
      expect="interrupt", sig=signal.SIGINT, trigger=("when", _temp_in("out")), rc=130, outputs=outs10)
    C("sig-05", "SIGTERM early (0.3 s, while starting)", A("--input", "D", "--output", "out", *rr), setup=many,
      expect="interrupt", sig=signal.SIGTERM, trigger=("delay", 0.3), rc=143, outputs=outs10)
    C("sig-06", "SIGINT early (0.3 s, Ctrl-C right after Enter)", A("--input", "D", "--output", "out", *rr), setup=many,
      expect="interrupt", sig=signal.SIGINT, trigger=("delay", 0.3), rc=130, outputs=outs10)
    for k, delay in enumerate((0.1, 0.2, 0.45, 0.6, 0.8)):
        C(f"sig-12{'abcde'[k]}", f"SIGINT at {delay:g} s (Ctrl-C during start-up)", A("--input", "D", "--output", "out", *rr),
          setup=many, expect="interrupt", sig=signal.SIGINT, trigger=("delay", delay), rc=130, outputs=outs10)
        C(f"sig-13{'abcde'[k]}", f"SIGTERM at {delay:g} s (during start-up)", A("--input", "D", "--output", "out", *rr),
          setup=many, expect="interrupt", sig=signal.SIGTERM, trigger=("delay", delay), rc=143, outputs=outs10)
    C("sig-07", "SIGTERM mid-batch with --summary", A("--input", "D", "--output", "out", "--summary", "s.jsonl", *rr),
      setup=many, expect="interrupt", sig=signal.SIGTERM, trigger=("when", _exists_in("out", ".json", 2)), rc=143,
      outputs=outs10, extra_new=("s.jsonl",))
    C("sig-08", "SIGTERM during a DICOM output (temporary folder)", A("--input", "D", "--output", "out", *rr),
      setup=lambda fx: [fx.dicom(f"D/s{k}", seed=k, shape=(40, 40, 40)) for k in range(4)],
      expect="interrupt", sig=signal.SIGTERM, trigger=("when", _temp_in("out")), rc=143,
      outputs=tuple(f"out/s{k}_dlpvc" for k in range(4)))
    C("sig-09", "SIGINT in pair mode (after the first output)", A("--input", "D/img00.nii.gz", "--output", "o0.nii.gz",
                                                                  "--input", "D/img01.nii.gz", "--output", "o1.nii.gz",
                                                                  "--input", "D/img02.nii.gz", "--output", "o2.nii.gz",
                                                                  "--input", "D/img03.nii.gz", "--output", "o3.nii.gz",
                                                                  *rr),
      setup=many, expect="interrupt", sig=signal.SIGINT, trigger=("when", _exists_in(".", ".json", 1)), rc=130,
      outputs=("o0.nii.gz", "o1.nii.gz", "o2.nii.gz", "o3.nii.gz"))
    C("sig-10", "SIGHUP mid-batch (terminal closed): no temporaries may remain",
      A("--input", "D", "--output", "out", *rr), setup=many, expect="interrupt", sig=signal.SIGHUP,
      trigger=("when", _exists_in("out", ".json", 1)), rc=129, ok_codes=(129,), outputs=outs10)
    C("sig-11", "SIGTERM during --overwrite of an existing output (old output must survive whole)",
      A("--input", "D", "--output", "out", "--overwrite", *rr),
      setup=seq(many, lambda fx: fx.pre(A("--input", "D", "--output", "out", *rr))), expect="interrupt",
      sig=signal.SIGTERM, trigger=("when", _temp_in("out")), rc=143, outputs=outs10,
      may_change=tuple(outs10) + tuple(_sidecar_of(o) for o in outs10))
    C("pipe-01", "batch piped to head -1 (all outputs still written)",
      shell="{dlpvc} apply --input D --output out --reconstruction RR | head -1", setup=many, expect="batch", rc=0,
      outputs=outs10)
    C("pipe-02", "batch 2>&1 | head -1", shell="{dlpvc} apply --input D --output out 2>&1 | head -1",
      setup=seq(*[std(f"D/img{k:02d}.nii.gz", seed=k) for k in range(4)]), expect="batch", rc=0,
      outputs=tuple(f"out/img{k:02d}_dlpvc.nii.gz" for k in range(4)))
    C("pipe-03", "batch | true (reader gone at once)",
      shell="{dlpvc} apply --input D --output out --reconstruction RR | true", setup=seq(*[std(f"D/img{k:02d}.nii.gz", seed=k) for k in range(4)]),
      expect="batch", rc=0, outputs=tuple(f"out/img{k:02d}_dlpvc.nii.gz" for k in range(4)))
    C("pipe-04", "stdout closed (1>&-)", shell="{dlpvc} apply --input D --output out --reconstruction RR 1>&-",
      setup=seq(*[std(f"D/img{k:02d}.nii.gz", seed=k) for k in range(3)]), expect="batch", rc=0,
      outputs=tuple(f"out/img{k:02d}_dlpvc.nii.gz" for k in range(3)))
    C("pipe-05", "stderr closed (2>&-), with warnings to print", shell="{dlpvc} apply --input D --output out 2>&-",
      setup=seq(*[std(f"D/img{k:02d}.nii.gz", seed=k) for k in range(3)]), expect="batch", rc=0,
      outputs=tuple(f"out/img{k:02d}_dlpvc.nii.gz" for k in range(3)))
    C("pipe-06", "stdout to /dev/full (ENOSPC on every print)",
      shell="{dlpvc} apply --input D --output out --reconstruction RR > /dev/full",
      setup=seq(*[std(f"D/img{k:02d}.nii.gz", seed=k) for k in range(3)]), expect="batch", rc=0,
      outputs=tuple(f"out/img{k:02d}_dlpvc.nii.gz" for k in range(3)))
    C("pipe-07", "refused call piped to head -1", shell="{dlpvc} apply --input missing.nii.gz --output b.nii.gz | head -1",
      expect="refuse")
    C("pipe-09", "single input with stderr closed (2>&-)", shell="{dlpvc} apply --input a.nii.gz --output b.nii.gz 2>&-",
      setup=std(), expect="ok", outputs=("b.nii.gz",))
    C("pipe-08", "stdin closed (0<&-)", shell="{dlpvc} apply --input a.nii.gz --output b.nii.gz --reconstruction RR 0<&-",
      setup=std(), expect="ok", outputs=("b.nii.gz",))

    # ---------------------------------------------------------------- dlpvc iy
    def iy_setup(image=None, labels=None, **kw):
        def run(fx):
            data = phantom() if image is None else image()
            fx.nii("a.nii.gz", data, **kw)
            lab = (phantom() > 0.3).astype(np.int16) if labels is None else labels()
            import nibabel as nib

            aff = diag_affine(kw.get("vox", VOX), np.shape(lab)) if kw.get("affine") is None else kw["affine"]
            li = nib.Nifti1Image(lab, aff)
            li.header.set_xyzt_units(kw.get("units", "mm"), "sec")
            nib.save(li, str(fx.p("l.nii.gz")))
        return run

    iy = ["iy", "--input", "a.nii.gz", "--labels", "l.nii.gz"]
    iy_ok = dict(setup=iy_setup(), expect="ok", outputs=("o.nii.gz",))
    C("iy-01", "iy basic", [*iy, "--fwhm-mm", "10", "--output", "o.nii.gz"], **iy_ok)
    C("iy-02", "iy all-negative image", [*iy, "--fwhm-mm", "10", "--output", "o.nii.gz"],
      setup=iy_setup(image=lambda: -phantom()))
    C("iy-03", "iy all-zero image", [*iy, "--fwhm-mm", "10", "--output", "o.nii.gz"],
      setup=iy_setup(image=lambda: np.zeros((32, 32, 32), np.float32)))
    C("iy-04", "iy NaN image", [*iy, "--fwhm-mm", "10", "--output", "o.nii.gz"],
      setup=iy_setup(image=lambda: _set(phantom(), (1, 1, 1), np.nan)))
    C("iy-05", "iy labels on another grid", [*iy, "--fwhm-mm", "10", "--output", "o.nii.gz"],
      setup=iy_setup(labels=lambda: np.zeros((30, 32, 32), np.int16)))
    C("iy-06", "iy labels not whole numbers", [*iy, "--fwhm-mm", "10", "--output", "o.nii.gz"],
      setup=iy_setup(labels=lambda: phantom()))
    C("iy-07", "iy negative labels", [*iy, "--fwhm-mm", "10", "--output", "o.nii.gz"],
      setup=iy_setup(labels=lambda: -(phantom() > 0.3).astype(np.int16)))
    C("iy-08", "iy labels only background: warned", [*iy, "--fwhm-mm", "10", "--output", "o.nii.gz"],
      setup=iy_setup(labels=lambda: np.zeros((32, 32, 32), np.int16)), expect="ok", outputs=("o.nii.gz",),
      warn=("only the background",))
    C("iy-09", "iy --fwhm-mm -1", [*iy, "--fwhm-mm", "-1", "--output", "o.nii.gz"], setup=iy_setup())
    C("iy-10", "iy --fwhm-mm nan", [*iy, "--fwhm-mm", "nan", "--output", "o.nii.gz"], setup=iy_setup())
    C("iy-11", "iy --fwhm-mm inf", [*iy, "--fwhm-mm", "inf", "--output", "o.nii.gz"], setup=iy_setup())
    C("iy-12", "iy --fwhm-mm abc", [*iy, "--fwhm-mm", "abc", "--output", "o.nii.gz"], setup=iy_setup())
    C("iy-13", "iy --fwhm-mm with two values", [*iy, "--fwhm-mm", "10", "10", "--output", "o.nii.gz"], setup=iy_setup())
    C("iy-14", "iy --fwhm-mm with three values", [*iy, "--fwhm-mm", "10", "10", "12", "--output", "o.nii.gz"], **iy_ok)
    C("iy-15", "iy --fwhm-mm 0: warned", [*iy, "--fwhm-mm", "0", "--output", "o.nii.gz"], **iy_ok, warn=("FWHM of 0",))
    C("iy-16", "iy --iterations 0", [*iy, "--fwhm-mm", "10", "--iterations", "0", "--output", "o.nii.gz"],
      setup=iy_setup())
    C("iy-17", "iy --iterations -1", [*iy, "--fwhm-mm", "10", "--iterations", "-1", "--output", "o.nii.gz"],
      setup=iy_setup())
    C("iy-18", "iy --iterations 1.5", [*iy, "--fwhm-mm", "10", "--iterations", "1.5", "--output", "o.nii.gz"],
      setup=iy_setup())
    C("iy-19", "iy --iterations 100000", [*iy, "--fwhm-mm", "10", "--iterations", "100000", "--output", "o.nii.gz"],
      setup=iy_setup())
    C("iy-20", "iy output is the input", [*iy, "--fwhm-mm", "10", "--output", "a.nii.gz"], setup=iy_setup())
    C("iy-21", "iy output is the input, --overwrite", [*iy, "--fwhm-mm", "10", "--output", "a.nii.gz", "--overwrite"],
      setup=iy_setup())
    C("iy-22", "iy output is the labels, --overwrite", [*iy, "--fwhm-mm", "10", "--output", "l.nii.gz", "--overwrite"],
      setup=iy_setup())
    C("iy-23", "iy output exists", [*iy, "--fwhm-mm", "10", "--output", "o.nii.gz"],
      setup=seq(iy_setup(), std("o.nii.gz", seed=4)))
    C("iy-24", "iy output exists, --overwrite", [*iy, "--fwhm-mm", "10", "--output", "o.nii.gz", "--overwrite"],
      setup=seq(iy_setup(), std("o.nii.gz", seed=4)), expect="ok", outputs=("o.nii.gz",), may_change=("o.nii.gz",))
    C("iy-25", "iy output symlink to the input, --overwrite", [*iy, "--fwhm-mm", "10", "--output", "o.nii.gz",
                                                              "--overwrite"],
      setup=seq(iy_setup(), lambda fx: os.symlink("a.nii.gz", fx.p("o.nii.gz"))))
    C("iy-26", "iy output hard link of the input, --overwrite", [*iy, "--fwhm-mm", "10", "--output", "o.nii.gz",
                                                                "--overwrite"],
      setup=seq(iy_setup(), lambda fx: os.link(fx.p("a.nii.gz"), fx.p("o.nii.gz"))))
    C("iy-27", "iy output in a missing folder", [*iy, "--fwhm-mm", "10", "--output", "no/o.nii.gz"], setup=iy_setup())
    C("iy-28", "iy output .txt", [*iy, "--fwhm-mm", "10", "--output", "o.txt"], setup=iy_setup())
    C("iy-29", "iy missing input", ["iy", "--input", "no.nii.gz", "--labels", "l.nii.gz", "--fwhm-mm", "10",
                                    "--output", "o.nii.gz"], setup=iy_setup())
    C("iy-30", "iy empty input file", [*iy, "--fwhm-mm", "10", "--output", "o.nii.gz"],
      setup=seq(iy_setup(), lambda fx: fx.text("a.nii.gz", b"")))
    C("iy-31", "iy 4-D input", [*iy, "--fwhm-mm", "10", "--output", "o.nii.gz"],
      setup=seq(iy_setup(), std(shape=(32, 32, 32, 2))))
    C("iy-32", "iy --input ''", ["iy", "--input", "", "--labels", "l.nii.gz", "--fwhm-mm", "10", "--output", "o.nii.gz"],
      setup=iy_setup())
    C("iy-33", "iy .nii output", [*iy, "--fwhm-mm", "10", "--output", "o.nii"], setup=iy_setup(), expect="ok",
      outputs=("o.nii",))
    C("iy-34", "iy voxel size in metres (0.0048)", [*iy, "--fwhm-mm", "10", "--output", "o.nii.gz"],
      setup=iy_setup(affine=diag_affine(0.0048)), timeout=120)
    C("iy-35", "iy output ''", [*iy, "--fwhm-mm", "10", "--output", ""], setup=iy_setup())
    C("iy-36", "iy output is an existing folder named o.nii.gz", [*iy, "--fwhm-mm", "10", "--output", "o.nii.gz"],
      setup=seq(iy_setup(), lambda fx: fx.text("o.nii.gz/keep", "x")))
    C("iy-37", "iy labels file missing", ["iy", "--input", "a.nii.gz", "--labels", "no.nii.gz", "--fwhm-mm", "10",
                                          "--output", "o.nii.gz"], setup=iy_setup())
    C("iy-38", "iy labels are the input image (float, not whole numbers)", ["iy", "--input", "a.nii.gz", "--labels",
                                                                           "a.nii.gz", "--fwhm-mm", "10", "--output",
                                                                           "o.nii.gz"], setup=iy_setup())
    C("iy-39", "iy without --fwhm-mm", [*iy, "--output", "o.nii.gz"], setup=iy_setup())
    C("iy-40", "iy --fwhm-mm 2000", [*iy, "--fwhm-mm", "2000", "--output", "o.nii.gz"], setup=iy_setup())
    C("iy-41", "iy Bq/mL stored as MBq/mL (total ~4e8 MBq)", [*iy, "--fwhm-mm", "10", "--output", "o.nii.gz"],
      setup=iy_setup(image=lambda: phantom() * 1e6), expect="either", outputs=("o.nii.gz",))
    C("iy-42", "iy upper-case output O.NII.GZ", [*iy, "--fwhm-mm", "10", "--output", "O.NII.GZ"], setup=iy_setup(),
      expect="ok", outputs=("O.NII.GZ",))
    C("iy-43", "iy output is the labels, no --overwrite", [*iy, "--fwhm-mm", "10", "--output", "l.nii.gz"],
      setup=iy_setup())
    C("iy-44", "iy 8 voxels along an axis", [*iy, "--fwhm-mm", "10", "--output", "o.nii.gz"],
      setup=iy_setup(image=lambda: phantom((32, 32, 8)), labels=lambda: (phantom((32, 32, 8)) > 0.3).astype(np.int16)),
      expect="either", outputs=("o.nii.gz",))
    C("iy-45", "iy output via '..' onto the input, --overwrite", [*iy, "--fwhm-mm", "10", "--output", "sub/../a.nii.gz",
                                                                 "--overwrite"],
      setup=seq(iy_setup(), lambda fx: fx.mkdir("sub")))
    C("iy-47", "iy mixed-case output o.Nii", [*iy, "--fwhm-mm", "10", "--output", "o.Nii"], setup=iy_setup(),
      expect="either", outputs=("o.Nii",))
    C("iy-46", "iy SIGTERM early", [*iy, "--fwhm-mm", "10", "--iterations", "10000", "--output", "o.nii.gz"],
      setup=iy_setup(), expect="interrupt", sig=signal.SIGTERM, trigger=("delay", 2.0), rc=143, outputs=("o.nii.gz",))

    # ---------------------------------------------------------------- dlpvc models
    C("mod-01", "models", ["models"], expect="exit0")
    C("mod-02", "models --json", ["models", "--json"], expect="exit0", check=_json_stdout)
    C("mod-03", "models --model missing", ["models", "--model", "no.pt"])
    C("mod-04", "models --model a text file", ["models", "--model", "m/model.pt"],
      setup=lambda fx: fx.text("m/model.pt", "not a model"))
    C("mod-05", "models --model a folder", ["models", "--model", "m"], setup=lambda fx: fx.mkdir("m"))
    C("mod-06", "models --model ''", ["models", "--model", ""])
    C("mod-07", "models with a positional argument", ["models", "dlpvc_shipped"])
    C("mod-08", "models --model the shipped model", ["models", "--model", str(SHIPPED)], expect="exit0")
    C("mod-09", "models --json --model a NIfTI image", ["models", "--json", "--model", "a.nii.gz"], setup=std())

    return list(CASES)


# ---------------------------------------------------------------- small fixture helpers

def _set(arr, idx, value):
    arr = np.array(arr, dtype=np.float32)
    arr[idx] = value
    return arr


def _noisy(arr, sigma):
    rng = np.random.default_rng(7)
    return (arr + rng.normal(0, sigma, arr.shape) * float(arr.max())).astype(np.float32)


def _denormal(arr):
    arr = np.array(arr, np.float32)
    arr[arr < 0.005] = np.float32(1e-40)
    arr[0, 0, 0] = np.float32(-0.0)
    return arr


def _sphere(n, radius, value):
    idx = np.indices((n, n, n)) - (n - 1) / 2
    return np.where((idx ** 2).sum(0) <= radius ** 2, value, 0.0).astype(np.float32)


def _oblique(deg_z, deg_x):
    aff = np.eye(4)
    aff[:3, :3] = rotation(deg_x, 0, deg_z) * VOX
    aff[:3, 3] = -aff[:3, :3] @ np.full(3, 15.5)
    return aff


def _permuted():
    aff = np.zeros((4, 4))
    aff[0, 1] = VOX
    aff[1, 2] = -VOX
    aff[2, 0] = VOX
    aff[3, 3] = 1
    return aff


def _sheared():
    aff = np.diag([VOX, VOX, VOX, 1.0])
    aff[0, 1] = 1.0
    return aff


def _translated(t):
    aff = np.diag([VOX, VOX, VOX, 1.0])
    aff[:3, 3] = t
    return aff


def _analyze(fx, rel):
    import nibabel as nib

    img = nib.AnalyzeImage(phantom(), np.diag([VOX, VOX, VOX, 1.0]))
    nib.save(img, str(fx.p(rel)))


def _nifti2(fx):
    import nibabel as nib

    img = nib.Nifti2Image(phantom(), diag_affine())
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, str(fx.p("a.nii.gz")))
    fx._record("a.nii.gz")


def _rename(fx, src, dst):
    os.rename(fx.p(src), fx.p(dst))
    for table in (fx.totals, fx.affines):
        if os.path.normpath(src) in table:
            table[os.path.normpath(dst)] = table.pop(os.path.normpath(src))


def _singular(fx, rel):
    """A NIfTI whose sform has a zero column (voxel size 0 along axis 2) and no qform."""
    import nibabel as nib

    img = nib.Nifti1Image(phantom(), None)
    img.set_sform(np.diag([VOX, VOX, 0.0, 1.0]), code=1)
    img.set_qform(None, code=0)
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, str(fx.p(rel)))


def _bigendian(fx, rel):
    import nibabel as nib

    hdr = nib.Nifti1Header(endianness=">")
    img = nib.Nifti1Image(phantom(), diag_affine(), hdr)
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, str(fx.p(rel)))
    fx._record(rel)


def _rgb_nifti(fx):
    import nibabel as nib

    rgb = np.zeros((32, 32, 32), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    img = nib.Nifti1Image(rgb, diag_affine())
    nib.save(img, str(fx.p("a.nii.gz")))


def _torch_save_dict(fx, rel):
    import torch

    fx.p(rel).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"weights": [1, 2, 3]}, fx.p(rel))


def _truncate_one(folder: Path):
    f = sorted(folder.iterdir())[5]
    f.write_bytes(f.read_bytes()[:600])


def _remove_middle(folder: Path):
    import pydicom

    files = sorted(folder.iterdir(), key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True)
                                                          .ImagePositionPatient[2]))
    files[len(files) // 2].unlink()


# ------------------------------------------------------------------------------------------ running

def snapshot(d: Path) -> dict[str, tuple]:
    """Every entry under ``d`` (hidden ones too): rel path -> ("f", sha256) / ("l", target) / ("d",) / ("o", mode)."""
    out: dict[str, tuple] = {}
    for base, dirs, files in os.walk(d, followlinks=False):
        for name in dirs + files:
            p = Path(base) / name
            rel = os.path.relpath(p, d)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            import stat as _stat

            if _stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", os.readlink(p))
            elif _stat.S_ISDIR(st.st_mode):
                out[rel] = ("d",)
            elif _stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                try:
                    with open(p, "rb") as fh:
                        for block in iter(lambda: fh.read(1 << 20), b""):
                            h.update(block)
                    out[rel] = ("f", h.hexdigest())
                except OSError as err:
                    out[rel] = ("f", f"unreadable: {err}")
            else:
                out[rel] = ("o", st.st_mode)
    return out


def _under(rel: str, prefixes) -> bool:
    rel = os.path.normpath(rel)
    for p in prefixes:
        p = os.path.normpath(p)
        if rel == p or rel.startswith(p + os.sep):
            return True
    return False


def _parents(rel: str) -> list[str]:
    out = []
    p = Path(os.path.normpath(rel)).parent
    while str(p) not in ("", "."):
        out.append(str(p))
        p = p.parent
    return out


def _is_nifti_name(name: str) -> bool:
    return name.lower().endswith((".nii", ".nii.gz"))


def check_output(fx: Fx, cwd: Path, rel: str) -> list[str]:
    """What is wrong with output ``rel`` (relative to the scratch folder): existence, sidecar, totals, geometry."""
    import nibabel as nib

    out = fx.p(rel)
    probs: list[str] = []
    nifti = _is_nifti_name(rel)
    if fx.info.get("command") == "iy":
        return _check_iy_output(fx, rel)
    side = fx.p(_sidecar_of(rel))
    if not (out.is_file() if nifti else out.is_dir()):
        return [f"output {rel} missing"]
    if not side.is_file():
        return [f"sidecar {_sidecar_of(rel)} of {rel} missing"]
    try:
        meta = json.loads(side.read_text())
    except ValueError as err:
        return [f"sidecar {_sidecar_of(rel)} not JSON: {err}"]
    if meta.get("format") != "dlpvc-apply" and not rel.startswith("o."):
        probs.append(f"sidecar {_sidecar_of(rel)} format {meta.get('format')!r}")
    tin, tout = meta.get("input_total_mbq"), meta.get("output_total_mbq")
    if not isinstance(tin, (int, float)) or not isinstance(tout, (int, float)):
        probs.append(f"sidecar lacks totals ({tin!r}, {tout!r})")
        return probs
    if abs(tout - tin) > 1e-4 * abs(tin):
        probs.append(f"output total {tout:.6g} MBq differs from input total {tin:.6g} MBq "
                     f"by {100 * (tout - tin) / tin:.3g} %")
    src_rel = os.path.normpath(os.path.relpath(os.path.normpath(cwd / str(meta.get("input", ""))), fx.d))
    truth = fx.totals.get(src_rel)
    if truth is not None and abs(tin - truth) > 2e-3 * truth:
        probs.append(f"sidecar input total {tin:.6g} MBq but the input holds {truth:.6g} MBq")
    if nifti:
        try:
            img = nib.load(str(out))
            data = np.asarray(img.dataobj, dtype=np.float64)
            aff = np.array(img.affine, float) * np.array([[_UNIT_TO_MM.get(img.header.get_xyzt_units()[0], 1.0)]
                                                          * 4] * 3 + [[1.0] * 4])
        except Exception as err:  # noqa: BLE001
            return probs + [f"output {rel} unreadable: {type(err).__name__}: {err}"]
        if not np.all(np.isfinite(data)):
            probs.append(f"output {rel} holds NaN/inf")
        voxvol = abs(float(np.linalg.det(aff[:3, :3]))) / 1000.0
        file_total = float(data.sum()) * voxvol
        if abs(file_total - tout) > 1e-3 * abs(tout):
            probs.append(f"output file total {file_total:.6g} MBq, sidecar says {tout:.6g} MBq")
        if list(data.shape[:3]) != list(meta.get("input_shape") or data.shape[:3]):
            probs.append(f"output shape {data.shape} differs from the input's {meta.get('input_shape')}")
        ref = fx.affines.get(src_rel)
        if ref is not None and not np.allclose(aff, ref, atol=1e-3, rtol=1e-5):
            probs.append(f"output affine differs from the input's: {np.round(aff, 4).tolist()} vs "
                         f"{np.round(ref, 4).tolist()}")
    else:
        try:
            from pvc_core.io.dicom import read_spect_dicom

            series = read_spect_dicom(out)
            vv = float(np.prod(series.image.voxel_size_mm)) / 1000.0
            file_total = float(series.image.data.sum(dtype=np.float64)) * vv
            if abs(file_total - tout) > 2e-3 * abs(tout):
                probs.append(f"DICOM output total {file_total:.6g} MBq, sidecar says {tout:.6g} MBq")
        except Exception as err:  # noqa: BLE001
            probs.append(f"DICOM output {rel} unreadable: {type(err).__name__}: {err}")
    return probs


def _check_iy_output(fx: Fx, rel: str) -> list[str]:
    """An iy output (no sidecar): readable, finite, on the input's grid."""
    import nibabel as nib

    out = fx.p(rel)
    if not out.is_file():
        return [f"output {rel} missing"]
    try:
        img = nib.load(str(out))
        data = np.asarray(img.dataobj, dtype=np.float64)
    except Exception as err:  # noqa: BLE001
        return [f"output {rel} unreadable: {type(err).__name__}: {err}"]
    probs = []
    if not np.all(np.isfinite(data)):
        probs.append(f"output {rel} holds NaN/inf")
    ref = fx.affines.get("a.nii.gz")
    if ref is not None and not np.allclose(img.affine, ref, atol=1e-3, rtol=1e-5):
        probs.append("output affine differs from the input's")
    return probs


@dataclass
class Result:
    id: str
    desc: str
    argv: list
    expect: str
    rc: int | None
    cls: str
    flags: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    stderr: str = ""
    stdout: str = ""
    seconds: float = 0.0
    note: str = ""


def _stderr_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _prefix_of(args: list[str]) -> str:
    if args and args[0] in ("apply", "iy", "models", "evaluate", "simulate", "plan"):
        return f"dlpvc {args[0]}: "
    return "dlpvc: "


def _judge_refusal(case: Case, stderr: str, prefix: str) -> list[str]:
    lines = _stderr_lines(stderr)
    probs = []
    bad = [x for x in lines if not x.startswith(prefix)]
    if bad:
        probs.append(f"stderr line(s) without the prefix {prefix!r}: {bad[:2]}")
    refusal = [x for x in lines if x.startswith(prefix) and not x[len(prefix):].startswith(("WARNING:", "note:"))]
    if not refusal:
        probs.append("no refusal line on stderr")
    elif case.single and len(refusal) != 1:
        probs.append(f"{len(refusal)} refusal lines, expected one")
    if case.mention and not any(case.mention.lower() in x.lower() for x in refusal):
        probs.append(f"refusal does not mention {case.mention!r}")
    return probs


def _warning_problems(case: Case, stderr: str, prefix: str) -> tuple[list[str], list[str]]:
    """(silently wrong problems: missing warnings, unexpected warnings; other: unprefixed lines)."""
    lines = _stderr_lines(stderr)
    warnings = [x for x in lines if x.startswith(prefix + "WARNING:")]
    silent, other = [], []
    for w in case.warn:
        if not any(w.lower() in x.lower() for x in warnings):
            silent.append(f"expected WARNING containing {w!r} is missing")
    if case.no_warning and warnings:
        silent.append(f"unexpected warning: {warnings[0][:200]}")
    bad = [x for x in lines if not x.startswith(prefix) and not x.startswith("dlpvc ")]
    if bad:
        other.append(f"stderr line(s) without the prefix: {bad[:2]}")
    return silent, other


def run_case(case: Case, root: Path, py: str, env: dict) -> Result:
    d = root / case.id
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    fx = Fx(d, py, env)
    args_shown: list = []
    res = Result(case.id, case.desc, [], case.expect, None, OTHER)
    if case.skip:
        res.cls, res.note = SKIPPED, case.skip
        return res
    try:
        if case.setup is not None:
            case.setup(fx)
        args = case.args(fx) if callable(case.args) else list(case.args or [])
    except Exception as err:  # noqa: BLE001 - a fixture that could not be built
        res.problems = [f"{type(err).__name__}: {err}"]
        res.cls = OTHER
        res.note = "setup failed"
        return res
    cwd = d / case.cwd if case.cwd else d
    fx.info["command"] = args[0] if args else ""
    run_env = dict(env)
    if case.env:
        run_env.update(case.env)
    prefix = _prefix_of(args if not case.shell else ["apply"] if "apply" in str(case.shell) else ["iy"])
    before = snapshot(d)
    t0 = time.perf_counter()
    stdout = stderr = ""
    rc = None
    killed_by = None
    timed_out = False
    if case.shell:
        rcfile = root / f".rc-{case.id}"
        dlpvc = f"{py} -m pvc_core"
        command = case.shell.format(dlpvc=dlpvc)
        args_shown = ["bash", "-c", command]
        script = f"{command}; echo ${{PIPESTATUS[0]}} > {rcfile}"
        try:
            proc = subprocess.run(["bash", "-c", script], cwd=cwd, env=run_env, capture_output=True, text=True,
                                  timeout=case.timeout)
            stdout, stderr = proc.stdout, proc.stderr
            rc = int(rcfile.read_text().strip()) if rcfile.exists() else None
        except subprocess.TimeoutExpired as err:
            timed_out = True
            stdout, stderr = _text(err.stdout), _text(err.stderr)
    elif case.expect == "interrupt":
        argv = [py, "-m", "pvc_core", *args]
        args_shown = argv
        with tempfile.TemporaryFile("w+") as fo, tempfile.TemporaryFile("w+") as fe:
            p = subprocess.Popen(argv, cwd=cwd, env=run_env, stdout=fo, stderr=fe, text=True)
            kind, what = case.trigger
            fired = False
            if kind == "delay":
                time.sleep(what)
                fired = p.poll() is None
            else:
                limit = time.perf_counter() + 120
                while p.poll() is None and time.perf_counter() < limit:
                    if what(d):
                        fired = True
                        break
                    time.sleep(0.002)
            if fired:
                p.send_signal(case.sig)
            else:
                res.note = "the process finished before the signal could be sent"
            try:
                p.wait(timeout=case.timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                timed_out = True
            rc = p.returncode
            fo.seek(0)
            fe.seek(0)
            stdout, stderr = fo.read(), fe.read()
    else:
        argv = [py, "-m", "pvc_core", *args]
        args_shown = argv
        try:
            proc = subprocess.run(argv, cwd=cwd, env=run_env, capture_output=True, text=True, timeout=case.timeout,
                                  stdin=subprocess.DEVNULL)
            rc, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as err:
            timed_out = True
            stdout, stderr = _text(err.stdout), _text(err.stderr)
    res.seconds = time.perf_counter() - t0
    if rc is not None and rc < 0:
        killed_by = -rc
        rc = 128 - rc
    after = snapshot(d)
    res.argv = [str(a) for a in (args_shown[2:] if args_shown[:1] == [py] else args_shown)]
    res.rc, res.stdout, res.stderr = rc, stdout, stderr
    if killed_by:
        res.note = (res.note + "; " if res.note else "") + f"killed by signal {killed_by} (default action)"
    _classify(case, fx, cwd, res, before, after, prefix, timed_out)
    res.stdout, res.stderr = res.stdout[-3000:], res.stderr[-4000:]
    _restore_permissions(d)
    return res


def _text(x) -> str:
    if x is None:
        return ""
    return x.decode(errors="replace") if isinstance(x, bytes) else x


def _restore_permissions(d: Path) -> None:
    for base, dirs, _ in os.walk(d):
        for name in dirs:
            try:
                os.chmod(Path(base) / name, 0o755)
            except OSError:
                pass


def _classify(case: Case, fx: Fx, cwd: Path, res: Result, before: dict, after: dict, prefix: str,
              timed_out: bool) -> None:
    flags: list[str] = []
    silent: list[str] = []
    other: list[str] = []
    rc = res.rc
    stderr = res.stderr

    # traceback
    allowed_rc = {0, 1, 2, 130, 143, *case.ok_codes}
    if "Traceback (most recent call last)" in stderr or (rc is not None and rc not in allowed_rc):
        flags.append(TRACEBACK)
    # input modified
    may = list(case.may_change)
    modified = [p for p, v in before.items() if not _under(p, may) and after.get(p) != v]
    if modified:
        flags.append(INPUT_MODIFIED)
        other_text = ", ".join(f"{p} ({'vanished' if p not in after else 'changed'})" for p in modified[:6])
        res.problems.append(f"pre-existing files changed: {other_text}")
    new = sorted(set(after) - set(before))
    temps = [p for p in new if any(part.startswith(TMP_MARK) for part in Path(p).parts)]
    if temps:
        flags.append(PARTIAL)
        res.problems.append(f"temporaries left: {temps[:4]}")

    # what may be new
    expected_outputs = [os.path.normpath(o) for o in case.outputs]
    allowed_new = set(os.path.normpath(x) for x in case.extra_new)
    for o in expected_outputs:
        allowed_new.add(o)
        allowed_new.add(os.path.normpath(_sidecar_of(o)))
        allowed_new.update(_parents(o))
    for x in case.extra_new:
        allowed_new.update(_parents(x))

    trees = [o for o in expected_outputs if not _is_nifti_name(o)]  # DICOM output folders

    def stray(new_entries, allowed):
        out = []
        for p in new_entries:
            if p in temps:
                continue
            if p in allowed or (allowed and _under(p, trees)):
                continue
            out.append(p)
        return out

    expect = case.expect
    if expect == "either":
        expect = "ok" if rc == 0 else "refuse"
    if timed_out:
        other.append(f"timed out after {case.timeout:.0f} s")
    elif expect in ("refuse", "fail_or_refuse"):
        want = (1, 2) if expect == "fail_or_refuse" else (2,)
        if rc == 0:
            silent.append("exit 0: accepted what should be refused")
        elif rc in want:
            other.extend(_judge_refusal(case, stderr, prefix))
        elif rc == 1:
            other.append("exit 1 (failed) where a refusal (exit 2) was expected")
            other.extend(p for p in _judge_refusal(case, stderr, prefix) if "refusal lines" not in p)
        else:
            other.append(f"exit {rc}, expected a refusal (2)")
        s = stray(new, set(os.path.normpath(x) for x in case.extra_new) | {q for x in case.extra_new for q in _parents(x)})
        if s:
            flags.append(PARTIAL) if PARTIAL not in flags else None
            res.problems.append(f"new files after a refusal: {s[:6]}")
    elif expect in ("ok", "batch"):
        want_rc = 0 if expect == "ok" else case.rc
        if rc == want_rc:
            for o in expected_outputs:
                silent.extend(check_output(fx, cwd, o))
            for o in case.absent:
                if (fx.p(o)).exists():
                    silent.append(f"{o} written although its input should be refused")
            if rc == 0:
                s_w, o_w = _warning_problems(case, stderr, prefix)
                silent.extend(s_w)
                other.extend(o_w)
            else:
                other.extend(p for p in _judge_refusal(case, stderr, prefix) if "mention" not in p)
            s = stray(new, allowed_new)
            if s:
                flags.append(PARTIAL) if PARTIAL not in flags else None
                res.problems.append(f"unexpected new files: {s[:6]}")
            if case.check is not None:
                silent.extend(case.check(fx, {"stdout": res.stdout, "stderr": stderr, "rc": rc}))
        else:
            if rc == 0 and want_rc == 2:
                silent.append("exit 0 where some input should have been refused")
                for o in case.absent:
                    if fx.p(o).exists():
                        silent.append(f"{o} written although its input should be refused")
            else:
                other.append(f"exit {rc}, expected {want_rc}" + (" (refused where success was right)" if rc == 2 else ""))
            # whatever was written must at least be whole
            s = stray(new, allowed_new if expect == "batch" else set())
            if s and (rc != 0):
                flags.append(PARTIAL) if PARTIAL not in flags else None
                res.problems.append(f"new files after exit {rc}: {s[:6]}")
    elif expect == "interrupt":
        if res.note.startswith("the process finished"):
            other.append("not interrupted: finished before the signal")
        elif rc != case.rc:
            other.append(f"exit {rc}, expected {case.rc}")
        # every output present must be whole, with its sidecar
        for o in expected_outputs:
            present = fx.p(o).exists()
            side = fx.p(_sidecar_of(o)).exists()
            if present != side:
                flags.append(PARTIAL) if PARTIAL not in flags else None
                res.problems.append(f"{o}: {'output without sidecar' if present else 'sidecar without output'}")
            elif present:
                bad = check_output(fx, cwd, o)
                if bad:
                    silent.extend(bad)
        s = stray(new, allowed_new)
        if s:
            flags.append(PARTIAL) if PARTIAL not in flags else None
            res.problems.append(f"unexpected new files: {s[:6]}")
    elif expect == "exit0":
        if rc != 0:
            other.append(f"exit {rc}, expected 0")
        s = stray(new, set())
        if s:
            flags.append(PARTIAL) if PARTIAL not in flags else None
            res.problems.append(f"new files: {s[:6]}")
        if case.check is not None and rc == 0:
            silent.extend(case.check(fx, {"stdout": res.stdout, "stderr": stderr, "rc": rc}))
    if case.max_seconds is not None and res.seconds > case.max_seconds:
        other.append(f"took {res.seconds:.2f} s (> {case.max_seconds:g} s)")

    if silent:
        flags.append(SILENT)
        res.problems.extend(silent)
    res.problems.extend(other)
    res.flags = flags
    for cls in (TRACEBACK, INPUT_MODIFIED, PARTIAL, SILENT):
        if cls in flags:
            res.cls = cls
            return
    if other:
        res.cls = OTHER
        return
    res.cls = REFUSED_OK if rc == 2 else ACCEPTED


def time_refused(py: str, env: dict, repeats: int, root: Path) -> dict:
    d = root / "timing"
    d.mkdir(parents=True, exist_ok=True)
    out = {}
    for label, argv in (("python -m pvc_core", [py, "-m", "pvc_core"]),
                        ("dlpvc entry point", [str(Path(py).parent / "dlpvc")])):
        if label == "dlpvc entry point" and not Path(argv[0]).exists():
            continue
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            proc = subprocess.run([*argv, "apply", "--input", "missing.nii.gz", "--output", "b.nii.gz"], cwd=d, env=env,
                                  capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
            assert proc.returncode == 2, proc.stderr
        out[label] = {"median_s": statistics.median(times), "all_s": [round(t, 3) for t in times]}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", metavar="FILE", help="write the per-call results (and the totals) as JSON")
    ap.add_argument("--only", action="append", help="run only cases whose id contains this (repeatable)")
    ap.add_argument("--workdir", help="scratch root (default: a new folder under /tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folders")
    ap.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python"), help="the interpreter with dlpvc")
    ap.add_argument("--time-repeats", type=int, default=5, help="repeats of the timed refused call (0: skip)")
    opts = ap.parse_args(argv)
    import warnings

    warnings.filterwarnings("ignore")  # fixtures write odd files on purpose; the harness' own warnings are noise

    py = opts.python if Path(opts.python).exists() else sys.executable
    env = {k: v for k, v in os.environ.items() if k not in ("DLPVC_DEBUG", "DLPVC_MODEL_DIR")}
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
    root = Path(opts.workdir) if opts.workdir else Path(tempfile.mkdtemp(prefix="dlpvc_awkward_"))
    root.mkdir(parents=True, exist_ok=True)
    cuda = _cuda_available(py, env)
    cases = build_catalogue(cuda, os.geteuid() == 0)
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    if opts.only:
        cases = [c for c in cases if any(s in c.id for s in opts.only)]
    print(f"{len(cases)} calls, scratch {root}, {'GPU' if cuda else 'no GPU'}", flush=True)
    results = []
    width = max(len(c.desc) for c in cases) if cases else 10
    width = min(width, 70)
    print(f"{'id':<9} {'description':<{width}} {'exit':>4}  class", flush=True)
    for case in cases:
        res = run_case(case, root, py, env)
        results.append(res)
        extra = f"  [{', '.join(f for f in res.flags if f != res.cls)}]" if len(res.flags) > 1 else ""
        print(f"{res.id:<9} {res.desc[:width]:<{width}} {'-' if res.rc is None else res.rc:>4}  {res.cls}{extra}",
              flush=True)
        if not opts.keep and res.cls in (REFUSED_OK, ACCEPTED, SKIPPED):
            shutil.rmtree(root / case.id, ignore_errors=True)

    counted = [r for r in results if r.cls != SKIPPED]
    totals = {
        REFUSED_OK: sum(r.cls == REFUSED_OK for r in counted),
        ACCEPTED: sum(r.cls == ACCEPTED for r in counted),
        TRACEBACK: sum(TRACEBACK in r.flags for r in counted),
        SILENT: sum(SILENT in r.flags for r in counted),
        PARTIAL: sum(PARTIAL in r.flags for r in counted),
        INPUT_MODIFIED: sum(INPUT_MODIFIED in r.flags for r in counted),
        OTHER: sum(r.cls == OTHER for r in counted),
        SKIPPED: sum(r.cls == SKIPPED for r in results),
    }
    print(f"\ntotals over {len(counted)} calls ({totals[SKIPPED]} skipped):")
    for k in TOTAL_ORDER:
        print(f"  {k:<24} {totals[k]}")
    notable = [r for r in counted if r.cls not in (REFUSED_OK, ACCEPTED)]
    if notable:
        print("\ncalls not in the first two classes:")
        for r in notable:
            print(f"- {r.id} [{', '.join(r.flags) or r.cls}] {r.desc}\n    argv: {' '.join(r.argv)}\n    exit {r.rc}"
                  + (f" ({r.note})" if r.note else ""))
            for p in r.problems:
                print(f"    problem: {p}")
            for line in _stderr_lines(r.stderr)[-6:]:
                print(f"    stderr: {line[:300]}")
    timing = {}
    if opts.time_repeats > 0:
        timing = time_refused(py, env, opts.time_repeats, root)
        for label, t in timing.items():
            print(f"\nrefused call (missing input), {label}: median {t['median_s']:.3f} s of {opts.time_repeats} "
                  f"({t['all_s']})")
    if opts.json:
        Path(opts.json).write_text(json.dumps({
            "totals": totals, "n_calls": len(counted), "timing_refused_missing_input": timing, "gpu": cuda,
            "results": [r.__dict__ for r in results]}, indent=1, default=str))
    if not opts.keep:
        shutil.rmtree(root / "timing", ignore_errors=True)
        for f in root.glob(".rc-*"):
            f.unlink()
    bad = sum(totals[k] for k in BAD)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
