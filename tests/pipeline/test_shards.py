"""Shards: cases are skipped when done, failures are recorded and retried, never finished cases."""

import pytest

from pvc_core.pipeline.shards import n_shards, read_manifest, retry_token, run_shard, shard_cases


def test_shard_cover_every_case_once():
    cases = [c for s in range(n_shards(23, 5)) for c in shard_cases(s, 23, 5)]
    assert cases == list(range(23))
    assert n_shards(23, 5) == 5 and shard_cases(4, 23, 5) == [20, 21, 22]
    with pytest.raises(ValueError):
        shard_cases(5, 23, 5)


def test_failure_is_recorded_and_only_failed_cases_rerun(tmp_path):
    done, calls = set(), []
    broken = {2}

    def process(case):
        calls.append(case)
        if case in broken:
            raise RuntimeError(f"corrupt input of case {case}\nsecond line")
        done.add(case)

    m = tmp_path / "m.json"
    first = run_shard("phantom", 0, [0, 1, 2, 3], is_done=done.__contains__, process=process, manifest_path=m, log=lambda s: None)
    assert first["done"] == [0, 1, 3] and list(first["failed"]) == ["2"]
    assert first["failed"]["2"] == "RuntimeError: corrupt input of case 2"
    token1 = retry_token(m)
    assert token1 == "retry:2#1"

    broken.clear()
    calls.clear()
    second = run_shard("phantom", 0, [0, 1, 2, 3], is_done=done.__contains__, process=process, manifest_path=m, log=lambda s: None)
    assert calls == [2]  # only the failed case was redone
    assert second["skipped"] == [0, 1, 3] and second["failed"] == {} and second["attempt"] == 2
    assert retry_token(m) == ""


def test_retry_token_changes_on_every_failed_attempt(tmp_path):
    m = tmp_path / "m.json"
    assert retry_token(m) == ""  # no manifest yet
    for attempt in (1, 2):
        run_shard("noise", 0, [5], is_done=lambda c: False, process=lambda c: 1 / 0, manifest_path=m, log=lambda s: None)
        assert retry_token(m) == f"retry:5#{attempt}"
    assert read_manifest(m)["attempt"] == 2


def test_upstream_failure_is_passed_on(tmp_path):
    m = tmp_path / "m.json"
    out = run_shard("noise", 0, [1, 2], is_done=lambda c: False, process=lambda c: None, manifest_path=m,
                    upstream_failed={2: "simulate: boom"}, log=lambda s: None)
    assert out["done"] == [1] and out["failed"] == {"2": "not run: simulate: boom"}


def test_invalidated_done_case_changes_the_token(tmp_path):
    m = tmp_path / "m.json"
    markers = {0, 1, 2}
    run_shard("simulate", 0, [0, 1, 2], is_done=lambda c: False, process=lambda c: None, manifest_path=m, log=lambda s: None)
    assert retry_token(m, markers.__contains__) == ""
    markers.discard(1)  # a downstream stage found case 1's output corrupt and removed its marker
    assert retry_token(m, markers.__contains__) == "retry:1#1"


def test_corrupt_upstream_input_invalidates_the_producer(tmp_path):
    from pvc_core.pipeline.case_stages import run_noise_shard
    from pvc_core.pipeline.paths import RunLayout
    from pvc_core.pipeline.shards import ShardJob

    layout = RunLayout(tmp_path / "results", tmp_path / "scratch")  # the projections on their own root
    marker = layout.case_file(3, "simulate.json")
    marker.parent.mkdir(parents=True)
    marker.write_text("{}")
    layout.projections_header(3, "nf").parent.mkdir(parents=True)
    layout.projections_header(3, "nf").write_text("garbage\x00")
    out = run_noise_shard(ShardJob(0, [3], layout, str(tmp_path / "noise.json"), "fp", {}, log=lambda s: None), 1)
    assert "input from stage 'simulate' is unreadable" in out["failed"]["3"]
    assert not marker.exists()


def test_token_is_stable_after_a_successful_retry(tmp_path):
    m = tmp_path / "m.json"
    fail = {1}

    def process(case):
        if case in fail:
            raise RuntimeError("boom")

    run_shard("noise", 0, [0, 1], is_done=lambda c: False, process=process, manifest_path=m, log=lambda s: None)
    token = retry_token(m)
    assert token == "retry:1#1"
    fail.clear()
    m.unlink()  # Snakemake deletes a job's output before it runs the job ...
    assert retry_token(m) == token  # ... and the job, in its own process, computes the same token
    run_shard("noise", 0, [0, 1], is_done=lambda c: False, process=process, manifest_path=m, log=lambda s: None, token=token)
    assert retry_token(m) == token  # unchanged: the next run sees no parameter change and does nothing


def test_attempts_count_across_deleted_manifests(tmp_path):
    """A case that fails again gets a new token even though Snakemake deleted the manifest in between."""
    m = tmp_path / "m.json"
    tokens = []
    for _ in range(3):
        m.unlink(missing_ok=True)
        run_shard("noise", 0, [4], is_done=lambda c: False, process=lambda c: 1 / 0, manifest_path=m,
                  log=lambda s: None, token=retry_token(m))
        tokens.append(retry_token(m))
    assert tokens == ["retry:4#1", "retry:4#2", "retry:4#3"]
