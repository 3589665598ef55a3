"""SLURM profile check against a fake `sinfo`: missing partitions and oversized requests fail with one line."""

import re

import pytest
import yaml

from conftest import REPO
from pvc_core.errors import InputError
from dlpvc_cluster.slurm_check import check_profile, main, parse_sinfo, profile_requests

# `sinfo -h -o '%P %c %m %G %l'` of a small cluster: two node sizes in `cpu` (the default, no time
# limit), a GPU partition with typed GPUs, socket bindings and a 2-day limit, a partition without nodes.
SINFO = """\
cpu* 32 128000 (null) infinite
cpu* 64 256000 (null) infinite
gpu 16 192000 gpu:a100:4(S:0-1) 2-00:00:00
empty n/a n/a (null) 1:00:00
"""


def _profile(tmp_path, text):
    (tmp_path / "config.yaml").write_text(text)
    return tmp_path


def _error(tmp_path, text):
    profile = _profile(tmp_path, text)
    with pytest.raises(InputError) as err:
        check_profile(profile, SINFO)
    message = str(err.value)
    assert "\n" not in message and str(profile / "config.yaml") in message
    return message


def test_sinfo_parsed_into_partitions_nodes_gpus_and_time_limits():
    cluster = parse_sinfo(SINFO + "mixed 8 1000 gpu:2,shard:8\n")
    assert cluster.default_partition == "cpu"
    assert cluster.time_limit_min == {"cpu": None, "gpu": 2880, "empty": 60, "mixed": None}
    assert [(n.cpus, n.mem_mb, n.gpus) for n in cluster.partitions["cpu"]] == [(32, 128000, 0), (64, 256000, 0)]
    assert cluster.partitions["gpu"][0].gpus == 4
    assert cluster.partitions["mixed"][0].gpus == 2
    assert cluster.partitions["empty"][0].cpus == 0


def test_fitting_profile_passes(tmp_path):
    check_profile(_profile(tmp_path, """
default-resources: [slurm_partition=cpu, mem_mb=2000, runtime=60]
set-threads: {train_network: 8}
set-resources:
  reconstruct_osem: {mem_mb: 250000, cpus_per_task: 64}
  train_network: {slurm_partition: gpu, gpu: 4, mem: 150G, runtime: 48h}
"""), SINFO)


def test_missing_partition_named_with_the_rule_and_the_choices(tmp_path):
    message = _error(tmp_path, """
default-resources: [slurm_partition=cpu]
set-resources:
  train_network: {slurm_partition: gpu_long, gpu: 1}
""")
    assert "set-resources: train_network" in message and "'gpu_long' does not exist" in message
    assert "cpu, empty, gpu" in message


def test_missing_default_partition(tmp_path):
    message = _error(tmp_path, "default-resources:\n  - slurm_partition=batch\n")
    assert "default-resources" in message and "'batch'" in message


def test_too_much_memory_for_any_node_of_the_partition(tmp_path):
    message = _error(tmp_path, """
default-resources: [slurm_partition=cpu, mem_mb=2000]
set-resources:
  simulate_projections: {mem_mb: 300000}
""")
    assert "simulate_projections" in message and "mem_mb=300000" in message and "256000 MB" in message


def test_memory_as_size_string_and_per_cpu(tmp_path):
    assert "mem_mb=300000" in _error(tmp_path, "set-resources:\n  a: {mem: 300GB}\n")
    # 16 CPUs x 20 GB > 256 GB on the largest cpu node
    assert "mem_mb=320000" in _error(tmp_path, "set-resources:\n  a: {cpus_per_task: 16, mem_mb_per_cpu: 20000}\n")


def test_too_many_cpus_from_cpus_per_task_or_threads(tmp_path):
    assert "65 CPU(s)" in _error(tmp_path, "set-resources:\n  a: {cpus_per_task: 65}\n")
    message = _error(tmp_path, "set-threads: {train_network: 24}\nset-resources:\n  train_network: {slurm_partition: gpu}\n")
    assert "24 CPU(s)" in message and "'gpu' has 16" in message


def test_gpus_in_a_partition_without_gpus_and_too_many_gpus(tmp_path):
    assert "no GPUs" in _error(tmp_path, "set-resources:\n  train_network: {gpu: 1}\n")
    assert "at most 4" in _error(tmp_path, "set-resources:\n  t: {slurm_partition: gpu, gres: 'gpu:a100:8'}\n")


def test_runtime_beyond_the_partition_time_limit(tmp_path):
    message = _error(tmp_path, "set-resources:\n  train_network: {slurm_partition: gpu, gpu: 1, runtime: 2881}\n")
    assert "runtime=2881 min" in message and "at most 2880 min" in message
    assert "runtime=4320 min" in _error(tmp_path, "set-resources:\n  t: {slurm_partition: gpu, runtime: 3d}\n")


def test_request_no_single_node_can_hold(tmp_path):
    # 32 CPUs fit the first node and 100 GB the second, but no node has both.
    sinfo = "p 64 1000 (null)\np 2 500000 (null)\n"
    profile = _profile(tmp_path, "set-resources:\n  a: {slurm_partition: p, cpus_per_task: 32, mem_mb: 100000}\n")
    with pytest.raises(InputError, match="no node of partition 'p' has 32 CPUs, 100000 MB"):
        check_profile(profile, sinfo)


def test_rule_values_override_defaults_and_further_problems_are_counted(tmp_path):
    profile = _profile(tmp_path, """
default-resources: [slurm_partition=nope, mem_mb=999999]
set-resources:
  a: {slurm_partition: cpu, mem_mb: 1000}
  b: {cpus_per_task: 2}
""")
    with pytest.raises(InputError) as err:
        check_profile(profile, SINFO)
    assert "default-resources: partition 'nope'" in str(err.value) and "(and 1 more problem)" in str(err.value)
    assert [r.partition for r in profile_requests(profile)[1]] == ["nope", "cpu", "nope"]


def test_repository_profile_is_read_with_its_gpu_request():
    _, requests = profile_requests(REPO / "profiles" / "slurm")
    train = next(r for r in requests if r.where == "set-resources: train_network")
    assert train.gpus >= 1 and train.cpus >= 1 and train.mem_mb and train.partition


def test_repository_profile_sizes_every_submitted_rule():
    """A new rule in rules/*.smk needs its SLURM size in profiles/slurm (or a place in `localrules`)."""
    rules = {m for f in (REPO / "rules").glob("*.smk") for m in re.findall(r"^rule (\w+):", f.read_text(), re.M)}
    block = re.search(r"^localrules:\n((?:[ \t]+\w+,?\n)+)", (REPO / "Snakefile").read_text(), re.M)
    local = set(re.findall(r"\w+", block.group(1))) if block else set()
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert rules - local - set(profile["set-resources"]) == set()


def test_command_exit_codes(tmp_path, capsys):
    sinfo = tmp_path / "sinfo.txt"
    sinfo.write_text(SINFO)
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    _profile(good, "set-resources:\n  a: {mem_mb: 1}\n")
    assert main([str(good), "--sinfo-output", str(sinfo)]) == 0
    _profile(bad, "default-resources: [slurm_partition=gpu2]\n")
    assert main([str(bad), "--sinfo-output", str(sinfo)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "gpu2" in err
    assert main([str(tmp_path / "missing"), "--sinfo-output", str(sinfo)]) == 2


def test_repository_profile_resubmits_a_timed_out_training(tmp_path):
    """train_network gets `preemptible-retries` attempts (it resumes from its checkpoint), every other
    rule `retries`; Snakemake honours that with any executor (run here with the local one, and fewer
    attempts than the profile's, to be quick)."""
    import subprocess
    import sys

    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["preemptible-rules"] == ["train_network"]
    assert profile["preemptible-retries"] >= 3 > profile["retries"] >= 0
    # each rule fails (as a job killed at its time limit) until its attempt number exceeds its n
    body = "n=$(($(cat {1} 2>/dev/null || echo 0) + 1)); echo $n > {1}; [ $n -gt {0} ] && touch {{output}}"
    (tmp_path / "Snakefile").write_text(
        "rule all:\n    input: 'model.pt', 'other.txt'\n"
        f"rule train_network:\n    output: 'model.pt'\n    shell: '{body.format(2, 'train.n')}'\n"
        f"rule other:\n    output: 'other.txt'\n    shell: '{body.format(1, 'other.n')}'\n")
    local = tmp_path / "profile"
    local.mkdir()
    (local / "config.yaml").write_text(yaml.safe_dump(
        {"retries": 0, "preemptible-rules": profile["preemptible-rules"], "preemptible-retries": 2, "cores": 1}))
    run = subprocess.run([sys.executable, "-m", "snakemake", "--profile", str(local), "--workflow-profile", "none",
                          "--keep-going", "--directory", str(tmp_path), "--snakefile", str(tmp_path / "Snakefile")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode != 0  # `other` failed its only attempt
    assert (tmp_path / "model.pt").is_file() and (tmp_path / "train.n").read_text().strip() == "3"
    assert not (tmp_path / "other.txt").exists() and (tmp_path / "other.n").read_text().strip() == "1"
