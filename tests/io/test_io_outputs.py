"""Output paths are checked before any computation; the error names the option."""

import os

import pytest

from pvc_core.errors import InputError
from pvc_core.io import require_nifti_output, require_output_folder


@pytest.mark.parametrize("name", ["out", "out.txt", "out.nii.zip", ".nii.gz"])
def test_nifti_output_needs_a_nifti_name(tmp_path, name):
    with pytest.raises(InputError, match="^--output: .*nii"):
        require_nifti_output(tmp_path / name)


@pytest.mark.parametrize("name", ["out.nii", "out.nii.gz", "OUT.NII.GZ"])
def test_nifti_names_are_accepted(tmp_path, name):
    assert require_nifti_output(tmp_path / name) == tmp_path / name


def test_nifti_output_refuses_folders_and_missing_parents(tmp_path):
    (tmp_path / "dir.nii.gz").mkdir()
    with pytest.raises(InputError, match="existing folder"):
        require_nifti_output(tmp_path / "dir.nii.gz")
    with pytest.raises(InputError, match="does not exist"):
        require_nifti_output(tmp_path / "missing" / "out.nii.gz")
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="not a folder"):
        require_nifti_output(tmp_path / "file" / "out.nii.gz")


def test_nifti_output_refuses_to_replace_an_input(tmp_path):
    (tmp_path / "in.nii.gz").write_bytes(b"")
    with pytest.raises(InputError, match="also an input"):
        require_nifti_output(tmp_path / "in.nii.gz", inputs=[tmp_path / "x.nii.gz", tmp_path / "in.nii.gz"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_unwritable_parent(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(InputError, match="not writable"):
            require_nifti_output(locked / "out.nii.gz")
        with pytest.raises(InputError, match="not writable"):
            require_output_folder(locked / "new" / "sim")
    finally:
        locked.chmod(0o700)


def test_output_folder(tmp_path):
    assert require_output_folder(tmp_path / "new" / "sim") == tmp_path / "new" / "sim"  # parents created later
    assert require_output_folder(tmp_path) == tmp_path  # empty folder
    (tmp_path / "f.nii.gz").write_text("")
    with pytest.raises(InputError, match="^--output: .*existing file"):
        require_output_folder(tmp_path / "f.nii.gz")
    with pytest.raises(InputError, match="not empty"):
        require_output_folder(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        require_output_folder(tmp_path / "f.nii.gz" / "sim")


def test_unwritable_parent_as_seen_by_os_access(tmp_path, monkeypatch):
    """The same check where the tests run as root (os.access says what the user may do)."""
    import pvc_core.io.outputs as outputs

    monkeypatch.setattr(outputs.os, "access", lambda path, mode: False)
    with pytest.raises(InputError, match="^--output: .*not writable"):
        require_nifti_output(tmp_path / "out.nii.gz")
    with pytest.raises(InputError, match="not writable"):
        require_output_folder(tmp_path / "sim")
