"""Training step time, peak memory and parameters of the five DL-PVC architectures.

Per architecture of the paper (``pvc_core.networks``: unet, r2unet, attention_unet,
r2attention_unet, unetpp) it prints

* the trainable parameters at the paper's channels (``training.default.channels`` of
  ``config/paper.yaml``);
* on the CPU: the median seconds of one training step (forward, L1 loss, backward, Adam) of a
  batch of 64^3 volumes at the channels given (default the demo's, ``config.yaml``), and the peak
  RSS above the process's RSS before the network was built (each architecture in its own forked
  process, so the peaks do not mask each other);
* when CUDA is available, at 128^3 (the paper's field of view) with the paper's channels, in fp32
  and in bf16 autocast (``precision: bf16``): steps/s, ``torch.cuda.max_memory_allocated`` and the
  projected hours of 100 epochs of 9,000 training cases (4,500 steps per epoch at batch 2,
  validation not counted).

With ``--variants`` it times instead one architecture (``--architectures``, first name) on the CPU
in each of the given variants, each in its own forked process: a precision (``fp32``, or ``bf16``
autocast as ``training.default.precision: bf16``) with ``+channels_last`` (network and batch in
``torch.channels_last_3d``) and ``+compile`` (``torch.compile`` of the network) appended as wanted.
It prints the minimum, median and maximum seconds of the ``--steps`` timed steps after
``--warmup`` untimed ones (a compiled variant compiles in its first warm-up step, whose seconds are
printed apart), e.g. the fastMRI U-Net of 8-64 channels at 80^3::

    .venv/bin/python benchmarks/bench_train.py --architectures unet --channels 8 16 32 64 --size 80 \\
        --threads 2 --steps 5 --variants fp32 fp32+channels_last bf16 bf16+channels_last

    .venv/bin/python benchmarks/bench_train.py                        # demo channels, 3 steps
    .venv/bin/python benchmarks/bench_train.py --channels 16 32 64 128 --steps 5

Timings on a shared machine vary with its load; the script states the thread count it used.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import statistics
import time
from pathlib import Path

import torch
import yaml

from pvc_core.networks import build_network, count_parameters

ROOT = Path(__file__).resolve().parents[1]
#: The paper's five architectures (``resunet``, dlpvc's earlier U-Net, is left out).
PAPER_ARCHITECTURES = ("unet", "r2unet", "attention_unet", "r2attention_unet", "unetpp")
TRAIN_CASES, EPOCHS = 9000, 100
#: Options a ``--variants`` entry may append to its precision (``bf16+channels_last+compile``).
VARIANT_OPTIONS = ("channels_last", "compile")


def _channels_of(config: Path) -> list[int]:
    return list(yaml.safe_load(config.read_text())["training"]["default"]["channels"])


def _rss_mib() -> float:
    """Current resident set size of this process (MiB)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_times(name: str, channels: list[int], size: int, batch: int, steps: int, device: torch.device,
               bf16: bool = False, channels_last: bool = False, compile_network: bool = False,
               warmup: int = 1) -> tuple[list[float], list[float]]:
    """(seconds of each warm-up step, seconds of each of ``steps`` timed steps) of an Adam training
    step with the L1 loss, as :func:`pvc_core.training.train_model` runs it: forward in bf16
    autocast for ``bf16``, the loss on the output cast to float32."""
    torch.manual_seed(0)
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    net = build_network(name, channels).to(device).to(memory_format=fmt).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    step_net = torch.compile(net) if compile_network else net
    x = torch.rand(batch, 1, size, size, size, device=device).contiguous(memory_format=fmt)
    y = torch.rand(batch, 1, size, size, size, device=device)
    times = []
    for _ in range(warmup + steps):
        _sync(device)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            out = step_net(x)
        torch.nn.functional.l1_loss(out.float(), y).backward()
        opt.step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times[:warmup], times[warmup:]


def time_train_step(name: str, channels: list[int], size: int, batch: int, steps: int, device: torch.device,
                    bf16: bool = False) -> float:
    """Median seconds of one Adam training step (L1 loss) after one warm-up step."""
    return statistics.median(step_times(name, channels, size, batch, steps, device, bf16=bf16)[1])


def _cpu_child(name, channels, size, batch, steps, threads, queue) -> None:
    torch.set_num_threads(threads)
    before = _rss_mib()
    seconds = time_train_step(name, channels, size, batch, steps, torch.device("cpu"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB -> MiB on Linux
    queue.put((seconds, peak - before))


def cpu_step(name: str, channels: list[int], size: int, batch: int, steps: int, threads: int) -> tuple[float, float]:
    """(median seconds per step, peak RSS increase in MiB) on the CPU, in a forked process."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_cpu_child, args=(name, channels, size, batch, steps, threads, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def _parse_variant(text: str) -> dict:
    """``'bf16+channels_last'`` -> ``{"bf16": True, "channels_last": True, "compile_network": False}``."""
    precision, *options = text.split("+")
    if precision not in ("fp32", "bf16") or not set(options) <= set(VARIANT_OPTIONS):
        raise argparse.ArgumentTypeError(f"variant {text!r}: a precision (fp32 or bf16) and any of "
                                         f"{', '.join('+' + o for o in VARIANT_OPTIONS)}")
    return {"bf16": precision == "bf16", "channels_last": "channels_last" in options,
            "compile_network": "compile" in options}


def _variant_child(name, channels, size, batch, steps, warmup, threads, variant, queue) -> None:
    torch.set_num_threads(threads)
    try:
        queue.put(step_times(name, channels, size, batch, steps, torch.device("cpu"), warmup=warmup,
                             **_parse_variant(variant)))
    except Exception as err:  # a failed compile is reported, not fatal to the other variants
        queue.put(f"{type(err).__name__}: {err}".splitlines()[0])


def cpu_variant(name: str, channels: list[int], size: int, batch: int, steps: int, warmup: int, threads: int,
                variant: str) -> tuple[list[float], list[float]] | str:
    """:func:`step_times` of one ``--variants`` entry on the CPU in a forked process (an error line
    when it fails)."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_variant_child, args=(name, channels, size, batch, steps, warmup, threads, variant,
                                                    queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def _print_variants(args) -> None:
    name = args.architectures[0]
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"AMX {torch.cpu._is_amx_tile_supported()}, AVX512-BF16 {torch.cpu._is_avx512_bf16_supported()}; "
          f"{name} channels {args.channels}, batch {args.batch_size} of {args.size}^3, {args.threads} threads; "
          f"seconds per training step over {args.steps} steps after {args.warmup} warm-up")
    print(f"{'variant':28s} {'min':>7s} {'median':>7s} {'max':>7s} {'warm-up':>8s}")
    for variant in args.variants:
        result = cpu_variant(name, args.channels, args.size, args.batch_size, args.steps, args.warmup, args.threads,
                             variant)
        if isinstance(result, str):
            print(f"{variant:28s} failed: {result}", flush=True)
            continue
        warm, times = result
        print(f"{variant:28s} {min(times):7.2f} {statistics.median(times):7.2f} {max(times):7.2f} "
              f"{sum(warm):8.1f}", flush=True)


def cuda_step(name: str, channels: list[int], size: int, batch: int, steps: int, bf16: bool) -> tuple[float, float]:
    """(steps/s, torch.cuda.max_memory_allocated in GiB) on CUDA."""
    dev = torch.device("cuda")
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(dev)
    seconds = time_train_step(name, channels, size, batch, steps, dev, bf16=bf16)
    return 1.0 / seconds, torch.cuda.max_memory_allocated(dev) / 2 ** 30


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, nargs="+", default=_channels_of(ROOT / "config.yaml"),
                    help="channels of the CPU step (default: the demo's, config.yaml)")
    ap.add_argument("--paper-config", type=Path, default=ROOT / "config" / "paper.yaml")
    ap.add_argument("--size", type=int, default=64, help="CPU volume edge (voxels)")
    ap.add_argument("--gpu-size", type=int, default=128, help="CUDA volume edge (voxels)")
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3, help="timed steps (after one warm-up)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--architectures", nargs="+", default=list(PAPER_ARCHITECTURES), choices=PAPER_ARCHITECTURES)
    ap.add_argument("--variants", nargs="+", metavar="VARIANT",
                    help="time the first architecture on the CPU in these variants instead: fp32 or bf16, "
                         "with +channels_last and +compile as wanted (e.g. bf16+channels_last)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps before the timed ones (--variants)")
    args = ap.parse_args(argv)
    if args.variants:
        for variant in args.variants:
            try:
                _parse_variant(variant)
            except argparse.ArgumentTypeError as err:
                ap.error(str(err))
        _print_variants(args)
        return
    paper = _channels_of(args.paper_config)
    steps_per_epoch = TRAIN_CASES // args.batch_size

    print(f"torch {torch.__version__}, CPU threads {args.threads}, batch {args.batch_size}, median of "
          f"{args.steps} steps; CPU at {args.size}^3 with channels {args.channels}; parameters at the paper's "
          f"channels {paper}")
    print(f"{'architecture':18s} {'params (paper)':>15s} {'CPU s/step':>11s} {'CPU peak RSS +MiB':>18s}")
    for name in args.architectures:
        params = count_parameters(build_network(name, paper))
        seconds, peak = cpu_step(name, args.channels, args.size, args.batch_size, args.steps, args.threads)
        print(f"{name:18s} {params:15,d} {seconds:11.2f} {peak:18.0f}", flush=True)
    if not torch.cuda.is_available():
        print("CUDA: not available (no GPU figures)")
        return
    print(f"CUDA {torch.cuda.get_device_name(0)} at {args.gpu_size}^3, channels {paper}; projection: {EPOCHS} "
          f"epochs x {steps_per_epoch} steps ({TRAIN_CASES} cases, batch {args.batch_size})")
    print(f"{'architecture':18s} {'precision':>9s} {'steps/s':>8s} {'max alloc GiB':>14s} {'hours':>8s}")
    for name in args.architectures:
        for precision in ("fp32", "bf16"):
            try:
                rate, gib = cuda_step(name, paper, args.gpu_size, args.batch_size, args.steps, precision == "bf16")
            except torch.cuda.OutOfMemoryError:
                print(f"{name:18s} {precision:>9s} {'out of GPU memory':>32s}", flush=True)
                torch.cuda.empty_cache()
                continue
            hours = EPOCHS * steps_per_epoch / rate / 3600
            print(f"{name:18s} {precision:>9s} {rate:8.2f} {gib:14.1f} {hours:8.1f}", flush=True)


if __name__ == "__main__":
    main()
