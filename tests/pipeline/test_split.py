"""Split: deterministic from (seed, n_cases, split settings); consumers drop unfinished cases."""

import pytest

from pvc_core.errors import InputError
from pvc_core.io import write_json
from pvc_core.pipeline.dataset_stages import make_split, usable_split
from pvc_core.specs import SplitSpec


def _manifests(tmp_path, failed=(), n=20):
    out = []
    for stage in ("recon_noRR", "recon_RR"):
        p = tmp_path / f"{stage}.json"
        write_json(p, {"stage": stage, "done": [c for c in range(n) if c not in failed],
                       "failed": {str(c): "boom" for c in failed}})
        out.append(str(p))
    return out


def test_split_is_deterministic_and_disjoint(tmp_path):
    a = make_split(SplitSpec(4, 3), 3, 20, str(tmp_path / "a.json"), log=lambda s: None)
    b = make_split(SplitSpec(4, 3), 3, 20, str(tmp_path / "b.json"), log=lambda s: None)
    assert a == b
    assert (len(a["test"]), len(a["validation"]), len(a["train"])) == (4, 3, 13)
    assert sorted(a["test"] + a["validation"] + a["train"]) == list(range(20))
    assert not set(a["test"]) & set(a["train"]) and not set(a["validation"]) & set(a["train"])
    assert make_split(SplitSpec(4, 3), 4, 20, str(tmp_path / "c.json"), log=lambda s: None) != a  # the seed matters


def test_failed_cases_leave_their_split_only(tmp_path):
    split = tmp_path / "a.json"
    full = make_split(SplitSpec(4, 3), 3, 20, str(split), log=lambda s: None)
    lost = full["test"][0]
    part = usable_split(str(split), _manifests(tmp_path, failed=(lost,)))
    assert part["test"] == full["test"][1:] and part["train"] == full["train"]
    assert part["failed"] in ({str(lost): "recon_noRR: boom"}, {str(lost): "recon_RR: boom"})


def test_no_finished_test_case_is_refused(tmp_path):
    split = tmp_path / "a.json"
    full = make_split(SplitSpec(2, 0), 3, 6, str(split), log=lambda s: None)
    with pytest.raises(InputError, match="no finished test case"):
        usable_split(str(split), _manifests(tmp_path, failed=tuple(full["test"]), n=6))
