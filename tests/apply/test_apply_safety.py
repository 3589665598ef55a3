"""``dlpvc apply`` never loses a patient's data, says where its model is valid, and settles its exit
codes ([3.1]). One test per finding of the issue (each failed on the code before it), with an
untrained tiny network (conftest ``tiny_model``): only safety is judged here, not the correction."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from pvc_core.cli import main
from pvc_core.io import load_image, save_image

pytestmark = pytest.mark.usefixtures("one_torch_thread")
REPO = Path(__file__).resolve().parents[2]
VOXEL = 4.8


def _body(seed: int = 0, n: int = 24) -> np.ndarray:
    """A blurred warm body with two hot spheres, MBq/mL (total a few hundred MBq at 4.8 mm)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:n, :n, :n]
    c = (n - 1) / 2
    act = np.where(((x - c) / (0.4 * n)) ** 2 + ((y - c) / (0.3 * n)) ** 2 + ((z - c) / (0.45 * n)) ** 2 < 1,
                   0.5, 0.0)
    for _ in range(2):
        p = rng.uniform(0.35 * n, 0.65 * n, 3)
        act[(z - p[0]) ** 2 + (y - p[1]) ** 2 + (x - p[2]) ** 2 < 9] += rng.uniform(3, 6)
    return gaussian_filter(act, 1.2).astype(np.float32)


def _affine(voxel: float = VOXEL) -> np.ndarray:
    a = np.diag([voxel, voxel, voxel, 1.0])
    a[:3, 3] = -50.0
    return a


def _nifti(path: Path, seed: int = 0, data: np.ndarray | None = None, affine=None) -> Path:
    return save_image(path, _body(seed) if data is None else data, _affine() if affine is None else affine,
                      "activity MBq/mL")


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _apply(capsys, *argv) -> tuple[int, str, list[str]]:
    code = main(["apply", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err.strip().splitlines()


def _lines_ok(err: list[str]) -> None:
    assert err and all(line.startswith("dlpvc apply: ") for line in err), err
    assert not any("note: WARNING" in line for line in err), err


# ---- 1. an output that is an input of the same call, or exists already -----------------------

def test_an_output_that_is_another_jobs_input_is_refused_and_that_input_is_corrected_untouched(tiny_model, tmp_path,
                                                                                                capsys):
    a, b = _nifti(tmp_path / "A.nii.gz", 0), _nifti(tmp_path / "B.nii.gz", 1)
    before = _digests(tmp_path)
    code, out, err = _apply(capsys, "--input", a, "--output", b, "--input", b, "--output", tmp_path / "C.nii.gz",
                            "--model", tiny_model, "--reconstruction", "RR")
    assert code == 2
    _lines_ok(err)
    assert any("B.nii.gz is an input" in line for line in err)
    after = _digests(tmp_path)
    assert after["A.nii.gz"] == before["A.nii.gz"] and after["B.nii.gz"] == before["B.nii.gz"]
    side = json.loads((tmp_path / "C.json").read_text())
    assert side["input_sha256"] == before["B.nii.gz"]  # C is the correction of the original B


def test_an_existing_output_is_refused_unless_overwrite(tiny_model, tmp_path, capsys):
    src = _nifti(tmp_path / "in.nii.gz")
    out = tmp_path / "out.nii.gz"
    out.write_bytes(b"a previous result")
    code, _, err = _apply(capsys, "--input", src, "--output", out, "--model", tiny_model)
    assert code == 2 and "--overwrite" in err[-1] and out.read_bytes() == b"a previous result"
    assert not (tmp_path / "out.json").exists()
    code, _, err = _apply(capsys, "--input", src, "--output", out, "--model", tiny_model, "--overwrite")
    assert code == 0, err
    assert load_image(out).data.shape == (24, 24, 24)


def test_overwrite_never_replaces_an_input_even_through_a_symlink_or_dotdot(tiny_model, tmp_path, capsys):
    src = _nifti(tmp_path / "d" / "in.nii.gz")
    link = tmp_path / "link.nii.gz"
    link.symlink_to(src)
    before = _digests(tmp_path / "d")
    for target in (link, tmp_path / "d" / ".." / "d" / "in.nii.gz"):
        code, _, err = _apply(capsys, "--input", src, "--output", target, "--model", tiny_model, "--overwrite")
        assert code == 2 and "is an input" in err[-1]
    assert _digests(tmp_path / "d") == before


# ---- 2. the same --output twice ---------------------------------------------------------------

def test_the_same_output_twice_refuses_both(tiny_model, tmp_path, capsys):
    a, b = _nifti(tmp_path / "a.nii.gz", 0), _nifti(tmp_path / "b.nii.gz", 1)
    out = tmp_path / "out.nii.gz"
    code, _, err = _apply(capsys, "--input", a, "--output", out, "--input", b, "--output", out, "--model", tiny_model)
    assert code == 2 and sum("also the output of" in line for line in err) == 2
    assert not out.exists() and not (tmp_path / "out.json").exists()


# ---- 3. folder mode: colliding names, own outputs ---------------------------------------------

def test_folder_refuses_colliding_names_and_never_corrects_its_own_outputs(tiny_model, tmp_path, capsys):
    d = tmp_path / "in"
    _nifti(d / "a.nii", 0)
    _nifti(d / "a.nii.gz", 1)
    _nifti(d / "b.nii.gz", 2)
    code, _, err = _apply(capsys, "--input", d, "--output", d, "--model", tiny_model, "--reconstruction", "RR")
    assert code == 2 and sum("a_dlpvc.nii.gz is also the output of" in line for line in err) == 2
    assert (d / "b_dlpvc.nii.gz").exists() and not (d / "a_dlpvc.nii.gz").exists()
    # again, same call: b's output exists (refused without --skip-existing) and is never corrected again
    code, _, err = _apply(capsys, "--input", d, "--output", d, "--model", tiny_model, "--reconstruction", "RR")
    assert code == 2 and any("left out 1 image(s) that dlpvc apply wrote" in line for line in err)
    assert not list(d.glob("*_dlpvc_dlpvc*"))
    # renamed, the output is still recognised by its sidecar
    (d / "b_dlpvc.nii.gz").rename(d / "zz.nii.gz")
    (d / "b_dlpvc.json").rename(d / "zz.json")
    (d / "a.nii").unlink()
    code, _, err = _apply(capsys, "--input", d, "--output", d, "--model", tiny_model, "--reconstruction", "RR",
                          "--skip-existing")
    assert code == 0, err
    assert not (d / "zz_dlpvc.nii.gz").exists() and (d / "a_dlpvc.nii.gz").exists()


def test_skip_existing_resumes_a_half_done_batch_and_reruns_what_another_model_wrote(tiny_model, tmp_path, capsys):
    d = tmp_path / "in"
    for i in range(3):
        _nifti(d / f"p{i}.nii.gz", i)
    out = tmp_path / "out"
    assert _apply(capsys, "--input", d, "--output", out, "--model", tiny_model, "--reconstruction", "RR")[0] == 0
    (out / "p1_dlpvc.nii.gz").unlink()
    kept = _digests(out)
    code, stdout, err = _apply(capsys, "--input", d, "--output", out, "--model", tiny_model, "--reconstruction",
                               "RR", "--skip-existing")
    assert code == 0, err
    assert stdout.count("skipped") == 2 and (out / "p1_dlpvc.nii.gz").exists()
    assert _digests(out)["p0_dlpvc.nii.gz"] == kept["p0_dlpvc.nii.gz"]
    # an input changed since: its output is not "the same", so not skipped (and not overwritten unasked)
    _nifti(d / "p2.nii.gz", 7)
    code, _, err = _apply(capsys, "--input", d, "--output", out, "--model", tiny_model, "--reconstruction", "RR",
                          "--skip-existing")
    assert code == 2 and any("p2_dlpvc.nii.gz" in line and "another input or model" in line for line in err)


# ---- 4. blank paths, a NIfTI name for a folder's output ----------------------------------------

@pytest.mark.parametrize("argv", [["--input", "", "--output", "x.nii.gz"], ["--input", "a.nii.gz", "--output", " "]])
def test_blank_paths_are_refused(argv, tiny_model, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _nifti(tmp_path / "a.nii.gz")
    code, _, err = _apply(capsys, *argv, "--model", tiny_model)
    assert code == 2 and len(err) == 1 and "empty path" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nii.gz"]


def test_a_folder_input_with_a_nifti_output_name_creates_nothing(tiny_model, tmp_path, capsys):
    _nifti(tmp_path / "in" / "a.nii.gz")
    code, _, err = _apply(capsys, "--input", tmp_path / "in", "--output", tmp_path / "x.nii.gz", "--model", tiny_model)
    assert code == 2 and len(err) == 1 and "needs an output folder" in err[0]
    assert not (tmp_path / "x.nii.gz").exists()


# ---- 5. the sidecar never replaces an input's own JSON -----------------------------------------

def test_an_output_whose_sidecar_is_the_inputs_bids_sidecar_is_refused(tiny_model, tmp_path, capsys):
    src = _nifti(tmp_path / "A.nii.gz")
    (tmp_path / "A.json").write_text('{"ReconMethodName": "OSEM 6i6s RR"}')
    before = _digests(tmp_path)
    code, _, err = _apply(capsys, "--input", src, "--output", tmp_path / "A.nii", "--model", tiny_model, "--overwrite")
    assert code == 2 and len(err) == 1 and "the sidecar of an input" in err[0]
    assert _digests(tmp_path) == before


def test_a_bids_sidecar_states_the_reconstruction(tiny_model, tmp_path, capsys):
    src = _nifti(tmp_path / "A.nii.gz")
    (tmp_path / "A.json").write_text('{"ReconMethodName": "OSEM 6i6s RR", "ReconFilterType": "none", '
                                     '"AttenuationCorrection": "CT-based"}')
    (tmp_path / "out").mkdir()
    code, _, err = _apply(capsys, "--input", src, "--output", tmp_path / "out" / "A.nii.gz", "--model", tiny_model)
    side = json.loads((tmp_path / "out" / "A.json").read_text())
    assert code == 0 and side["input_facts"]["reconstruction"] == "RR" and side["input_facts"]["iterations"] == 6
    assert side["input_facts"]["sources"]["reconstruction"].endswith("A.json")


# ---- 6. signals and a closed pipe ---------------------------------------------------------------

@pytest.mark.parametrize("stop, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_an_interrupt_while_writing_removes_the_temporary_and_keeps_finished_outputs(stop, code, tiny_model, tmp_path,
                                                                                    capsys, monkeypatch):
    import nibabel as nib

    from pvc_core.apply.batch import Interrupted

    d = tmp_path / "in"
    for i in range(3):
        _nifti(d / f"p{i}.nii.gz", i)
    real_save, calls = nib.save, []

    def save_then_stop(img, filename):
        calls.append(filename)
        real_save(img, filename)
        if len(calls) == 2:  # the second image is written to its temporary, not yet renamed
            raise KeyboardInterrupt() if stop == "SIGINT" else Interrupted(143, "SIGTERM")

    monkeypatch.setattr(nib, "save", save_then_stop)
    out = tmp_path / "out"
    got, _, err = _apply(capsys, "--input", d, "--output", out, "--model", tiny_model, "--summary",
                         tmp_path / "summary.jsonl")
    assert got == code and f"interrupted by {stop}" in err[-1] and "Traceback" not in "\n".join(err)
    assert sorted(p.name for p in out.iterdir()) == ["p0_dlpvc.json", "p0_dlpvc.nii.gz"]  # no temporary
    statuses = [json.loads(line)["status"] for line in (tmp_path / "summary.jsonl").read_text().splitlines()]
    assert statuses == ["done", "interrupted", "not started"]


def _cli(*argv) -> list[str]:
    return [sys.executable, "-m", "pvc_core", *map(str, argv)]


def test_sigterm_to_the_command_exits_143_without_temporaries(tiny_model, tmp_path):
    d = tmp_path / "in"
    for i in range(8):
        _nifti(d / f"p{i}.nii.gz", i)
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(_cli("apply", "--input", d, "--output", out, "--model", tiny_model), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "p0_dlpvc.json").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "interrupted by SIGTERM" in err
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert all((out / f"{p.stem.split('.')[0]}.json").exists() for p in out.glob("*.nii.gz"))


def test_a_closed_stdout_never_stops_a_batch(tiny_model, tmp_path):
    d = tmp_path / "in"
    for i in range(3):
        _nifti(d / f"p{i}.nii.gz", i)
    out = tmp_path / "out"
    cmd = " ".join(f"'{a}'" for a in _cli("apply", "--input", d, "--output", out, "--model", tiny_model))
    res = subprocess.run(["bash", "-c", f"{cmd} | head -c 0"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr
    assert sorted(p.name for p in out.glob("*.nii.gz")) == [f"p{i}_dlpvc.nii.gz" for i in range(3)]


# ---- 7. outside the model's domain: noRR, unknown reconstruction, hollow output ----------------

def test_a_norr_input_gets_the_shipped_norr_model(tmp_path, capsys):
    """The registry's default for noRR ([3.4]); a models folder without one refuses noRR input
    (test_shipped_model.py::test_dlpvc_model_dir_replaces_the_shipped_models)."""
    src = _nifti(tmp_path / "a.nii.gz")
    code, _, err = _apply(capsys, "--input", src, "--output", tmp_path / "o.nii.gz", "--reconstruction", "noRR")
    assert code == 0, err
    side = json.loads((tmp_path / "o.json").read_text())
    assert side["model"]["name"] == "dlpvc_noRR" and side["input_facts"]["reconstruction"] == "noRR"


def test_an_input_whose_sidecar_says_norr_gets_the_norr_model(tmp_path, capsys):
    src = _nifti(tmp_path / "a.nii.gz")
    (tmp_path / "a.json").write_text(json.dumps({"reconstruction": {"name": "noRR", "iterations": 10, "subsets": 2}}))
    (tmp_path / "o").mkdir()
    code, _, err = _apply(capsys, "--input", src, "--output", tmp_path / "o" / "a.nii.gz")
    assert code == 0, err
    assert json.loads((tmp_path / "o" / "a.json").read_text())["model"]["name"] == "dlpvc_noRR"


def test_unknown_reconstruction_is_corrected_with_a_warning_or_refused_with_strict(tiny_model, tmp_path, capsys):
    src = _nifti(tmp_path / "a.nii.gz")
    code, _, err = _apply(capsys, "--input", src, "--output", tmp_path / "o.nii.gz", "--model", tiny_model)
    assert code == 0 and len(err) == 1 and "WARNING" in err[0] and "reconstruction kind not stated" in err[0]
    side = json.loads((tmp_path / "o.json").read_text())
    assert side["domain"]["status"] == "unknown" and side["warnings"] == [err[0].split("WARNING: ", 1)[1]]
    code, _, err = _apply(capsys, "--input", src, "--output", tmp_path / "s.nii.gz", "--model", tiny_model, "--strict")
    assert code == 2 and len(err) == 1 and "--strict" in err[0] and not (tmp_path / "s.nii.gz").exists()


def test_an_input_outside_the_domain_says_why(tiny_model, tmp_path, capsys):
    src = _nifti(tmp_path / "a.nii.gz", affine=_affine(3.0))  # 3 mm voxels; the model's are 4.8 mm
    (tmp_path / "a.json").write_text(json.dumps({"reconstruction": {"name": "noRR", "iterations": 10, "subsets": 2}}))
    code, _, err = _apply(capsys, "--input", src, "--output", tmp_path / "o.nii.gz", "--model", tiny_model)
    assert code == 0 and len(err) == 1
    side = json.loads((tmp_path / "o.json").read_text())
    assert side["domain"]["status"] == "outside"
    assert any("reconstruction noRR" in r for r in side["domain"]["reasons"])
    assert any("voxel size 3" in r for r in side["domain"]["reasons"])
    assert any("10 iterations" in r for r in side["domain"]["reasons"])


def test_the_hollow_guard_warns_when_the_output_turns_a_hot_sphere_into_a_shell(tiny_model, tmp_path, capsys,
                                                                                monkeypatch):
    import pvc_core.apply.correct as correct

    n = 32
    z, y, x = np.mgrid[:n, :n, :n]
    r = np.sqrt((x - 15.5) ** 2 + (y - 15.5) ** 2 + (z - 15.5) ** 2)
    sphere = gaussian_filter(np.where(r < 6, 1.0, 0.0), 1.5).astype(np.float32)
    shell = np.where((r > 4) & (r < 6.5), 2.0, np.where(r <= 4, 0.3, 0.0)).astype(np.float32)
    src = _nifti(tmp_path / "s.nii.gz", data=sphere + 0.01)
    monkeypatch.setattr(correct, "correct_image", lambda model, image, ct, src: (shell + 0.01, {}))
    code, _, err = _apply(capsys, "--input", src, "--output", tmp_path / "o.nii.gz", "--model", tiny_model,
                          "--reconstruction", "RR")
    assert code == 0 and sum("the output is hollow where the input is not" in line for line in err) == 1
    side = json.loads((tmp_path / "o.json").read_text())
    assert len(side["hollow_regions"]) == 1
    centre = np.asarray(side["hollow_regions"][0]["centre_mm"])
    assert np.allclose(centre, _affine()[:3, :3] @ np.full(3, 15.5) + _affine()[:3, 3], atol=VOXEL)


# ---- 8. physically impossible input -------------------------------------------------------------

@pytest.mark.parametrize("kind, data, voxel, words", [
    ("Bq/mL stored as MBq/mL", _body(0) * 1e6, VOXEL, "too large by about 1e6"),
    ("voxel size in metres", _body(0), 0.0048, "a header in metres"),
    ("8 voxels along an axis", _body(0)[:, :, :8], VOXEL, "fewer than 16 voxels"),
    ("a tiny total", _body(0) * 1e-4, VOXEL, "below 1 MBq"),
])
def test_physically_impossible_input_is_refused_fast_with_what_to_fix(kind, data, voxel, words, tiny_model, tmp_path,
                                                                      capsys):
    src = save_image(tmp_path / "a.nii.gz", data, _affine(voxel))
    t0 = time.perf_counter()
    code, _, err = _apply(capsys, "--input", src, "--output", tmp_path / "o.nii.gz", "--model", tiny_model)
    assert time.perf_counter() - t0 < 10  # the metres header used to try a 244 GiB grid
    assert code == 2 and len(err) == 1 and words in err[0], (kind, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nii.gz"]


# ---- 9. iy on an image without activity ----------------------------------------------------------

def test_iy_refuses_an_all_negative_image_and_an_existing_output(tmp_path, capsys):
    src = save_image(tmp_path / "neg.nii.gz", -_body(0), _affine())
    labels = save_image(tmp_path / "lab.nii.gz", (_body(0) > 0.2).astype(np.float32), _affine())
    code = main(["iy", "--input", str(src), "--labels", str(labels), "--fwhm-mm", "10", "--output",
                 str(tmp_path / "o.nii.gz")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no positive value" in err[0] and not (tmp_path / "o.nii.gz").exists()
    pos = save_image(tmp_path / "pos.nii.gz", _body(0), _affine())
    (tmp_path / "o.nii.gz").write_bytes(b"keep me")
    code = main(["iy", "--input", str(pos), "--labels", str(labels), "--fwhm-mm", "10", "--output",
                 str(tmp_path / "o.nii.gz")])
    assert code == 2 and "--overwrite" in capsys.readouterr().err and (tmp_path / "o.nii.gz").read_bytes() == b"keep me"


# ---- the smaller findings ---------------------------------------------------------------------------

def test_a_missing_input_is_refused_before_any_model_loads(tmp_path, capsys, monkeypatch):
    import pvc_core.apply.batch as batch

    def no_loading(*a, **k):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(batch, "load_apply_model", no_loading)
    code, _, err = _apply(capsys, "--input", tmp_path / "none.nii.gz", "--output", tmp_path / "o.nii.gz")
    assert code == 2 and len(err) == 1 and "not found" in err[0]


def test_a_failure_of_ours_exits_1_and_the_batch_goes_on(tiny_model, tmp_path, capsys, monkeypatch):
    import errno

    import pvc_core.apply.correct as correct

    d = tmp_path / "in"
    for i in range(3):
        _nifti(d / f"p{i}.nii.gz", i)
    real, calls = correct._write_outputs, []

    def disk_full_once(job, *a, **k):
        calls.append(job)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(job.output))
        return real(job, *a, **k)

    monkeypatch.setattr(correct, "_write_outputs", disk_full_once)
    code, _, err = _apply(capsys, "--input", d, "--output", tmp_path / "out", "--model", tiny_model,
                          "--reconstruction", "RR")
    assert code == 1 and any("p1.nii.gz: failed, nothing written: " in line and "No space" in line for line in err)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.nii.gz")) == ["p0_dlpvc.nii.gz", "p2_dlpvc.nii.gz"]


def test_a_batch_with_a_refused_input_exits_2_and_writes_the_rest_and_a_summary(tiny_model, tmp_path, capsys):
    a = _nifti(tmp_path / "a.nii.gz")
    bad = save_image(tmp_path / "bad.nii.gz", _body(0) * 1e6, _affine())
    summary = tmp_path / "summary.jsonl"
    code, _, err = _apply(capsys, "--input", bad, "--output", tmp_path / "bad_o.nii.gz", "--input", a, "--output",
                          tmp_path / "a_o.nii.gz", "--model", tiny_model, "--reconstruction", "RR", "--summary", summary)
    assert code == 2 and (tmp_path / "a_o.nii.gz").exists() and not (tmp_path / "bad_o.nii.gz").exists()
    rows = [json.loads(line) for line in summary.read_text().splitlines()]
    assert [r["status"] for r in rows] == ["refused", "done"]
    assert "too large" in rows[0]["reasons"][0] and abs(rows[1]["output_total_mbq"] / rows[1]["input_total_mbq"] - 1) < 1e-6


def test_a_summary_file_may_not_be_an_input(tiny_model, tmp_path, capsys):
    a = _nifti(tmp_path / "a.nii.gz")
    code, _, err = _apply(capsys, "--input", a, "--output", tmp_path / "o.nii.gz", "--summary", a,
                          "--model", tiny_model)
    assert code == 2 and len(err) == 1 and err[0].startswith("dlpvc apply: --summary:") and "is an input" in err[0]


def test_a_pickle_that_is_not_weights_gives_our_line_not_torchs_advice(tmp_path, capsys):
    import torch

    bad = tmp_path / "m" / "model.pt"
    bad.parent.mkdir()
    torch.save({"format": "dlpvc-model", "object": Path("x")}, bad)
    src = _nifti(tmp_path / "a.nii.gz")
    code, _, err = _apply(capsys, "--input", src, "--output", tmp_path / "o.nii.gz", "--model", bad)
    assert code == 2 and len(err) == 1 and err[0].startswith("dlpvc apply: --model: ")
    assert "not a dlpvc model checkpoint" in err[0] and "trust" not in err[0] and "weights_only" not in err[0]


def test_apply_imports_neither_matplotlib_nor_the_training_loop():
    code = ("import sys, pvc_core.apply.batch, pvc_core.apply.correct, pvc_core.training.predict\n"
            "from pvc_core.networks import build_network; build_network('unet', [4, 8])\n"
            "bad = [m for m in sys.modules if m.startswith(('matplotlib', 'monai', 'pvc_core.training.train'))]\n"
            "print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stdout + res.stderr


def test_a_nifti_inside_a_dicom_folder_is_refused_not_ignored(tiny_model, tmp_path, capsys):
    from helpers.dicom_series import write_slices

    folder = write_slices(tmp_path / "series", np.full((20, 20, 20), 5e5))
    _nifti(folder / "extra.nii.gz")
    code, _, err = _apply(capsys, "--input", folder, "--output", tmp_path / "o", "--model", tiny_model)
    assert code == 2 and len(err) == 1 and "1 NIfTI file(s) (extra.nii.gz)" in err[0]


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS:UserWarning")
def test_dicom_output_is_derived_secondary_marked_research_only_and_keeps_timing_tags(tiny_model, tmp_path, capsys):
    import pydicom
    from helpers.dicom_series import write_slices

    def edit(ds, k):
        del ds.ImageType
        ds.AcquisitionDate, ds.AcquisitionTime = "20261201", "101500"
        ds.DecayCorrection = "START"

    vol = np.zeros((24, 24, 24))
    vol[6:18, 6:18, 6:18] = 2e5
    folder = write_slices(tmp_path / "series", gaussian_filter(vol, 1.5), spacing=(4.8, 4.8),
                          step=(0, 0, 4.8), edit=edit)
    out = tmp_path / "out"
    code, _, err = _apply(capsys, "--input", folder, "--output", out, "--model", tiny_model, "--reconstruction", "RR")
    assert code == 0, err
    for file in sorted(out.iterdir()):
        ds = pydicom.dcmread(file)
        assert list(ds.ImageType[:2]) == ["DERIVED", "SECONDARY"] and "research use only" in ds.ImageComments
        assert ds.AcquisitionTime == "101500" and ds.DecayCorrection == "START"
    side = json.loads((tmp_path / "out.json").read_text())
    assert side["research_use_only"] == "research use only, not for diagnosis" and side["output_kind"] == "dicom"


def test_models_lists_each_model_with_its_domain(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "dlpvc_RR" in out and "the default for RR" in out and "voxel size: 4.56-5.04 mm" in out
    assert "dlpvc_noRR" in out and "the default for noRR" in out and "dlpvc_shipped" in out


def test_apply_help_ends_with_examples_and_exit_codes(capsys):
    assert main(["apply", "--help"]) == 0
    text = capsys.readouterr().out
    tail = text[text.index("examples:"):]
    assert tail.count("dlpvc apply --input") == 3 and "--ct" in tail and "exit codes:" in tail
    for code in (" 0 ", " 1 ", " 2 ", "130", "143"):
        assert code in tail.split("exit codes:")[1]


# ---- found by benchmarks/awkward_calls.py ------------------------------------------------------------

def test_a_sheared_affine_reports_the_true_totals(tiny_model, tmp_path, capsys):
    from pvc_core.geometry.resample import total_activity_mbq

    affine = _affine()
    affine[0, 1] = 2.0  # shear: the voxel volume is |det|, not the product of the edges
    src = _nifti(tmp_path / "a.nii.gz", affine=affine)
    code, _, err = _apply(capsys, "--input", src, "--output", tmp_path / "o.nii.gz", "--model", tiny_model,
                          "--reconstruction", "RR")
    side = json.loads((tmp_path / "o.json").read_text())
    truth = total_activity_mbq(load_image(src).data, load_image(src).affine)
    assert code == 0 and side["input_total_mbq"] == pytest.approx(truth, rel=1e-9)
    assert side["output_total_mbq"] == pytest.approx(truth, rel=1e-5)


@pytest.mark.parametrize("which", ["the output", "the sidecar"])
def test_a_summary_that_is_an_output_or_its_sidecar_refuses_the_call(which, tiny_model, tmp_path, capsys):
    src = _nifti(tmp_path / "a.nii.gz")
    summary = tmp_path / ("o.nii.gz" if which == "the output" else "o.json")
    code, _, err = _apply(capsys, "--input", src, "--output", tmp_path / "o.nii.gz", "--summary", summary,
                          "--model", tiny_model)
    assert code == 2 and len(err) == 1 and f"is {which} of" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nii.gz"]


def test_a_mixed_case_suffix_is_refused_before_anything_is_written(tiny_model, tmp_path, capsys):
    src = _nifti(tmp_path / "a.nii.gz")
    code, _, err = _apply(capsys, "--input", src, "--output", tmp_path / "b.Nii", "--model", tiny_model)
    assert code == 2 and len(err) == 1 and "lower or all upper case" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nii.gz"]


@pytest.mark.filterwarnings("ignore:Invalid value for VR CS:UserWarning")
def test_overwrite_never_replaces_a_folder_of_other_files_with_a_dicom_series(tiny_model, tmp_path, capsys):
    from helpers.dicom_series import write_slices

    folder = write_slices(tmp_path / "series", gaussian_filter(np.pad(np.full((12, 12, 12), 2e5), 6), 1.5),
                          spacing=(4.8, 4.8), step=(0, 0, 4.8))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("a physicist's notes")
    code, _, err = _apply(capsys, "--input", folder, "--output", mine, "--model", tiny_model, "--overwrite")
    assert code == 2 and len(err) == 1 and "folder of other files" in err[0]
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("model", ["text", ""])
def test_models_refuses_a_file_that_is_not_a_model(model, tmp_path, capsys):
    path = tmp_path / "m.pt"
    path.write_text("not a model")
    assert main(["models", "--model", str(path) if model else ""]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dlpvc models: ")


def test_ctrl_c_while_the_command_starts_exits_130_in_one_line(capsys, monkeypatch):
    import pvc_core.cli as cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["apply", "--help"]) == 130
    assert capsys.readouterr().err.strip() == "dlpvc: interrupted (SIGINT)"


def test_an_interrupt_after_the_sidecar_is_committed_keeps_both_and_counts_it_done(tiny_model, tmp_path, capsys,
                                                                                   monkeypatch):
    import pvc_core.io.atomic as atomic

    src = _nifti(tmp_path / "a.nii.gz")
    real, raised = atomic._fsync_folder, []

    def interrupt_after_the_json(folder):
        real(folder)
        if (folder / "o.json").exists() and not raised:
            raised.append(True)
            raise KeyboardInterrupt

    monkeypatch.setattr(atomic, "_fsync_folder", interrupt_after_the_json)
    summary = tmp_path / "s.jsonl"
    code, _, err = _apply(capsys, "--input", src, "--output", tmp_path / "o.nii.gz", "--model", tiny_model,
                          "--summary", summary)
    assert code == 130 and (tmp_path / "o.nii.gz").exists() and (tmp_path / "o.json").exists()
    assert json.loads(summary.read_text())["status"] == "done" and "1 of 1 image(s) written" in err[-1]


@pytest.mark.parametrize("output", [".", "/"])
def test_a_folder_named_as_a_nifti_output_is_refused(output, tiny_model, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = _nifti(tmp_path / "a.nii.gz")
    code, _, err = _apply(capsys, "--input", src, "--output", output, "--model", tiny_model)
    assert code == 2 and len(err) == 1 and "is a folder" in err[0]


def test_a_batch_with_stderr_closed_or_stdout_full_still_writes_everything(tiny_model, tmp_path):
    d = tmp_path / "in"
    for i in range(2):
        _nifti(d / f"p{i}.nii.gz", i)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    base = " ".join(f"'{a}'" for a in _cli("apply", "--input", d, "--model", tiny_model, "--reconstruction", "RR"))
    for out, redirect in (("o1", "2>&-"), ("o2", "> /dev/full")):
        res = subprocess.run(["bash", "-c", f"{base} --output '{tmp_path / out}' {redirect}"], capture_output=True,
                             text=True, timeout=300, env=env)
        assert res.returncode == 0, (redirect, res.stderr)
        assert sorted(p.name for p in (tmp_path / out).glob("*.nii.gz")) == ["p0_dlpvc.nii.gz", "p1_dlpvc.nii.gz"]


def test_a_mixed_case_input_suffix_is_refused_with_what_to_do(tiny_model, tmp_path, capsys):
    src = _nifti(tmp_path / "a.nii.gz")
    odd = tmp_path / "b.Nii.Gz"
    src.rename(odd)
    code, _, err = _apply(capsys, "--input", odd, "--output", tmp_path / "o.nii.gz", "--model", tiny_model)
    assert code == 2 and len(err) == 1 and "mixed-case suffix" in err[0]


def test_a_summary_inside_the_output_folder_of_a_folder_batch(tiny_model, tmp_path, capsys):
    d = tmp_path / "in"
    _nifti(d / "p.nii.gz")
    out = tmp_path / "out"
    code, _, err = _apply(capsys, "--input", d, "--output", out, "--model", tiny_model, "--reconstruction", "RR",
                          "--summary", out / "summary.jsonl")
    assert code == 0, err
    assert json.loads((out / "summary.jsonl").read_text())["status"] == "done"
