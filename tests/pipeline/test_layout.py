"""The run's layout (pvc_core.pipeline.paths.RunLayout): two roots, every path spelled once, the
stage order the rules and the plan follow; the per-case stages with the projections on their own
scratch root, end to end on config/test.yaml (one case)."""

from __future__ import annotations

import inspect
import re
from dataclasses import replace

import pytest

from conftest import REPO
from pvc_core.config import load_config
from pvc_core.pipeline import paths
from pvc_core.pipeline.paths import CASE_STAGES, STAGES, RunLayout
from pvc_core.specs import Settings


def _every_path(layout: RunLayout) -> dict[str, object]:
    """Each public path method of the layout called with placeholder arguments."""
    args = {"case_id": 17, "name": "x.nii.gz", "stage": "simulate", "noise": "nf", "shard": 3, "reconstruction": "RR",
            "training": "t", "dataset": "RR_n", "model": "m", "mask": "truth", "method": "rl", "suite": "main",
            "study": "min_feature_size", "job": "split"}
    out = {}
    for name, fn in inspect.getmembers(layout, inspect.ismethod):
        if name.startswith("_") or name in ("as_dict", "of"):
            continue
        params = list(inspect.signature(fn).parameters)
        out[name] = fn(*(args[p] for p in params))
    return out


def test_one_root_by_default_and_projections_alone_on_scratch(tmp_path):
    one = RunLayout(tmp_path / "r")
    assert one.scratch == one.results == tmp_path / "r"
    two = RunLayout(tmp_path / "r", tmp_path / "s")
    for name, path in _every_path(two).items():
        path = getattr(path, "path", path)  # model_folder gives a ModelFolder
        root = tmp_path / "s" if name.startswith(("projections_", "scratch_")) else tmp_path / "r"
        assert root in path.parents, (name, path)
    assert two.projections_header(17, "nf") == tmp_path / "s" / "cases" / "00017" / "proj_nf.hdr"
    assert RunLayout(**two.as_dict()) == two


def test_the_layout_of_a_configuration(tmp_path):
    cfg = load_config(REPO / "config" / "test.yaml")
    assert RunLayout.of(Settings.from_config(cfg)) == RunLayout("results/test")
    cfg["scratch_dir"] = str(tmp_path / "fast")
    assert RunLayout.of(Settings.from_config(cfg)).scratch == tmp_path / "fast"


def test_every_rule_stage_is_in_the_stage_order_and_the_snakefile_follows_it():
    stages_of_rules = set()
    first_stage_of_file = {}
    for smk in (REPO / "rules").glob("*.smk"):
        found = re.findall(r'fingerprint\("([^"]+)"\)', smk.read_text())
        stages_of_rules.update(found)
        if found:
            first_stage_of_file[smk.name] = min(STAGES.index(s) for s in found)
    assert stages_of_rules <= set(STAGES), stages_of_rules - set(STAGES)
    assert set(STAGES) - stages_of_rules == {"evaluate", "report"}  # fan-in records under their own job names
    includes = re.findall(r'include: "rules/(\w+\.smk)"', (REPO / "Snakefile").read_text())
    order = [first_stage_of_file[f] for f in includes if f in first_stage_of_file]
    assert order == sorted(order), includes
    case_stages = [s for s in STAGES if s in CASE_STAGES or s == "recon_{recon}"]
    assert [s.format(recon=r) for s in case_stages for r in (("noRR", "RR") if "{" in s else ("",))] == list(CASE_STAGES)


def test_a_case_goes_through_its_stages_with_the_projections_on_scratch(tmp_path, one_torch_thread):
    """phantom -> simulate -> noise -> both reconstructions -> prune, one case of config/test.yaml,
    results and scratch in two folders: the projections are written and read on scratch only,
    the rest on results, and pruning removes them from scratch."""
    from pvc_core.io import write_json
    from pvc_core.pipeline.case_stages import run_noise_shard, run_phantom_shard, run_reconstruct_shard, run_simulate_shard
    from pvc_core.pipeline.shards import ShardJob
    from pvc_core.pipeline.storage import prune_shard
    from pvc_core.spect.acquisition import AcquisitionChain

    s = Settings.from_config(load_config(REPO / "config" / "test.yaml"))
    layout = RunLayout(tmp_path / "results", tmp_path / "scratch")
    quiet = lambda _m: None  # noqa: E731

    def job(stage: str, upstream: tuple[str, ...] = ()) -> ShardJob:
        return ShardJob(0, [0], layout, str(layout.manifest(stage, 0)), "fp", {}, upstream, quiet)

    assert run_phantom_shard(job("phantom"), s.phantom, s.grid, s.seed)["done"] == [0]
    assert run_simulate_shard(job("simulate"), AcquisitionChain(s.camera, s.grid))["done"] == [0]
    assert run_noise_shard(job("noise"), s.seed)["done"] == [0]
    for name, recon in s.reconstructions.items():
        cal = tmp_path / f"cal_{name}.json"
        write_json(cal, {"factor": 1.0})
        assert run_reconstruct_shard(job(f"recon_{name}"), AcquisitionChain(s.camera, s.grid, (recon,)), recon,
                                     str(cal))["done"] == [0]
    on_scratch = sorted(p.name for p in layout.scratch_case_dir(0).iterdir())
    assert on_scratch and all(n.startswith("proj_") for n in on_scratch)
    on_results = sorted(p.name for p in layout.case_dir(0).iterdir())
    assert not any(n.startswith("proj_") for n in on_results)
    assert {paths.TRUTH, paths.MU, paths.recon_name("RR_n"), paths.recon_name("noRR_nf")} <= set(on_results)
    record = prune_shard(0, [0], replace(s.storage, keep_projections=False), layout,
                         [str(layout.manifest(f"recon_{r}", 0)) for r in s.reconstructions], str(tmp_path / "prune.json"),
                         log=quiet)
    assert record["bytes"]["0"]["projections"] > 0 and record["removed"]["0"] >= record["bytes"]["0"]["projections"]
    assert not list(layout.scratch_case_dir(0).iterdir())


@pytest.mark.parametrize("bad", ["", None])
def test_an_unset_scratch_is_the_results_folder(tmp_path, bad):
    cfg = load_config(REPO / "config" / "test.yaml")
    cfg["scratch_dir"] = bad
    assert RunLayout.of(Settings.from_config(cfg)).scratch == RunLayout.of(Settings.from_config(cfg)).results
