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


def _channels_of(config: Path) -> list[int]:
    return list(yaml.safe_load(config.read_text())["training"]["default"]["channels"])


def _rss_mib() -> float:
    """Current resident set size of this process (MiB)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_train_step(name: str, channels: list[int], size: int, batch: int, steps: int, device: torch.device,
                    bf16: bool = False) -> float:
    """Median seconds of one Adam training step (L1 loss) after one warm-up step."""
    torch.manual_seed(0)
    net = build_network(name, channels).to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.rand(batch, 1, size, size, size, device=device)
    y = torch.rand_like(x)
    times = []
    for i in range(steps + 1):
        _sync(device)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            out = net(x)
        torch.nn.functional.l1_loss(out.float(), y).backward()
        opt.step()
        _sync(device)
        if i:  # the first step warms up allocators and kernels
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


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
    args = ap.parse_args(argv)
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
