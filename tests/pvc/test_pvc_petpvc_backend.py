"""PETPVC backend: a clear error without the binaries; PETPVC's own result where they exist."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import PETPVC_CASE as CASE
from pvc_core.pvc import petpvc_backend
from pvc_core.pvc.petpvc_backend import PetpvcNotFoundError, run_petpvc_iy



def test_missing_binary_raises_a_clear_error(monkeypatch):
    monkeypatch.setattr(petpvc_backend.shutil, "which", lambda name: None)
    lab = np.zeros((8, 8, 8), np.int32)
    lab[2:5, 2:5, 2:5] = 1
    with pytest.raises(PetpvcNotFoundError) as err:
        run_petpvc_iy(np.ones((8, 8, 8), np.float32), lab, 10.0, (4.0, 4.0, 4.0), 10)
    message = str(err.value)
    assert "'petpvc' not found on PATH" in message and "envs/petpvc.yaml" in message
    assert "\n" not in message


@pytest.mark.skipif(shutil.which("petpvc") is None or shutil.which("pvc_make4d") is None,
                    reason="PETPVC binaries not on PATH (conda env envs/petpvc.yaml)")
def test_petpvc_binary_reproduces_the_reference_case():
    import nibabel as nib

    img = nib.load(str(CASE / "input.nii.gz"))
    labels = np.asarray(nib.load(str(CASE / "labels.nii.gz")).dataobj)
    out = run_petpvc_iy(np.asarray(img.dataobj, np.float32), labels, 10.0, img.header.get_zooms()[:3], 5)
    ref = np.asarray(nib.load(str(CASE / "iy_5it.nii.gz")).dataobj, np.float64)
    assert np.abs(out - ref).max() <= 1e-4 + 1e-4 * np.abs(ref).max()
