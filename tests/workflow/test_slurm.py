"""The whole DAG on a real SLURM cluster through profiles/slurm (start one with scripts/start_slurm.sh).

Skipped, with the reason, where `sinfo` is not on PATH or no SLURM node is up. The test profile is
profiles/slurm/config.yaml with what differs on a one-node test cluster: the cluster's default
partition for every rule, no GPU, requests cut to the node's size, and job states from `squeue`
(the test cluster has no accounting database for `sacct`).
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from pvc_core.errors import InputError
from dlpvc_cluster.slurm_check import check_profile, parse_sinfo

pytestmark = pytest.mark.slurm

START = "start one with: bash scripts/start_slurm.sh"
RUN_TIMEOUT_S = 1800


def _sinfo() -> str:
    """`sinfo -h -o '%P %c %m %G'` of a cluster with a node up, else skip with the reason."""
    if shutil.which("sinfo") is None:
        pytest.skip(f"no SLURM here: 'sinfo' is not on PATH ({START})")
    try:
        states = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.skip(f"the SLURM controller does not answer within 20 s ({START})")
    if states.returncode != 0:
        pytest.skip(f"the SLURM cluster is not up: {states.stderr.strip()[-200:]} ({START})")
    if not any(s.strip().rstrip("*~#") in ("idle", "mixed", "allocated", "completing") for s in states.stdout.split()):
        pytest.skip(f"no SLURM node is up (sinfo states: {' '.join(states.stdout.split()) or 'none'}; {START})")
    return subprocess.run(["sinfo", "-h", "-o", "%P %c %m %G"], capture_output=True, text=True, timeout=20,
                          check=True).stdout


def _test_profile(directory: Path, sinfo: str) -> Path:
    """profiles/slurm adapted to the test cluster's default partition and its smallest node."""
    cluster = parse_sinfo(sinfo)
    partition = cluster.default_partition or sorted(cluster.partitions)[0]
    nodes = cluster.partitions[partition]
    cpus, mem_mb = min(n.cpus for n in nodes), min(n.mem_mb for n in nodes)
    small_mb = max(256, min(2000, mem_mb // 4))

    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    profile["default-resources"] = [f"slurm_partition={partition}", f"mem_mb={small_mb}", "runtime=60"]
    for resources in profile["set-resources"].values():
        resources.pop("slurm_partition", None)
        resources["gpu"] = 0
        resources["mem_mb"] = small_mb
        resources["runtime"] = 60
        resources["cpus_per_task"] = min(resources.get("cpus_per_task", 1), cpus)
    profile["set-threads"] = {rule: min(n, cpus) for rule, n in profile.get("set-threads", {}).items()}
    profile.update({
        "cores": cpus,
        "jobs": 4,
        "retries": 0,
        "latency-wait": 10,
        "slurm-status-command": "squeue",
        "slurm-init-seconds-before-status-checks": 5,
        "seconds-between-status-checks": 2,  # a test cluster answers at once; the default 10 s idles the DAG
        "slurm-keep-successful-logs": True,
    })
    directory.mkdir(parents=True)
    (directory / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return directory


@pytest.fixture(scope="module")
def sinfo() -> str:
    return _sinfo()


def test_profile_check_rejects_what_this_cluster_cannot_run(sinfo, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.yaml").write_text("set-resources:\n  train_network: {slurm_partition: dlpvc_no_such_partition}\n")
    with pytest.raises(InputError, match="dlpvc_no_such_partition"):
        check_profile(bad)
    (bad / "config.yaml").write_text("default-resources: [mem_mb=1000000000]\n")
    with pytest.raises(InputError, match="mem_mb=1000000000"):
        check_profile(bad)


@pytest.fixture(scope="module")
def slurm_run(sinfo, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("slurm_dag")
    profile = _test_profile(workdir / "profile", sinfo)
    check_profile(profile)  # the same check a user runs first, against the real sinfo
    config = yaml.safe_load((REPO / "config/test.yaml").read_text())
    config["training"]["datasets"] = ["RR_n"]  # one model: every rule still goes through sbatch, in fewer jobs
    config_path = workdir / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--workflow-profile", "none", "--profile", str(profile), "--configfile", str(config_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    return workdir, proc


def test_dag_runs_to_the_report_through_slurm(slurm_run):
    workdir, proc = slurm_run
    log = proc.stdout + proc.stderr
    errors = sorted({line.strip() for line in log.splitlines() if "Error in rule" in line or "ERROR:" in line})
    assert proc.returncode == 0, "\n".join(errors[:20]) + "\n...\n" + log[-3000:]
    assert "has been submitted with SLURM jobid" in log  # jobs went through sbatch, not local
    report = workdir / "results" / "test" / "report" / "report.html"
    assert report.is_file() and report.stat().st_size > 0
    assert list((workdir / "results" / "slurm_logs").rglob("*.log"))  # the profile's per-job log folder
