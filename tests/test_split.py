"""Split: deterministic from (seed, case id), failed cases drop out and are listed."""

from pvc_core.config import validate_config
from pvc_core.io import write_json
from pvc_core.pipeline.dataset_stages import make_split


def _manifests(tmp_path, failed=()):
    out = []
    for stage in ("recon_noRR", "recon_RR"):
        p = tmp_path / f"{stage}.json"
        write_json(p, {"stage": stage, "done": [c for c in range(20) if c not in failed],
                       "failed": {str(c): "boom" for c in failed}})
        out.append(str(p))
    return out


def test_split_is_deterministic_and_disjoint(tmp_path):
    cfg = validate_config({"seed": 3, "n_cases": 20, "split": {"n_test": 4, "n_validation": 3}})
    a = make_split(cfg, _manifests(tmp_path), str(tmp_path / "a.json"), log=lambda s: None)
    b = make_split(cfg, _manifests(tmp_path), str(tmp_path / "b.json"), log=lambda s: None)
    assert a == b
    assert (len(a["test"]), len(a["validation"]), len(a["train"])) == (4, 3, 13)
    assert not set(a["test"]) & set(a["train"]) and not set(a["validation"]) & set(a["train"])


def test_failed_cases_leave_their_split_only(tmp_path):
    cfg = validate_config({"seed": 3, "n_cases": 20, "split": {"n_test": 4, "n_validation": 3}})
    full = make_split(cfg, _manifests(tmp_path), str(tmp_path / "a.json"), log=lambda s: None)
    lost = full["test"][0]
    part = make_split(cfg, _manifests(tmp_path, failed=(lost,)), str(tmp_path / "b.json"), log=lambda s: None)
    assert part["test"] == full["test"][1:] and part["train"] == full["train"]
    assert part["failed"] == {str(lost): "recon_noRR: boom"} or part["failed"] == {str(lost): "recon_RR: boom"}
