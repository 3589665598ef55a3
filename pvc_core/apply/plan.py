"""The plan of a ``dlpvc apply`` call, made before anything loads: which input goes where, or why not.

:func:`plan_apply` reads only the file system and image headers (NIfTI headers, DICOM detection;
no voxel data, no torch) and writes nothing. Every output path, the image and its JSON sidecar,
is resolved (symlinks and ``..``) and checked against

* every input, the folder of every DICOM input and every input's JSON sidecar (``<stem>.json``
  beside a NIfTI input, the BIDS convention), the CT inputs included: an output may never be one
  of them, lie inside an input folder or hold an input inside it, **even with** ``overwrite``;
* every other output and sidecar of the call: two jobs that would write the same file are both
  refused (neither silently wins);
* every existing file: refused unless ``overwrite``; with ``skip_existing`` a job whose output
  and sidecar exist, and whose sidecar records the same input digest and model, is skipped
  (resuming a half-done batch).

With ``uncertainty`` (``--uncertainty``) a job also writes the files of
:func:`uncertainty_paths` beside its output (the SD image, its sidecar, and with ``--labels`` the
regions' CSV), checked exactly as the output is; a ``--labels`` image is an input like the CT.

A folder ``--input`` (not itself a DICOM series) is expanded to its NIfTI files and DICOM series
folders, each written as ``<name>_dlpvc.nii.gz`` / ``<name>_dlpvc/`` into the ``--output`` folder.
Hidden names (temporaries of :mod:`pvc_core.io.atomic`) and the folder's own dlpvc outputs
(recognised by their sidecar, whatever their name) are left out with a note; inputs whose output
names collide (``a.nii`` and ``a.nii.gz``) are refused.

Problems of the whole call (blank paths, counts that do not pair, a CT with a folder) raise
:class:`InputError`; problems of one input make that job ``refuse`` with its reasons, so the
other inputs of a batch still run.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from pvc_core.apply.domain import geometry_problem
from pvc_core.errors import InputError
from pvc_core.io.atomic import is_temporary
from pvc_core.io.dicom import is_dicom_path
from pvc_core.io.grids import grid_mismatch
from pvc_core.io.nifti import Image, read_nifti_geometry
from pvc_core.io.outputs import NIFTI_WRITABLE_SUFFIXES, is_nifti_name, nifti_stem

__all__ = ["NIFTI", "DICOM", "OUTPUT_TAG", "SD_TAG", "REGIONS_TAG", "SIDECAR_FORMAT", "Job", "ApplyPlan",
           "UncertaintyPaths", "plan_apply", "sidecar_path", "uncertainty_paths", "input_sidecar", "content_digest",
           "read_sidecar", "written_from", "is_dlpvc_output", "resolved"]

NIFTI, DICOM = "nifti", "dicom"
#: Appended to an input's name for its output in folder mode.
OUTPUT_TAG = "_dlpvc"
#: Appended to an output's stem for its ``--uncertainty`` files: ``<stem>_sd.nii.gz`` (with
#: ``<stem>_sd.json``) and, with ``--labels``, ``<stem>_regions.csv`` (:func:`uncertainty_paths`).
SD_TAG, REGIONS_TAG = "_sd", "_regions"
#: The ``format`` entry of the sidecar ``dlpvc apply`` writes.
SIDECAR_FORMAT = "dlpvc-apply"
CORRECT, SKIP, REFUSE = "correct", "skip", "refuse"


@dataclass(frozen=True)
class Job:
    """One input of a call: where its output and sidecar go, and what will happen to it."""

    input: Path
    output: Path
    sidecar: Path
    input_kind: str                    # NIFTI, DICOM, or "" when refused before it was recognised
    output_kind: str                   # NIFTI or DICOM (a folder)
    ct: Path | None = None
    action: str = CORRECT              # CORRECT, SKIP or REFUSE
    reasons: tuple[str, ...] = ()      # one line each: why refused or skipped
    notes: tuple[str, ...] = ()        # one line each: what the user should know (not a refusal)
    replace: bool = False              # an existing output or sidecar may be replaced (--overwrite, or a
                                       # stale sidecar of this output whose image is gone, --skip-existing)
    uncertainty: bool = False          # --uncertainty: also write the files of uncertainty_paths
    labels: Path | None = None         # --labels: a label image on the input's grid (with uncertainty)

    def refused(self, *reasons: str) -> "Job":
        return replace(self, action=REFUSE, reasons=self.reasons + reasons)

    @property
    def uncertainty_files(self) -> "UncertaintyPaths | None":
        """Where this job's ``--uncertainty`` files go (None without ``--uncertainty``)."""
        if not self.uncertainty or not self.output_kind:
            return None
        return uncertainty_paths(self.output, self.output_kind, regions=self.labels is not None)

    @property
    def targets(self) -> tuple[Path, ...]:
        """Every path the job writes: the output, its sidecar and its ``--uncertainty`` files."""
        extra = self.uncertainty_files
        return (self.output, self.sidecar) + (extra.all if extra else ())


@dataclass(frozen=True)
class UncertaintyPaths:
    """The files ``--uncertainty`` writes beside an output (see :func:`uncertainty_paths`)."""

    sd: Path                           # <stem>_sd.nii.gz: voxel-wise SD over the symmetries, MBq/mL
    sd_sidecar: Path                   # <stem>_sd.json
    regions: Path | None = None        # <stem>_regions.csv (with --labels)

    @property
    def all(self) -> tuple[Path, ...]:
        return (self.sd, self.sd_sidecar) + ((self.regions,) if self.regions is not None else ())


@dataclass(frozen=True)
class ApplyPlan:
    """Every job of a call in input order, the output folder to create (folder mode), call notes."""

    jobs: tuple[Job, ...]
    output_folder: Path | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def to_correct(self) -> list[Job]:
        return [j for j in self.jobs if j.action == CORRECT]


def resolved(path: str | os.PathLike) -> Path:
    """``path`` with symlinks and ``..`` resolved (also for a path that does not exist yet)."""
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def sidecar_path(output: str | os.PathLike, kind: str) -> Path:
    """``out.nii.gz`` -> ``out.json``; a DICOM folder ``out/`` -> ``out.json`` beside it."""
    output = Path(output)
    if kind == NIFTI:
        return output.with_name(nifti_stem(output) + ".json")
    return output.with_name(output.name + ".json")


def uncertainty_paths(output: str | os.PathLike, kind: str, regions: bool = False) -> UncertaintyPaths:
    """The ``--uncertainty`` files of an output, beside it: ``out.nii.gz`` (or a DICOM folder ``out/``)
    -> ``out_sd.nii.gz`` (NIfTI whatever the output's kind) and ``out_sd.json``, and with
    ``regions`` (``--labels``) ``out_regions.csv``."""
    output = Path(output)
    stem = nifti_stem(output) if kind == NIFTI else output.name
    sd = output.with_name(f"{stem}{SD_TAG}.nii.gz")
    return UncertaintyPaths(sd, sidecar_path(sd, NIFTI),
                            output.with_name(f"{stem}{REGIONS_TAG}.csv") if regions else None)


def input_sidecar(path: str | os.PathLike) -> Path:
    """The JSON sidecar a NIfTI input (BIDS) or a DICOM folder may carry beside it: ``<stem>.json``."""
    path = Path(path)
    return path.with_name((nifti_stem(path) if is_nifti_name(path) else path.name) + ".json")


def read_sidecar(path: str | os.PathLike) -> dict | None:
    """A JSON sidecar as a dict, or None when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_dlpvc_output(path: str | os.PathLike) -> bool:
    """Whether ``path`` (a NIfTI file or DICOM folder) was written by ``dlpvc apply``: its sidecar says so."""
    path = Path(path)
    kind = NIFTI if is_nifti_name(path) else DICOM
    side = read_sidecar(sidecar_path(path, kind))
    return bool(side) and side.get("format") == SIDECAR_FORMAT


def _files_of(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))


def content_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, or of every (non-hidden) file of a folder with its relative name."""
    path = Path(path)
    digest = hashlib.sha256()
    for file in _files_of(path):
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with file.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _within(path: Path, folder: Path) -> bool:
    return folder == path or folder in path.parents


def _blank(value: str | None, option: str) -> None:
    if value is not None and not str(value).strip():
        raise InputError("empty path; give a file or folder name", option)


def _kind_of_input(path: Path) -> tuple[str, str | None]:
    """(NIFTI or DICOM, None), or ("", why it is refused) for an existing input path."""
    if is_nifti_name(path):
        if path.is_dir():
            return "", "is a folder with a NIfTI name; give the NIfTI file"
        if not path.name.endswith(NIFTI_WRITABLE_SUFFIXES):
            return "", "has a mixed-case suffix, which nibabel does not read; rename it to .nii.gz or .nii"
        return NIFTI, None
    if is_dicom_path(path):
        if path.is_dir():
            mixed = sorted(p.name for p in path.iterdir() if p.is_file() and is_nifti_name(p))
            if mixed:
                shown = ", ".join(mixed[:3]) + (" ..." if len(mixed) > 3 else "")
                return "", (f"holds a DICOM series and {len(mixed)} NIfTI file(s) ({shown}); give the NIfTI file "
                            "itself, or move it out of the folder to correct the DICOM series")
        return DICOM, None
    if path.is_dir():
        return "", "is a folder without DICOM files or NIfTI images"
    return "", "is neither NIfTI (.nii, .nii.gz) nor DICOM"


def _header_problem(path: Path) -> str | None:
    """What a NIfTI input's header shows to be impossible (see :mod:`pvc_core.apply.domain`), or None."""
    try:
        shape, affine = read_nifti_geometry(path, name="SPECT image")
    except InputError as err:
        return err.problem
    return geometry_problem(shape, tuple(float(v) for v in np.linalg.norm(affine[:3, :3], axis=0)))


def _output_kind(output: Path, input_kind: str) -> tuple[str, str | None]:
    """(NIFTI or DICOM, None) for an output path, or ("", why refused)."""
    name = output.name.lower()
    if is_nifti_name(output):
        if name in (".nii", ".nii.gz"):
            return "", "name the output file, e.g. corrected.nii.gz (not only the suffix)"
        if not output.name.endswith(NIFTI_WRITABLE_SUFFIXES):
            return "", "write the suffix .nii.gz or .nii (all lower or all upper case): nibabel reads no other"
        return NIFTI, None
    if input_kind == DICOM:
        return DICOM, None
    return "", f"name the output file *.nii.gz or *.nii (NIfTI), not {output.name!r}"


def _folder_problem(output: Path, kind: str) -> str | None:
    """Whether the output's folder can take it: a NIfTI file's folder must exist; a DICOM folder's
    nearest existing ancestor must be a writable folder (missing folders are created)."""
    parent = output.parent
    if kind == NIFTI:
        if not parent.exists():
            return f"folder {parent} does not exist; create it first"
        if not parent.is_dir():
            return f"{parent} is a file, not a folder"
        if not os.access(parent, os.W_OK | os.X_OK):
            return f"folder {parent} is not writable"
        return None
    ancestor = parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is a file, not a folder"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"folder {ancestor} is not writable"
    return None


def _exists(path: Path) -> bool:
    """Whether a file or a non-empty folder is at ``path`` (an empty folder holds nothing to lose)."""
    if path.is_symlink():
        return True
    if path.is_dir():
        return any(path.iterdir())
    return path.exists()


def _folder_jobs(folder: Path, out: Path) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(input, output) pairs of a folder of inputs, and notes on what was left out."""
    pairs, notes = [], []
    own = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or is_temporary(p):
            continue
        if p.is_file() and is_nifti_name(p):
            target = out / f"{nifti_stem(p)}{OUTPUT_TAG}.nii.gz"
        elif p.is_dir() and is_dicom_path(p):
            target = out / f"{p.name}{OUTPUT_TAG}"
        else:
            continue
        if is_dlpvc_output(p):
            own.append(p.name)
            continue
        pairs.append((p, target))
    if own:
        shown = ", ".join(own[:3]) + (" ..." if len(own) > 3 else "")
        notes.append(f"{folder}: left out {len(own)} image(s) that dlpvc apply wrote ({shown}; their sidecar says so)")
    return pairs, notes


def plan_apply(inputs: Sequence[str], outputs: Sequence[str], cts: Sequence[str] | None = None, *,
               overwrite: bool = False, skip_existing: bool = False, model_sha256: str | None = None,
               summary: str | None = None, uncertainty: bool = False,
               labels: Sequence[str] | None = None) -> ApplyPlan:
    """The plan of ``dlpvc apply --input ... --output ... [--ct ...]`` (see the module docstring).

    ``model_sha256``: the digest of the model that will run, which ``skip_existing`` compares with
    an existing sidecar's. ``summary``: the ``--summary`` file the call also writes, checked like an
    output. ``uncertainty``: each job also writes its :func:`uncertainty_paths` files; ``labels``
    (one per input, only with ``uncertainty``): label images on the inputs' grids. Raises
    :class:`InputError` for a call that cannot be planned at all.
    """
    if overwrite and skip_existing:
        raise InputError("give --overwrite or --skip-existing, not both", "--skip-existing")
    if labels is not None and not uncertainty:
        raise InputError("needs --uncertainty (the label image is for the regions' spread over the symmetries)",
                         "--labels")
    for option, values in (("--input", inputs), ("--output", outputs), ("--ct", cts or ()),
                           ("--labels", labels or ()), ("--summary", () if summary is None else (summary,))):
        for value in values:
            _blank(value, option)
    if not inputs:
        raise InputError("give at least one --input", "--input")
    if len(inputs) != len(outputs):
        raise InputError(f"{len(inputs)} --input but {len(outputs)} --output; give one --output per --input",
                         "--output")
    if cts is not None and len(cts) != len(inputs):
        raise InputError(f"{len(cts)} --ct for {len(inputs)} --input; give one --ct per --input", "--ct")
    if labels is not None and len(labels) != len(inputs):
        raise InputError(f"{len(labels)} --labels for {len(inputs)} --input; give one --labels per --input",
                         "--labels")

    notes: list[str] = []
    out_folder = None
    first = Path(inputs[0])
    if len(inputs) == 1 and first.is_dir() and not is_nifti_name(first) and not is_dicom_path(first):
        if cts is not None:
            raise InputError("--ct cannot be paired with a folder of inputs; give --input/--output/--ct per image",
                             "--ct")
        if labels is not None:
            raise InputError("--labels cannot be paired with a folder of inputs; give --input/--output/--labels "
                             "per image", "--labels")
        out_folder = Path(outputs[0])
        pairs, notes = _folder_jobs(first, out_folder)
        if not pairs:
            raise InputError("no NIfTI files (.nii, .nii.gz) or DICOM series to correct in this folder"
                             + (f" ({notes[0].split(': ', 1)[1]})" if notes else ""), first)
        if is_nifti_name(out_folder):
            raise InputError(f"{out_folder}: a folder of inputs needs an output folder, not a NIfTI file name",
                             "--output")
        if out_folder.exists() and not out_folder.is_dir():
            raise InputError(f"{out_folder} is a file; a folder of inputs needs an output folder", "--output")
        problem = _folder_problem(out_folder / "x", DICOM)
        if problem:
            raise InputError(f"{out_folder}: {problem}", "--output")
        triples = [(p, o, None) for p, o in pairs]
    else:
        triples = [(Path(i), Path(o), None if cts is None else Path(c))
                   for i, o, c in zip(inputs, outputs, cts or [None] * len(inputs))]

    label_paths = [None] * len(triples) if labels is None else [Path(v) for v in labels]
    jobs = [_job(i, o, c, out_folder is not None, uncertainty, lab) for (i, o, c), lab in zip(triples, label_paths)]
    if summary is not None:
        _check_summary(Path(summary), jobs, overwrite)
    jobs = _check_conflicts(jobs, overwrite, skip_existing, model_sha256, summary)
    return ApplyPlan(tuple(jobs), out_folder, tuple(notes))


def _job(src: Path, out: Path, ct: Path | None, in_folder_mode: bool, uncertainty: bool = False,
         labels: Path | None = None) -> Job:
    """A job with its kinds and the problems of its own paths (not yet checked against the others)."""
    if not out.name or out.name in (".", ".."):
        return Job(src, out, out, "", "", ct).refused(f"--output: {out} is a folder; give a file or new folder name "
                                                      "inside it")
    job = Job(src, out, sidecar_path(out, NIFTI if is_nifti_name(out) else DICOM), "", "", ct,
              uncertainty=uncertainty, labels=labels)
    if not src.exists():
        return job.refused(f"{src}: file or folder not found")
    kind, why = _kind_of_input(src)
    if why:
        return job.refused(f"{src}: {why}")
    job = replace(job, input_kind=kind)
    if kind == NIFTI:
        problem = _header_problem(src)
        if problem:
            return job.refused(f"{src}: {problem}")
    out_kind, why = _output_kind(out, kind)
    if why:
        return job.refused(f"--output: {out}: {why}")
    job = replace(job, output_kind=out_kind, sidecar=sidecar_path(out, out_kind))
    if out.is_dir() and out_kind == NIFTI:
        return job.refused(f"--output: {out} is an existing folder; give a file name inside it "
                           f"(e.g. {out / 'corrected.nii.gz'})")
    if out.exists() and not out.is_dir() and out_kind == DICOM:
        return job.refused(f"--output: {out} is an existing file; a DICOM output is a folder, give a new folder name")
    if out_kind == DICOM and _exists(out) and not is_dlpvc_output(out):
        return job.refused(f"--output: {out} is a folder of other files (not written by dlpvc apply); it is never "
                           "replaced, give a new or empty folder")
    if not in_folder_mode:
        problem = _folder_problem(out, out_kind)
        if problem:
            return job.refused(f"--output: {out}: {problem}")
    if ct is not None:
        if not ct.exists():
            return job.refused(f"--ct: {ct}: CT file or folder not found")
        if not is_nifti_name(ct) and not is_dicom_path(ct):
            return job.refused(f"--ct: {ct}: CT is neither NIfTI (.nii, .nii.gz) nor DICOM")
    if labels is not None:
        problem = _labels_problem(labels, src if kind == NIFTI else None)
        if problem:
            return job.refused(f"--labels: {labels}: {problem}")
    if not in_folder_mode and is_dlpvc_output(src):
        job = replace(job, notes=job.notes + (f"{src}: was written by dlpvc apply (its sidecar says so); "
                                              "correcting an already corrected image again",))
    return job


def _labels_problem(labels: Path, nifti_input: Path | None) -> str | None:
    """What is wrong with a ``--labels`` path (from its header alone), or None: it must be a NIfTI
    file on the grid of a NIfTI input (a DICOM input's grid is compared once it is read)."""
    if not labels.exists():
        return "label image not found"
    if labels.is_dir() or not is_nifti_name(labels):
        return "give a NIfTI label image (.nii, .nii.gz) on the input's grid"
    try:
        shape, affine = read_nifti_geometry(labels, name="label image")
        if nifti_input is None:
            return None
        in_shape, in_affine = read_nifti_geometry(nifti_input, name="SPECT image")
    except InputError as err:
        return err.problem
    mismatch = grid_mismatch(_grid(shape, affine), _grid(in_shape, in_affine))
    if mismatch:
        return f"{mismatch} of {nifti_input}; the label image must be on the input's grid"
    return None


def _grid(shape: tuple[int, ...], affine: np.ndarray) -> Image:
    """A header-only image (a read-only broadcast zero, no voxel memory) for :func:`grid_mismatch`."""
    return Image(np.broadcast_to(np.zeros((), np.uint8), tuple(shape)), affine)


def _protected(jobs: list[Job]) -> list[tuple[Path, bool, str]]:
    """(resolved path, is a folder whose contents are protected too, what it is) of every input."""
    out = []
    for job in jobs:
        for path, what in ((job.input, "an input"), (job.ct, "a CT input"), (job.labels, "a label input")):
            if path is None:
                continue
            r = resolved(path)
            out.append((r, r.is_dir(), f"{what} ({path})"))
            if is_nifti_name(path) or (path.is_dir() and job.input_kind == DICOM):
                out.append((resolved(input_sidecar(path)), False, f"the sidecar of {what} ({input_sidecar(path)})"))
    return out


def _clash(target: Path, protected: list[tuple[Path, bool, str]]) -> str | None:
    """What ``target`` (an output, resolved) would destroy, or None."""
    ident = _identity(target)
    for path, is_folder, what in protected:
        if target == path or (ident is not None and ident == _identity(path)):
            return f"is {what}"
        if is_folder and _within(target, path):
            return f"lies inside {what}"
        if _within(path, target) and target != path:
            return f"holds {what}"
    return None


def written_from(job: Job, model_sha256: str | None = None) -> bool:
    """Whether the job's output exists with a dlpvc sidecar recording this input's digest (and, when
    given, this model): the output is what correcting the input now would write."""
    side = read_sidecar(job.sidecar)
    if not side or side.get("format") != SIDECAR_FORMAT or side.get("status", "done") != "done":
        return False
    if model_sha256 is not None and (side.get("model") or {}).get("sha256") != model_sha256:
        return False
    return _exists(job.output) and side.get("input_sha256") == content_digest(job.input)


def _is_stale_sidecar(job: Job) -> bool:
    """Whether the job's sidecar is one dlpvc wrote for this very output, whose image is gone."""
    side = read_sidecar(job.sidecar)
    return bool(side) and side.get("format") == SIDECAR_FORMAT and not _exists(job.output) \
        and resolved(side.get("output") or "") == resolved(job.output)


def _check_conflicts(jobs: list[Job], overwrite: bool, skip_existing: bool, model_sha256: str | None,
                     summary: str | None) -> list[Job]:
    """Refuse outputs that would destroy an input, collide with each other or replace a file unasked."""
    protected = _protected(jobs)
    claims: dict[Path, list[int]] = {}
    for n, job in enumerate(jobs):
        if job.action == REFUSE:
            continue
        for target in job.targets:
            claims.setdefault(resolved(target), []).append(n)
    if summary is not None:
        claims.setdefault(resolved(summary), []).append(-1)
    result = []
    for n, job in enumerate(jobs):
        if job.action == REFUSE:
            result.append(job)
            continue
        reasons = []
        for target in job.targets:
            r = resolved(target)
            clash = _clash(r, protected)
            if clash:
                reasons.append(f"--output: {target} {clash}; it is never overwritten, give another name")
                break
            others = [k for k in claims.get(r, []) if k != n]
            for k in others:
                other = "the --summary file" if k < 0 else f"the output of {jobs[k].input}"
                reasons.append(f"--output: {target} is also {other}; give each output its own name")
        if reasons:
            result.append(job.refused(*reasons))
            continue
        existing = [t for t in job.targets if _exists(t)]
        if overwrite:
            result.append(replace(job, replace=True))
            continue
        missing = [t for t in job.targets[2:] if not _exists(t)]
        if existing == [job.sidecar] and skip_existing and _is_stale_sidecar(job):
            result.append(replace(job, replace=True, notes=job.notes + (
                f"{job.sidecar}: its image is gone; correcting again (--skip-existing)",)))
            continue
        if existing and skip_existing and written_from(job, model_sha256):
            if missing:
                result.append(job.refused(f"--output: {job.output} exists without {' and '.join(map(str, missing))} "
                                          "(written without --uncertainty?); give --overwrite to write them all again"))
                continue
            result.append(replace(job, action=SKIP, reasons=(f"{job.output} exists, written from the same input "
                                                             "by the same model (--skip-existing)",)))
            continue
        if existing and not overwrite:
            names = " and ".join(str(t) for t in existing)
            hint = "give --overwrite to replace it" + (" or --skip-existing to resume a batch" if not skip_existing
                                                        else "; its sidecar records another input or model")
            result.append(job.refused(f"--output: {names} exist{'s' if len(existing) == 1 else ''}; {hint}"))
            continue
        result.append(job)
    return result


def _check_summary(target: Path, jobs: Sequence[Job], overwrite: bool) -> None:
    """Refuse a ``--summary`` file that is an input, an output or sidecar of the call, exists (without
    ``overwrite``), or has no folder."""
    option = "--summary"
    clash = _clash(resolved(target), _protected(list(jobs)))
    if clash:
        raise InputError(f"{target} {clash}; it is never overwritten, give another name", option)
    for job in jobs:
        for path, what in ((job.output, "the output"), (job.sidecar, "the sidecar")):
            if resolved(path) == resolved(target) or (job.output_kind == DICOM and _within(resolved(target),
                                                                                           resolved(job.output))):
                raise InputError(f"{target} is {what} of {job.input}; give the summary its own name", option)
    if target.is_dir():
        raise InputError(f"{target} is a folder; give a file name", option)
    if target.exists() and not overwrite:
        raise InputError(f"{target} exists; give --overwrite to replace it", option)
    problem = _folder_problem(target, DICOM)  # missing folders are created (e.g. a folder batch's output folder)
    if problem:
        raise InputError(f"{target}: {problem}", option)
