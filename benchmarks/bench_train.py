"""Time one training step (forward + backward + Adam) of every DL-PVC architecture.

Prints, per architecture, the trainable parameter count and the median seconds per training step
for a batch of 32^3 patches and of 64^3 volumes (the demo's field of view), plus the time of one
inference of a 64^3 volume. Runs on CPU, and on CUDA too when it is available.

    .venv/bin/python benchmarks/bench_train.py                     # demo channels [16, 32, 64, 128]
    .venv/bin/python benchmarks/bench_train.py --sizes 32 64 128 --steps 5 --device cuda

Timings on a shared machine vary with its load; the script states the thread count it used.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from pvc_core.networks import ARCHITECTURES, build_network, count_parameters


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_train_step(name: str, channels: list[int], size: int, batch: int, steps: int, device: torch.device) -> float:
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
        loss = torch.nn.functional.l1_loss(net(x), y)
        loss.backward()
        opt.step()
        _sync(device)
        if i:  # the first step warms up allocators and kernels
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


@torch.no_grad()
def time_inference(name: str, channels: list[int], size: int, device: torch.device, repeats: int = 3) -> float:
    """Median seconds of one forward pass of a single ``size``^3 volume in eval mode."""
    net = build_network(name, channels).to(device).eval()
    x = torch.rand(1, 1, size, size, size, device=device)
    net(x)
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        net(x)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64, 128])
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per case (after one warm-up)")
    ap.add_argument("--architectures", nargs="+", default=list(ARCHITECTURES), choices=ARCHITECTURES)
    ap.add_argument("--device", action="append", help="cpu, cuda (default: cpu, plus cuda when available)")
    args = ap.parse_args(argv)
    devices = [torch.device(d) for d in (args.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else [])))]

    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, channels {args.channels}, "
          f"batch {args.batch_size}, median of {args.steps} steps")
    for dev in devices:
        label = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
        head = f"{'architecture':18s} {'parameters':>11s}" + "".join(f" {f'step {s}^3 (s)':>15s}" for s in args.sizes)
        head += f" {'infer ' + str(max(args.sizes)) + '^3 (s)':>16s}"
        print(f"\ndevice: {label}\n{head}")
        for name in args.architectures:
            n_params = count_parameters(build_network(name, args.channels))
            steps = [time_train_step(name, args.channels, s, args.batch_size, args.steps, dev) for s in args.sizes]
            infer = time_inference(name, args.channels, max(args.sizes), dev)
            print(f"{name:18s} {n_params:11,d}" + "".join(f" {t:15.3f}" for t in steps) + f" {infer:16.3f}", flush=True)


if __name__ == "__main__":
    main()
