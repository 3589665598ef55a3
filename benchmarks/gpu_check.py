"""One prepared GPU check (issue [3.4] item 4): training, a 128^3 ``apply`` and a paper-grid case, one table.

Run it whenever a GPU is lent, with nothing else on the GPU, through ``benchmarks/gpu_check.sh``
(which picks the Python). Parts, each guarded (a failing part or variant writes its one-line error
in its row and the others still run) and each under a time limit:

1. **train**: per architecture of :data:`pvc_core.networks.ARCHITECTURES` at the paper's channels
   (``training.default.channels`` of ``config/paper.yaml``), in fp32 and in bf16 autocast (the
   trainer's ``precision: bf16``): ``--warmup`` untimed training steps, then up to ``--steps``
   timed ones or until the variant has run ``--variant-budget-s`` seconds; a step is what
   :func:`pvc_core.training.train_model` does with the model settings' defaults: a batch of
   ``--batch-size`` random volumes of ``--size``^3, forward under the precision's autocast, the
   L1 loss (:func:`pvc_core.training.losses.batch_loss`) on the output cast to float32, backward,
   Adam, with deterministic algorithms (``deterministic: true``, the default; ``--fast-algorithms``:
   cudnn.benchmark, as ``deterministic: false``). It reports
   steps/s (median step), ``torch.cuda.max_memory_allocated`` (reset per variant) and the hours
   of 100 epochs of 9,000 cases; a variant out of GPU memory reads ``OOM``.
2. **apply**: the shipped model (``--model`` for another) on a synthetic ``--apply-size``^3 image
   of ``--voxel-mm`` voxels through :func:`pvc_core.apply.correct.apply_one` (read, check,
   correct in windows, write; what ``dlpvc apply`` runs per image) on the device: median seconds
   of ``--apply-repeats`` runs after one warm-up, and of :func:`~pvc_core.apply.correct.correct_image`
   alone (the network's part), with the peak GPU memory.
3. **case**: one case of ``benchmarks/bench_spect.py`` at ``--case-size``^3 (128: 4.8 mm voxels,
   phantom 256^3, 120 views x 30 s, noRR 10 x 2 and RR 6 x 6, TEW) through
   :meth:`pvc_core.spect.acquisition.AcquisitionChain.acquire`, seconds per step. The chain has
   no device argument (its projector and OSEM run on the CPU), so this part runs on the CPU with
   ``--threads`` threads and says so; a small case first compiles the numba kernels (its seconds
   are printed apart).

Time (a GPU session has 15 minutes in all): the whole run stops starting work at ``--deadline-s``
(450 s) after it began; each part has a budget (:data:`PART_BUDGET_S`) that is also its hard
limit (SIGALRM: the part is stopped and its row reads ``timeout``); a part or variant that would
start with too little time left is ``skipped``. The table (markdown) goes to stdout and, rewritten
after every row so that a run stopped from outside keeps what it measured, to ``gpu_check.md``
and ``gpu_check.json`` in ``--out`` (default ``$OUT`` when set, else ``results/gpu_check``).

``--smoke`` runs tiny sizes (32^3, channels 4-32, one warm-up and one timed step, two
architectures, a 32^3 case) so that the script itself can be tested on the CPU::

    .venv/bin/python benchmarks/gpu_check.py --smoke --device cpu
    bash benchmarks/gpu_check.sh                       # on the GPU machine: the full check
    bash benchmarks/gpu_check.sh --parts train --architectures unet r2unet
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

T_START = time.perf_counter()
ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
for _path in (ROOT, BENCHMARKS):  # pvc_core and the other benchmarks, also without an installed dlpvc
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import torch

PARTS = ("train", "apply", "case")
PRECISIONS = ("fp32", "bf16")
#: Seconds each part may take at most (its hard limit; the sum stays under the default deadline).
PART_BUDGET_S = {"train": 250.0, "apply": 60.0, "case": 120.0}
#: A part or variant is not started with fewer seconds than these left (to the deadline or in its part).
MIN_START_S = {"train": 10.0, "apply": 15.0, "case": 30.0}
#: Hard limit of one training variant: this many times its soft budget.
VARIANT_HARD_FACTOR = 3.0
#: The paper's channels, when config/paper.yaml cannot be read.
PAPER_CHANNELS = [32, 64, 128, 256, 512]
#: Modules the parts need beyond torch (the header lists those this Python lacks).
NEEDED_MODULES = ("numpy", "scipy", "yaml", "monai", "nibabel", "pydicom", "jsonschema", "numba", "pytomography")
#: What --smoke changes.
SMOKE = {"size": 32, "channels": [4, 8, 16, 32], "warmup": 1, "steps": 1, "architectures": ["unet", "attention_unet"],
         "apply_size": 32, "apply_repeats": 1, "case_size": 32}

OK, OOM, ERROR, TIMEOUT, SKIPPED = "ok", "OOM", "error", "timeout", "skipped"


class PartTimeout(Exception):
    """A part or variant ran past its hard limit."""


@dataclass
class Row:
    """One line of the table: a training variant, the apply run or the case."""

    part: str
    variant: str
    status: str = OK
    result: str = ""
    peak_gib: float | None = None
    seconds: float = 0.0
    values: dict = field(default_factory=dict)


@contextmanager
def _time_limit(seconds: float, what: str):
    """Raise :class:`PartTimeout` in this (main) thread after ``seconds``; a no-op off the main thread."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum, frame):
        raise PartTimeout(f"{what} ran past its {seconds:.0f} s limit")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, max(float(seconds), 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _one_line(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}".strip().splitlines()[0]
    return text if len(text) <= 200 else text[:197] + "..."


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def guarded(row: Row, device: torch.device, hard_s: float, work) -> Row:
    """Run ``work()`` (returns ``(result text, values)``) for ``row`` under a hard limit of
    ``hard_s`` seconds: its status, result, peak GPU memory (GiB, on CUDA) and seconds."""
    _release(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    try:
        with _time_limit(hard_s, f"{row.part} {row.variant}".strip()):
            row.result, row.values = work()
    except PartTimeout as err:
        row.status, row.result = TIMEOUT, str(err)
    except Exception as err:  # noqa: BLE001 - a failing part is reported in its row, never fatal to the others
        oom = isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err).lower()
        row.status, row.result = (OOM, ". ".join(_one_line(err).split(". ")[:2])) if oom else (ERROR, _one_line(err))
    row.seconds = time.perf_counter() - t0
    if device.type == "cuda":
        row.peak_gib = torch.cuda.max_memory_allocated(device) / 2 ** 30
        row.values["max_memory_reserved_gib"] = torch.cuda.max_memory_reserved(device) / 2 ** 30
    _release(device)
    return row


# -- part 1: training steps ------------------------------------------------------------------------------------------

def train_variant(name: str, bf16: bool, channels: list[int], size: int, batch: int, warmup: int, steps: int,
                  budget_s: float, learning_rate: float, device: torch.device) -> tuple[str, dict]:
    """Training steps of architecture ``name`` (module docstring, part 1): a result line and its values."""
    from bench_train import EPOCHS, TRAIN_CASES

    from pvc_core.networks import build_network, count_parameters
    from pvc_core.training.losses import batch_loss

    t0 = time.perf_counter()
    torch.manual_seed(0)
    # build_network's defaults are the model settings' (residual, dropout 0, recurrence_t 2, one input
    # channel); tests/benchmarks/test_gpu_check.py checks that this is the network the trainer builds
    net = build_network(name, channels).to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
    x = torch.rand(batch, 1, size, size, size, device=device)
    y = torch.rand(batch, 1, size, size, size, device=device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):  # autocast_for's
            out = net(x)
        batch_loss("l1", out.float(), y).backward()
        opt.step()
        _sync(device)

    for _ in range(warmup):
        step()
    warmup_s = time.perf_counter() - t0
    times: list[float] = []
    while len(times) < max(1, steps) and (not times or time.perf_counter() - t0 < budget_s):
        ts = time.perf_counter()
        step()
        times.append(time.perf_counter() - ts)
    median = statistics.median(times)
    hours = EPOCHS * (TRAIN_CASES // batch) * median / 3600
    values = {"steps_per_s": 1 / median, "step_s": times, "warmup_s": warmup_s, "parameters": count_parameters(net),
              "hours_100_epochs_9000_cases": hours}
    return (f"{1 / median:.2f} steps/s ({len(times)} steps after {warmup} warm-up in {warmup_s:.1f} s; "
            f"{EPOCHS} epochs of {TRAIN_CASES:,} cases: {hours:.1f} h)"), values


@contextmanager
def _training_algorithms(deterministic: bool):
    """The trainer's algorithms (:func:`pvc_core.training.train_model`): ``deterministic: true`` (its
    default): deterministic algorithms, warnings where CUDA has none, cudnn.benchmark off; false:
    cudnn.benchmark on (the fastest kernels, chosen by timing in the warm-up). Restored on exit."""
    was_on, was_warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    was_bench = torch.backends.cudnn.benchmark
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.benchmark = not deterministic
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_on, warn_only=was_warn)
        torch.backends.cudnn.benchmark = was_bench


def part_train(args, device: torch.device, clock, emit) -> None:
    part_end = time.perf_counter() + PART_BUDGET_S["train"]
    with _training_algorithms(not args.fast_algorithms):
        for name in args.architectures:
            for precision in PRECISIONS:
                row = Row("train", f"{name} {precision}")
                left = min(part_end - time.perf_counter(), clock.left())
                if left < MIN_START_S["train"]:
                    row.status, row.result = SKIPPED, f"{left:.0f} s left of the train part or the run"
                    emit(row)
                    continue
                hard = min(VARIANT_HARD_FACTOR * args.variant_budget_s, left)
                emit(guarded(row, device, hard, partial(
                    train_variant, name, precision == "bf16", args.channels, args.size, args.batch_size, args.warmup,
                    args.steps, args.variant_budget_s, args.learning_rate, device)))


# -- part 2: apply ---------------------------------------------------------------------------------------------------

def apply_run(model_path: str | None, size: int, voxel_mm: float, repeats: int, device: torch.device) -> tuple[str, dict]:
    """``apply_one`` (and ``correct_image`` alone) of a synthetic image on ``device`` (module docstring, part 2)."""
    from bench_apply import _input

    from pvc_core.apply.correct import apply_one, correct_image, read_spect
    from pvc_core.apply.model import load_apply_model

    t0 = time.perf_counter()
    model = load_apply_model(model_path, device.type)
    load_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        src = _input(Path(tmp) / "spect.nii.gz", size, voxel_mm)
        whole = []
        for i in range(repeats + 1):  # the first run warms up the kernels
            _sync(device)
            ts = time.perf_counter()
            apply_one(model, src, Path(tmp) / f"out_{i}.nii.gz", say=lambda s: None, reconstruction="RR")
            _sync(device)
            whole.append(time.perf_counter() - ts)
        image = read_spect(src, lambda s: None).image
        network = []
        for _ in range(repeats):
            ts = time.perf_counter()
            correct_image(model, image)
            _sync(device)
            network.append(time.perf_counter() - ts)
    values = {"apply_one_s": whole[1:], "warmup_s": whole[0], "correct_image_s": network, "model_load_s": load_s,
              "model": str(model.path), "architecture": model.cfg.get("architecture"),
              "channels": model.cfg.get("channels"), "window": model.trained_for.get("matrix")}
    return (f"apply_one {statistics.median(whole[1:]):.2f} s (median of {repeats} after a {whole[0]:.2f} s warm-up), "
            f"correct_image {statistics.median(network):.2f} s; model load {load_s:.2f} s"), values


def part_apply(args, device: torch.device, clock, emit) -> None:
    row = Row("apply", f"{args.apply_size}^3 x {args.voxel_mm:g} mm, {'--model' if args.model else 'shipped model'}")
    left = min(PART_BUDGET_S["apply"], clock.left())
    if left < MIN_START_S["apply"]:
        row.status, row.result = SKIPPED, f"{clock.left():.0f} s left of the run"
        emit(row)
        return
    emit(guarded(row, device, left, lambda: apply_run(args.model, args.apply_size, args.voxel_mm,
                                                      args.apply_repeats, device)))


# -- part 3: one case through the acquisition chain ------------------------------------------------------------------

def case_run(size: int, views: int, threads: int) -> tuple[str, dict]:
    """One ``bench_spect`` case through ``AcquisitionChain.acquire`` on the CPU (module docstring, part 3)."""
    import bench_spect

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        t0 = time.perf_counter()
        bench_spect.time_case(bench_spect.bench_config(16, 8), torch.device("cpu"))  # compiles the numba kernels
        warmup_s = time.perf_counter() - t0
        times = bench_spect.time_case(bench_spect.bench_config(size, views), torch.device("cpu"))[0]
    finally:
        torch.set_num_threads(before)
    steps = ", ".join(f"{k} {v:.1f}" for k, v in times.items() if k != "case total")
    return (f"total {times['case total']:.1f} s: {steps} (numba warm-up case {warmup_s:.1f} s)",
            {"seconds": times, "warmup_s": warmup_s, "threads": threads, "device": "cpu"})


def part_case(args, clock, emit) -> None:
    cpu = torch.device("cpu")
    row = Row("case", f"{args.case_size}^3, phantom {2 * args.case_size}^3, {args.views} views, CPU {args.threads} "
                      "threads (the chain is CPU-only)")
    left = min(PART_BUDGET_S["case"], clock.left())
    if left < MIN_START_S["case"]:
        row.status, row.result = SKIPPED, f"{clock.left():.0f} s left of the run"
        emit(row)
        return
    emit(guarded(row, cpu, left, lambda: case_run(args.case_size, args.views, args.threads)))


# -- table -----------------------------------------------------------------------------------------------------------

class _Clock:
    def __init__(self, deadline_s: float) -> None:
        self.end = T_START + deadline_s

    def left(self) -> float:
        return self.end - time.perf_counter()


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], check=False,
                             capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_header(args, device: torch.device) -> dict:
    """What ran where: Python, torch, CUDA, the GPU, the CPU, the commit, the settings."""
    cuda = torch.cuda.is_available()
    head = {"date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "host": platform.node(),
            "python": f"{sys.executable} ({platform.python_version()})", "torch": torch.__version__,
            "cuda_available": cuda, "device": str(device), "cpu_count": os.cpu_count(),
            "load_average": [round(v, 2) for v in os.getloadavg()], "commit": _git_commit(),
            "missing_modules": [m for m in NEEDED_MODULES if importlib.util.find_spec(m) is None],
            "smoke": args.smoke}
    if cuda:
        props = torch.cuda.get_device_properties(0)
        head.update(gpu=torch.cuda.get_device_name(0), gpu_memory_gib=round(props.total_memory / 2 ** 30, 1),
                    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    head["settings"] = {k: getattr(args, k) for k in ("parts", "architectures", "channels", "size", "batch_size",
                                                        "warmup", "steps", "variant_budget_s", "learning_rate", "fast_algorithms",
                                                        "apply_size", "voxel_mm", "apply_repeats", "model",
                                                        "case_size", "views", "threads", "deadline_s")}
    return head


def markdown(head: dict, rows: list[Row], wall_s: float) -> str:
    """The table with the machine above it."""
    gpu = (f"{head['gpu']} ({head['gpu_memory_gib']} GiB, CUDA {head['cuda']}, cuDNN {head['cudnn']})"
           if head.get("gpu") else "none visible to torch")
    s = head["settings"]
    lines = [
        f"# GPU check{' (smoke)' if head['smoke'] else ''}: benchmarks/gpu_check.py, {head['date_utc']} UTC",
        "",
        (f"- torch {head['torch']}, `torch.cuda.is_available()` {head['cuda_available']}, GPU: {gpu}; "
         f"device {head['device']}"),
        (f"- {head['python']}, {head['cpu_count']} CPUs, load average {head['load_average']}, host {head['host']}, "
         f"commit {head['commit']}; modules missing: {', '.join(head['missing_modules']) or 'none'}"),
        (f"- train: batch {s['batch_size']} of {s['size']}^3, channels {s['channels']}, Adam (lr {s['learning_rate']:g}), "
         f"L1 on the float32 output, bf16 = autocast, "
         f"{'cudnn.benchmark (deterministic: false)' if s['fast_algorithms'] else 'deterministic algorithms'}; "
         f"{s['warmup']} warm-up steps, then up "
         f"to {s['steps']} steps or {s['variant_budget_s']:g} s; peak = `max_memory_allocated`, reset per row"),
        (f"- budgets: {', '.join(f'{k} {v:.0f} s' for k, v in PART_BUDGET_S.items())}; no work starts after "
         f"{s['deadline_s']:.0f} s; this run took {wall_s:.0f} s"),
        "",
        "| part | variant | status | result | peak GiB | s |",
        "|---|---|---|---|---:|---:|",
    ]
    for r in rows:
        peak = f"{r.peak_gib:.2f}" if r.peak_gib is not None and r.part != "case" else "-"
        result = r.result.replace("|", "/")
        lines.append(f"| {r.part} | {r.variant} | {r.status} | {result} | {peak} | {r.seconds:.1f} |")
    return "\n".join(lines) + "\n"


def _write(out_dir: Path, head: dict, rows: list[Row]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    wall = time.perf_counter() - T_START
    (out_dir / "gpu_check.md").write_text(markdown(head, rows, wall))
    doc = {"header": head, "wall_s": wall, "part_budget_s": PART_BUDGET_S, "rows": [asdict(r) for r in rows]}
    (out_dir / "gpu_check.json").write_text(json.dumps(doc, indent=1, default=str))


def _paper_training() -> tuple[list[int], float]:
    """(channels, learning rate) of ``training.default`` in config/paper.yaml; the paper's when unreadable."""
    try:
        import yaml

        default = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())["training"]["default"]
        return [int(c) for c in default["channels"]], float(default.get("learning_rate", 1e-4))
    except Exception:  # noqa: BLE001 - the check runs on a bare machine too
        return list(PAPER_CHANNELS), 1e-4


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    channels, lr = _paper_training()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on any device, to test this script")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="device of train and apply")
    ap.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    ap.add_argument("--out", type=Path, help="folder of gpu_check.md/.json (default $OUT, else results/gpu_check)")
    ap.add_argument("--deadline-s", type=float, default=450.0, help="no part or variant starts after this")
    g = ap.add_argument_group("train")
    g.add_argument("--architectures", nargs="+", help="default: every one of pvc_core.networks (smoke: two)")
    g.add_argument("--channels", type=int, nargs="+", help=f"default: config/paper.yaml's, {channels}")
    g.add_argument("--size", type=int, help="volume edge in voxels (default 128)")
    g.add_argument("--batch-size", type=int, default=2)
    g.add_argument("--warmup", type=int, help="untimed steps per variant (default 2)")
    g.add_argument("--steps", type=int, help="timed steps per variant at most (default 10)")
    g.add_argument("--variant-budget-s", type=float, default=15.0, help="timed steps stop after this")
    g.add_argument("--learning-rate", type=float, default=lr)
    g.add_argument("--fast-algorithms", action="store_true",
                   help="train as with deterministic: false (cudnn.benchmark on) instead of the default, deterministic")
    g = ap.add_argument_group("apply")
    g.add_argument("--model", help="model.pt (default: the shipped model)")
    g.add_argument("--apply-size", type=int, help="image edge in voxels (default 128)")
    g.add_argument("--voxel-mm", type=float, default=4.8)
    g.add_argument("--apply-repeats", type=int, help="timed runs after the warm-up (default 2)")
    g = ap.add_argument_group("case")
    g.add_argument("--case-size", type=int, help="reconstruction grid edge (default 128; field of view 614 mm)")
    g.add_argument("--views", type=int, default=120)
    g.add_argument("--threads", type=int, default=min(16, os.cpu_count() or 1), help="CPU threads of the case")
    args = ap.parse_args(argv)
    full = {"size": 128, "channels": channels, "warmup": 2, "steps": 10, "architectures": None, "apply_size": 128,
            "apply_repeats": 2, "case_size": 128}
    for key, value in (SMOKE if args.smoke else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.architectures is None:
        try:
            from pvc_core.networks import ARCHITECTURES
        except Exception:  # noqa: BLE001 - listed here so that a bare machine still gets a row per name
            ARCHITECTURES = ("unet", "r2unet", "attention_unet", "r2attention_unet", "unetpp", "resunet")
        args.architectures = list(ARCHITECTURES)
    if args.out is None:
        args.out = Path(os.environ["OUT"]) if os.environ.get("OUT") else ROOT / "results" / "gpu_check"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS, as the trainer sets it
    device = torch.device(args.device)
    head = machine_header(args, device)
    print(f"torch {torch.__version__}; torch.cuda.is_available() {torch.cuda.is_available()}; "
          f"device {head.get('gpu', 'none (CPU only)')}; python {head['python']}", flush=True)
    if head["missing_modules"]:
        print(f"modules missing from this Python: {', '.join(head['missing_modules'])}", flush=True)
    rows: list[Row] = []
    clock = _Clock(args.deadline_s)

    def emit(row: Row) -> None:
        rows.append(row)
        peak = f", peak {row.peak_gib:.2f} GiB" if row.peak_gib is not None and row.part != "case" else ""
        print(f"[{time.perf_counter() - T_START:5.0f} s] {row.part} {row.variant}: {row.status}: {row.result}{peak}",
              flush=True)
        _write(args.out, head, rows)

    if device.type == "cuda" and not torch.cuda.is_available():
        why = "torch sees no CUDA GPU (run with --device cpu, or on the GPU machine)"
        for part in ("train", "apply"):
            if part in args.parts:
                emit(Row(part, "all", ERROR, why))
    else:
        if "train" in args.parts:
            part_train(args, device, clock, emit)
        if "apply" in args.parts:
            part_apply(args, device, clock, emit)
    if "case" in args.parts:
        part_case(args, clock, emit)
    _write(args.out, head, rows)
    print()
    print(markdown(head, rows, time.perf_counter() - T_START), end="")
    print(f"\nwritten: {args.out / 'gpu_check.md'}, {args.out / 'gpu_check.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
