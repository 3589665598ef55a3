"""Check a SLURM profile against the cluster before any job is submitted.

A profile that names a partition the cluster lacks, or asks for more memory, CPUs or GPUs than any
node of a partition has, would otherwise fail only when ``sbatch`` rejects a job, perhaps hours into
a run. :func:`check_profile` compares what the profile requests with what ``sinfo`` reports and
raises :class:`~pvc_core.errors.InputError` with one line naming the profile file, the rule and
the resource::

    python -m dlpvc_cluster.slurm_check profiles/slurm        # exit 0: fits, 2: one line why

What is checked, per entry of ``set-resources`` and for ``default-resources`` (the rules that
``set-resources`` does not name): the partition (``slurm_partition``, else the cluster's default
partition) exists, one of its nodes has at least the requested CPUs (``cpus_per_task``, else
``set-threads``, else 1), memory (``mem_mb``, ``mem`` or ``mem_mb_per_cpu`` x CPUs; MB) and GPUs
(``gpu``, ``gpu_model`` or a ``gres`` ``gpu[:type]:N``) together, and ``runtime`` (minutes) is
within the partition's time limit (a longer job would wait forever with reason
PartitionTimeLimit). Values that are Python expressions (e.g. ``attempt * 4000``) are evaluated
with ``attempt=1``. Only the profile is read: a resource that a rule declares itself and the
profile does not override is not seen, which is why profiles/slurm sizes every submitted rule
(tests/workflow/test_slurm_check.py keeps it so).

Units: memory in MB as ``sbatch --mem`` and ``sinfo``'s ``%m`` count it (the plugin passes
``mem_mb`` to ``--mem`` unchanged; ``mem: 16G`` is 16000 MB as in Snakemake); CPUs and GPUs are
counts per node.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from pvc_core.errors import InputError

SINFO_COMMAND = ["sinfo", "-h", "-o", "%P %c %m %G %l"]
DEFAULT_KEY = "default-resources"
_TIMESPAN_MIN = {"s": 1 / 60, "m": 1.0, "h": 60.0, "d": 1440.0, "w": 10080.0}
_SIZE_UNITS_MB = {"": 1.0, "b": 1e-6, "k": 1e-3, "m": 1.0, "g": 1e3, "t": 1e6, "p": 1e9}
_BINARY_UNITS_MB = {"ki": 1024 / 1e6, "mi": 1024**2 / 1e6, "gi": 1024**3 / 1e6, "ti": 1024**4 / 1e6}


@dataclass(frozen=True)
class NodeSize:
    """What one node of a partition offers: CPUs, memory in MB and GPUs."""

    cpus: int
    mem_mb: int
    gpus: int

    def describe(self) -> str:
        return f"{self.cpus} CPUs, {self.mem_mb} MB, {self.gpus} GPUs"


@dataclass(frozen=True)
class JobRequest:
    """What the jobs of one profile entry ask for; ``None`` where nothing is requested.

    ``where`` names the profile entry (``set-resources: train_network`` or ``default-resources``).
    """

    where: str
    partition: str | None
    cpus: int
    mem_mb: int | None
    gpus: int
    runtime_min: int | None = None


@dataclass(frozen=True)
class Cluster:
    """Partitions (name -> sizes of their nodes), the default partition (or ``None``) and each
    partition's time limit in minutes (``None``: unlimited or not reported)."""

    partitions: dict[str, list[NodeSize]]
    default_partition: str | None
    time_limit_min: dict[str, int | None]


# -- the cluster ------------------------------------------------------------------------------


def _count(text: str, what: str) -> int:
    if text.strip().lower() == "n/a":  # a partition without nodes
        return 0
    match = re.match(r"^(\d+)", text.strip())
    if not match:
        raise ValueError(f"cannot read {what} from sinfo field {text!r}")
    return int(match.group(1))


def _gpus_in_gres(gres: str) -> int:
    """GPUs in a GRES list such as ``gpu:a100:4(S:0-1),shard:8``; ``(null)`` has none."""
    total = 0
    for item in re.split(r",(?![^(]*\))", gres.strip()):
        item = re.sub(r"\(.*?\)", "", item).strip()
        fields = item.split(":")
        if fields[0] != "gpu":
            continue
        last = fields[-1] if len(fields) > 1 else "1"
        total += int(last) if last.isdigit() else 1
    return total


def _sinfo_minutes(text: str) -> int | None:
    """A SLURM time limit (``infinite``, ``2-00:00:00``, ``12:00:00``, ``30:00``, ``45``) in minutes."""
    days, _, clock = text.strip().rpartition("-")
    parts = clock.split(":")
    if not all(p.isdigit() for p in parts) or (days and not days.isdigit()) or len(parts) > 3:
        return None  # infinite, UNLIMITED, n/a
    numbers = [int(p) for p in parts]
    hours, minutes, seconds = ([0] * (3 - len(numbers)) + numbers) if len(numbers) > 1 else (0, numbers[0], 0)
    return int(days or 0) * 1440 + hours * 60 + minutes + (1 if seconds else 0)


def parse_sinfo(text: str) -> Cluster:
    """Partitions, node sizes and time limits from the output of ``sinfo -h -o '%P %c %m %G %l'``.

    One line per partition and group of alike nodes: name (``*`` marks the default partition),
    CPUs per node, memory per node in MB, generic resources (``gpu:2``, ``gpu:a100:4(S:0-1)``,
    ``(null)``) and, optionally, the partition's time limit.
    """
    partitions: dict[str, list[NodeSize]] = {}
    time_limit: dict[str, int | None] = {}
    default = None
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 3:
            raise ValueError(f"unexpected sinfo line {line!r} (expected '%P %c %m %G %l')")
        name = fields[0]
        if name.endswith("*"):
            name = name[:-1]
            default = name
        gres = fields[3] if len(fields) > 3 else "(null)"
        node = NodeSize(cpus=_count(fields[1], "CPUs"), mem_mb=_count(fields[2], "memory"), gpus=_gpus_in_gres(gres))
        partitions.setdefault(name, []).append(node)
        time_limit[name] = _sinfo_minutes(fields[4]) if len(fields) > 4 else None
    return Cluster(partitions, default, time_limit)


def query_sinfo(timeout_s: float = 30.0) -> str:
    """Output of ``sinfo -h -o '%P %c %m %G %l'`` on this machine (raises InputError when unavailable)."""
    if shutil.which(SINFO_COMMAND[0]) is None:
        raise InputError("'sinfo' is not on PATH: run the check on a SLURM login node", "sinfo")
    try:
        proc = subprocess.run(SINFO_COMMAND, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as err:
        raise InputError(f"no answer from the SLURM controller within {timeout_s:g} s", "sinfo") from err
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise InputError(f"failed (exit {proc.returncode}): {reason}", "sinfo")
    return proc.stdout


# -- the profile ------------------------------------------------------------------------------


def profile_file(profile: str | Path) -> Path:
    """The YAML file of a profile: ``PROFILE/config.yaml`` (or ``profile.yaml``), or the file itself."""
    path = Path(profile)
    if path.is_file():
        return path
    for name in ("config.yaml", "profile.yaml"):
        if (path / name).is_file():
            return path / name
    raise InputError("no such profile (expected a folder with config.yaml)", str(path))


def _assignments(value: Any, where: str, source: Path) -> dict[str, Any]:
    """``{name: value}`` from a profile mapping or a list of ``NAME=VALUE`` strings."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        out = {}
        for item in value:
            name, sep, val = str(item).partition("=")
            if not sep:
                raise InputError(f"{where}: entry {item!r} is not NAME=VALUE", str(source))
            out[name.strip()] = val.strip()
        return out
    raise InputError(f"{where}: expected a mapping or a list of NAME=VALUE", str(source))


def _set_resources(value: Any, source: Path) -> dict[str, dict[str, Any]]:
    """``{rule: {resource: value}}`` from ``set-resources`` (mapping or ``RULE:NAME=VALUE`` list)."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {rule: _assignments(res, f"set-resources: {rule}", source) for rule, res in value.items()}
    if isinstance(value, list):
        out: dict[str, dict[str, Any]] = {}
        for item in value:
            rule, sep, assignment = str(item).partition(":")
            if not sep:
                raise InputError(f"set-resources: entry {item!r} is not RULE:NAME=VALUE", str(source))
            out.setdefault(rule.strip(), {}).update(_assignments([assignment], "set-resources", source))
        return out
    raise InputError("set-resources: expected a mapping of rules", str(source))


def _value(raw: Any) -> Any:
    """A resource value as Snakemake reads it: number, quoted or bare string, or expression (attempt=1)."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return raw
    text = str(raw).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return eval(text, {"__builtins__": {"min": min, "max": max, "int": int, "round": round}}, {"attempt": 1})
    except Exception:  # noqa: BLE001 - a bare word such as a partition name is a string for Snakemake too
        return text


def _size_mb(raw: Any, name: str, where: str, source: Path) -> int:
    """Memory in MB from a number (MB) or a size such as ``16G``, ``16 GB``, ``4000MB``, ``8GiB``."""
    value = _value(raw)
    if isinstance(value, (int, float)):
        return int(value)
    match = re.fullmatch(r"\s*([\d.]+)\s*([kmgtpKMGTP]?[iI]?)[bB]?\s*", str(value))
    if not match:
        raise InputError(f"{where}: {name}={value!r} is not a memory size", str(source))
    number, unit = float(match.group(1)), match.group(2).lower()
    factor = _BINARY_UNITS_MB.get(unit) if unit.endswith("i") else _SIZE_UNITS_MB.get(unit)
    return int(round(number * factor))


def _minutes(raw: Any, where: str, source: Path) -> int:
    """Wall time in minutes from a number (minutes) or a span such as ``48h``, ``1d 12h``, ``90m``."""
    value = _value(raw)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    text = str(value).lower()
    pieces = re.findall(r"([\d.]+)\s*([a-z]+)", text)
    if not re.fullmatch(r"(\s*[\d.]+\s*[a-z]+)+\s*", text) or any(u[0] not in _TIMESPAN_MIN for _, u in pieces):
        raise InputError(f"{where}: runtime={value!r} is not a time span (minutes, or e.g. 48h)", str(source))
    return int(round(sum(float(n) * _TIMESPAN_MIN[u[0]] for n, u in pieces)))


def _int(raw: Any, name: str, where: str, source: Path) -> int:
    value = _value(raw)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where}: {name}={value!r} is not a whole number", str(source))
    return int(value)


def _request(where: str, resources: dict[str, Any], threads: int | None, source: Path) -> JobRequest:
    """The resources one entry's jobs ask for (how snakemake-executor-plugin-slurm builds sbatch)."""
    partition = str(resources.get("slurm_partition") or "").strip().strip("'\"") or None
    if "cpus_per_task" in resources:
        cpus = _int(resources["cpus_per_task"], "cpus_per_task", where, source)
        cpus = max(cpus, 1)  # a negative value means 'no CPU request': one CPU at least
    else:
        cpus = threads if threads is not None else 1
    if "mem_mb_per_cpu" in resources:
        mem_mb = _size_mb(resources["mem_mb_per_cpu"], "mem_mb_per_cpu", where, source) * cpus
    elif "mem_mb" in resources:
        mem_mb = _size_mb(resources["mem_mb"], "mem_mb", where, source)
    else:
        mem_mb = None
    gpus = 0
    if "gpu" in resources:
        gpus = _int(resources["gpu"], "gpu", where, source)
    elif resources.get("gpu_model"):
        gpus = 1
    if "gres" in resources and resources["gres"]:
        gpus = max(gpus, _gpus_in_gres(str(_value(resources["gres"]))))
    runtime = _minutes(resources["runtime"], where, source) if "runtime" in resources else None
    return JobRequest(where=where, partition=partition, cpus=cpus, mem_mb=mem_mb, gpus=gpus, runtime_min=runtime)


def _normalised(resources: dict[str, Any]) -> dict[str, Any]:
    """``mem`` (a size such as ``16G``) becomes ``mem_mb``, as Snakemake does before merging."""
    out = dict(resources)
    if "mem" in out:
        out.setdefault("mem_mb", out["mem"])
        del out["mem"]
    return out


def profile_requests(profile: str | Path) -> tuple[Path, list[JobRequest]]:
    """The profile's YAML file and what its jobs request: ``default-resources`` first, then each
    rule of ``set-resources`` (its own values over the defaults) in the profile's order."""
    source = profile_file(profile)
    try:
        settings = yaml.safe_load(source.read_text()) or {}
    except yaml.YAMLError as err:
        raise InputError(f"not valid YAML: {str(err).splitlines()[0]}", str(source)) from err
    if not isinstance(settings, dict):
        raise InputError("expected a mapping of Snakemake options", str(source))
    defaults = _normalised(_assignments(settings.get("default-resources"), DEFAULT_KEY, source))
    per_rule = {rule: _normalised(res) for rule, res in _set_resources(settings.get("set-resources"), source).items()}
    threads = {rule: _int(n, "threads", f"set-threads: {rule}", source)
               for rule, n in _assignments(settings.get("set-threads"), "set-threads", source).items()}
    requests = [_request(DEFAULT_KEY, defaults, None, source)]
    for rule, resources in per_rule.items():
        requests.append(_request(f"set-resources: {rule}", {**defaults, **resources}, threads.get(rule), source))
    return source, requests


# -- the comparison ---------------------------------------------------------------------------


def problems(requests: Sequence[JobRequest], cluster: Cluster) -> list[str]:
    """One sentence per request that no node can run (empty when every request fits)."""
    found = []
    names = ", ".join(sorted(cluster.partitions)) or "none"
    for req in requests:
        partition = req.partition or cluster.default_partition
        if partition is None:
            continue  # no partition named and no default: sbatch decides; nothing to compare with
        nodes = cluster.partitions.get(partition)
        if nodes is None:
            found.append(f"{req.where}: partition '{partition}' does not exist on this cluster "
                         f"(sinfo lists: {names}); set slurm_partition to one of them")
            continue
        largest = NodeSize(max(n.cpus for n in nodes), max(n.mem_mb for n in nodes), max(n.gpus for n in nodes))
        if req.cpus > largest.cpus:
            found.append(f"{req.where}: {req.cpus} CPU(s) per job, but the largest node of partition "
                         f"'{partition}' has {largest.cpus}; lower cpus_per_task (or set-threads)")
        elif req.mem_mb is not None and req.mem_mb > largest.mem_mb:
            found.append(f"{req.where}: mem_mb={req.mem_mb}, but the largest node of partition "
                         f"'{partition}' has {largest.mem_mb} MB; lower mem_mb")
        elif req.gpus > largest.gpus:
            found.append(f"{req.where}: {req.gpus} GPU(s) per job, but partition '{partition}' has "
                         f"{'no GPUs' if largest.gpus == 0 else f'at most {largest.gpus} per node'}; "
                         f"choose a GPU partition or lower gpu")
        elif not any(req.cpus <= n.cpus and (req.mem_mb or 0) <= n.mem_mb and req.gpus <= n.gpus for n in nodes):
            found.append(f"{req.where}: no node of partition '{partition}' has {req.cpus} CPUs, "
                         f"{req.mem_mb} MB and {req.gpus} GPUs together (nodes: "
                         f"{'; '.join(n.describe() for n in nodes)})")
        elif req.runtime_min is not None and (limit := cluster.time_limit_min.get(partition)) is not None \
                and req.runtime_min > limit:
            found.append(f"{req.where}: runtime={req.runtime_min} min, but partition '{partition}' allows "
                         f"at most {limit} min; lower runtime or choose a partition with a longer limit")
    return found


def check_profile(profile_dir: str | Path, sinfo_output: str | None = None) -> None:
    """Raise InputError (one line: profile file, entry, resource, fix) if the profile cannot run here.

    ``sinfo_output`` is the text of ``sinfo -h -o '%P %c %m %G %l'`` (the time limit column may be
    left out); by default ``sinfo`` is run.
    """
    source, requests = profile_requests(profile_dir)
    text = query_sinfo() if sinfo_output is None else sinfo_output
    try:
        cluster = parse_sinfo(text)
    except ValueError as err:
        raise InputError(str(err), "sinfo") from err
    if not cluster.partitions:
        raise InputError("lists no partition: is the SLURM controller configured?", "sinfo")
    found = problems(requests, cluster)
    if found:
        more = f" (and {len(found) - 1} more problem{'s' if len(found) > 2 else ''})" if len(found) > 1 else ""
        raise InputError(found[0] + more, str(source))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dlpvc_cluster.slurm_check PROFILE_DIR``: exit 0 if it fits, 2 with one line if not."""
    parser = argparse.ArgumentParser(prog="python -m dlpvc_cluster.slurm_check",
                                     description="Check a Snakemake SLURM profile against this cluster's partitions.")
    parser.add_argument("profile", help="profile folder (with config.yaml), e.g. profiles/slurm")
    parser.add_argument("--sinfo-output", metavar="FILE",
                        help="read the text of `sinfo -h -o '%%P %%c %%m %%G %%l'` from FILE instead of running sinfo")
    args = parser.parse_args(argv)
    try:
        text = Path(args.sinfo_output).read_text() if args.sinfo_output else None
        check_profile(args.profile, text)
    except (InputError, OSError) as err:
        print(f"dlpvc: SLURM profile check failed: {err}", file=sys.stderr)
        return 2
    print(f"dlpvc: SLURM profile {profile_file(args.profile)} fits this cluster's partitions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
