"""The planner of ``dlpvc apply`` (:func:`pvc_core.apply.plan.plan_apply`): known answers, and a
property test over random folders, symlinks, hard links, outputs and flags: no plan ever writes to
an input, an input's sidecar, another job's output or (without ``--overwrite``) an existing file."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pvc_core.apply.plan import CORRECT, REFUSE, SKIP, input_sidecar, plan_apply, resolved
from pvc_core.errors import InputError
from pvc_core.io import save_image


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """One valid 16^3 NIfTI image (4.8 mm) to copy."""
    return save_image(tmp_path_factory.mktemp("tpl") / "t.nii.gz", np.ones((16, 16, 16), np.float32) * 0.5,
                      np.diag([4.8, 4.8, 4.8, 1.0]))


def test_plan_reads_no_voxels_and_writes_nothing(template, tmp_path):
    import nibabel as nib

    src = tmp_path / "a.nii"  # uncompressed, then cut after its header: the voxels cannot be read
    nib.save(nib.load(template), src)
    src.write_bytes(src.read_bytes()[:400])
    before = sorted(tmp_path.rglob("*"))
    plan = plan_apply([str(src), str(src)], [str(tmp_path / "o.nii.gz"), str(tmp_path / "new" / "o")], None)
    assert plan.jobs[0].action == CORRECT  # planned from the header alone
    assert plan.jobs[1].action == REFUSE and "*.nii.gz or *.nii" in plan.jobs[1].reasons[0]
    assert sorted(tmp_path.rglob("*")) == before


def test_call_level_problems_raise(template, tmp_path):
    src = tmp_path / "a.nii.gz"
    shutil.copy(template, src)
    with pytest.raises(InputError, match="--output"):
        plan_apply([str(src)], [], None)
    with pytest.raises(InputError, match="empty path"):
        plan_apply([""], ["o.nii.gz"], None)
    with pytest.raises(InputError, match="not both"):
        plan_apply([str(src)], [str(tmp_path / "o.nii.gz")], None, overwrite=True, skip_existing=True)


def test_folder_mode_names_and_hidden_temporaries(template, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    shutil.copy(template, d / "x.nii.gz")
    shutil.copy(template, d / ".dlpvc-tmp-123-0.y.nii.gz")  # a temporary of an interrupted run
    plan = plan_apply([str(d)], [str(tmp_path / "out")], None)
    assert [(j.input.name, j.output.name, j.sidecar.name, j.action) for j in plan.jobs] == \
        [("x.nii.gz", "x_dlpvc.nii.gz", "x_dlpvc.json", CORRECT)]
    assert plan.output_folder == tmp_path / "out" and not (tmp_path / "out").exists()


NAMES = ["a.nii.gz", "b.nii", "a.nii", "a.json", "b.json", "c.nii.gz", "c.json", "sub/a.nii.gz", "sub/d.nii.gz",
         "sub/../a.nii.gz", "link.nii.gz", "hard.nii.gz", "sub/link.json"]


@st.composite
def scenarios(draw):
    inputs = draw(st.lists(st.sampled_from(["a.nii.gz", "b.nii", "a.nii", "c.nii.gz", "sub/d.nii.gz"]), min_size=1,
                           max_size=4))
    outputs = draw(st.lists(st.sampled_from(NAMES), min_size=len(inputs), max_size=len(inputs)))
    existing = draw(st.sets(st.sampled_from(["a.json", "b.json", "c.json", "c.nii.gz", "sub/a.nii.gz", "a.nii"])))
    link_to = draw(st.sampled_from(inputs + ["c.json", "sub/a.nii.gz"]))
    flags = draw(st.sampled_from([(False, False), (True, False), (False, True)]))
    return inputs, outputs, existing, link_to, flags


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenarios())
def test_no_plan_writes_to_an_input_its_sidecar_another_output_or_unasked_an_existing_file(template, scenario):
    inputs, outputs, existing, link_to, (overwrite, skip_existing) = scenario
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "sub").mkdir()
        for name in set(inputs) | existing:
            if name.endswith(".json"):
                (root / name).write_text('{"a": 1}')
            else:
                shutil.copy(template, root / name)
        (root / "link.nii.gz").symlink_to(root / link_to)
        os.link(root / inputs[0], root / "hard.nii.gz")
        (root / "sub" / "link.json").symlink_to(root / "a.json")
        before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
        plan = plan_apply([str(root / i) for i in inputs], [str(root / o) for o in outputs], None,
                          overwrite=overwrite, skip_existing=skip_existing)
        assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before  # the planner writes nothing

        protected = set()
        for i in inputs:
            protected |= {resolved(root / i), resolved(input_sidecar(root / i))}
        protected_inodes = {(os.stat(p).st_dev, os.stat(p).st_ino) for p in protected if p.exists()}
        written: list[Path] = []
        for job in plan.jobs:
            assert job.action in (CORRECT, SKIP, REFUSE)
            if job.action != CORRECT:
                continue
            for target in (job.output, job.sidecar):
                r = resolved(target)
                assert r not in protected, (job, r)
                if r.exists():
                    assert (os.stat(r).st_dev, os.stat(r).st_ino) not in protected_inodes, (job, r)
                    assert overwrite or (target == job.sidecar and job.replace), (job, r)
                written.append(r)
        assert len(written) == len(set(written))
