"""Train a DL-PVC network on (SPECT, truth) pairs and write a self-describing checkpoint.

Design choices (the paper's supplement with its training details is not available):

* **Loss: L1** (mean absolute error in input-max units). The figure of merit that sets DL-PVC
  apart is the VAA, the share of voxels within 5% of the truth; L1 pulls the median of the
  voxel-wise error to zero and keeps edges sharp, where MSE averages over the ambiguous positions
  of an edge and blurs them (Zhao et al., IEEE TCI 2017). ``loss='mse'`` is available, and
  ``loss='masked'`` (beyond the paper) trains what is evaluated (:mod:`pvc_core.training.losses`).
* **Adam** at the configured learning rate with a cosine decay to 1/20 of it over the epochs
  (``lr_schedule='constant'`` switches it off): large steps early, fine convergence late, no
  extra setting to tune.
* **Model selection on what is evaluated.** After every epoch the validation cases (the first
  ``validation_cases`` of them; all by default) are corrected exactly as at prediction time (full
  field of view or reassembled patches, un-normalised to MBq/mL with the configured activity
  conservation, :func:`~pvc_core.training.normalisation.rescale_output`) and scored as the
  evaluation scores the test cases: masked NRMSE and VAA against the truth
  (:func:`pvc_core.metrics.nrmse`, :func:`pvc_core.metrics.vaa`, mask ``truth > 0``, tolerance
  ``vaa_alpha`` = the configuration's ``evaluation.alpha``), and the loss in input-max units.
  The whole-field-of-view loss alone is dominated by the empty background, so the kept epoch is
  chosen by ``selection`` (:func:`selection_key`): ``'nrmse'`` (default) the lowest mean masked
  NRMSE, ties to the higher VAA, then the lower loss; ``'vaa'`` the highest VAA, ties to the
  lower NRMSE, then the lower loss; ``'loss'`` the lowest loss. Remaining ties go to the earlier
  epoch. All three scores are in ``history.csv``; the chosen epoch and its scores in the model
  card. Without validation cases the last epoch's weights are kept.
* **Streamed from disk.** The cases are normalised once into a cache of memory-mapped arrays
  (:mod:`pvc_core.training.case_cache`) and read per sample by a torch ``DataLoader``
  (:mod:`pvc_core.training.dataset`, :mod:`pvc_core.training.loader`), so memory does not grow
  with the number of cases; validation reads one case at a time as well.
* **Deterministic** for a given seed on one machine: weights from
  ``torch.manual_seed(torch_seed_for(seed, 0, 'train'))``; data order per epoch and patches and
  augmentation per sample from numpy generators seeded by (that seed, epoch, case, patch), so
  that the number of DataLoader workers does not change the result; deterministic algorithms
  where torch has them (``warn_only``, because some CUDA kernels have none).

  The weights differ from those of dlpvc before the streaming dataset for the same seed: that
  code drew the order, the patches and the symmetries of all samples from one numpy stream in
  sequence, so each sample depended on every draw before it, which no per-sample (and hence
  worker-independent) scheme can reproduce. The distributions are the same (same permutation of
  cases, same patch rule, same 16 symmetries, same batching).
* **Checkpoint every epoch, resume automatically.** After every epoch ``checkpoint.pt``
  (:mod:`pvc_core.training.checkpoint`) and ``history.csv`` are written next to the model; a
  training started again with the same specification (a SLURM job resubmitted after its time
  limit, a killed run) continues after the last finished epoch and ends with the same weights
  as if it had never stopped. The model card records ``training.resumed_from_epoch``.
* **Fine-tuning** (``init_from``, :mod:`pvc_core.training.init_from`): the network starts from a
  trained model's weights instead of random ones (Adam and the schedule start afresh); the
  initial weights file's SHA-256 is part of the identity and is recorded in the card
  (``training.init_from``).
* **bf16** (``precision: bf16``, CUDA or the CPU): the forward pass runs in bfloat16 autocast; its
  output is cast to float32 before the loss, and validation un-normalises and conserves the
  activity of a float32 output in float64 (:func:`~pvc_core.training.normalisation.rescale_output`),
  so that only the network's arithmetic is in bf16.
"""

from __future__ import annotations

import csv
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

import pvc_core
from pvc_core.errors import InputError
from pvc_core.io import write_json
from pvc_core.io.atomic import atomic_path
from pvc_core.metrics import nrmse, vaa
from pvc_core.model_files import ModelFolder
from pvc_core.model_spec import RUNTIME_KEYS, ModelSpec
from pvc_core.networks import build_network, count_parameters, size_divisor
from pvc_core.seeding import torch_seed_for
from pvc_core.training.case_cache import CachedCase, Pair, prepare_cases
from pvc_core.training.checkpoint import (load_training_checkpoint, restore_rng_states, resume_key, rng_states,
                                          save_training_checkpoint)
from pvc_core.training.dataset import EpochBatchSampler, StreamingCaseDataset
from pvc_core.training.distributed import DistContext, RankBatchSampler, distributed_context, state_digest
from pvc_core.training.init_from import InitialWeights, initial_weights, load_initial_weights
from pvc_core.training.loader import batches_of, default_num_workers, make_loader
from pvc_core.training.losses import LOSSES, batch_loss, per_sample_loss
from pvc_core.training.normalisation import rescale_output
from pvc_core.training.predict import (CHECKPOINT_FORMAT, CHECKPOINT_VERSION, autocast_for, cpu_has_bf16,
                                       predict_normalised, resolve_device)

LR_SCHEDULES = ("cosine", "constant")
#: Architectures with recurrent convolutions (the model's ``recurrence_t``).
RECURRENT_ARCHITECTURES = ("r2unet", "r2attention_unet")
#: Accepted values of ``model_cfg['selection']`` (schema ``$defs/model``).
SELECTIONS = ("nrmse", "vaa", "loss")

__all__ = ["LOSSES", "LR_SCHEDULES", "SELECTIONS", "complete_model_cfg", "selection_key", "train_model",
           "validation_scores"]


def complete_model_cfg(model_cfg: Mapping, source: str = "model_cfg") -> dict:
    """``model_cfg`` completed and validated (:meth:`pvc_core.model_spec.ModelSpec.complete`), as a
    plain ``dict``. Raises :class:`InputError` naming the offending key.
    """
    return ModelSpec.complete(model_cfg, source).as_dict()


def network_kwargs(cfg: Mapping) -> dict:
    """Keywords of :func:`~pvc_core.networks.build_network` for a completed model configuration
    (stored in the checkpoint, so that :func:`~pvc_core.training.predict.load_model` rebuilds it).

    ``recurrence_t`` other than 2 for a network without recurrent convolutions is an
    :class:`InputError` (it would silently do nothing).
    """
    kwargs = {"residual": bool(cfg["residual"]), "in_channels": 2 if cfg["attenuation_channel"] else 1,
              "dropout": float(cfg["dropout"])}
    if cfg["deep_supervision"]:
        if cfg["architecture"] != "unetpp":
            raise InputError(f"key 'deep_supervision': only unetpp has deep supervision, not {cfg['architecture']}",
                             "training model")
        kwargs["deep_supervision"] = True
    if cfg["architecture"] in RECURRENT_ARCHITECTURES:
        kwargs["t"] = int(cfg["recurrence_t"])
    elif cfg["recurrence_t"] != 2:
        raise InputError(f"key 'recurrence_t': only {' and '.join(RECURRENT_ARCHITECTURES)} have recurrent "
                         f"convolutions; {cfg['architecture']} takes none", "training model")
    return kwargs


@contextmanager
def _torch_algorithms(deterministic: bool, device: torch.device):
    """Deterministic algorithms (warn where none exists), or, for ``deterministic=False`` on CUDA,
    cudnn.benchmark (the fastest kernels, chosen by timing); restored on exit. The CPU is always
    deterministic."""
    was_on = torch.are_deterministic_algorithms_enabled()
    was_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    was_bench = torch.backends.cudnn.benchmark
    fast = not deterministic and device.type == "cuda"
    torch.use_deterministic_algorithms(not fast, warn_only=True)
    torch.backends.cudnn.benchmark = fast
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_on, warn_only=was_warn)
        torch.backends.cudnn.benchmark = was_bench


def _eta(seconds: float) -> str:
    """``h:mm:ss`` of a duration in seconds."""
    seconds = int(round(max(0.0, seconds)))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@torch.no_grad()
def validation_scores(module: nn.Module | None, cfg: dict, cases: Sequence[CachedCase], device: torch.device,
                      loss_name: str = "l1", vaa_alpha: float = 0.05) -> dict[str, float]:
    """Mean validation scores over ``cases``, each corrected as at prediction time.

    Returns ``{"val_loss", "val_nrmse_pct", "val_vaa_pct"}``: the loss (:mod:`~pvc_core.training.losses`)
    in input-max units, and the masked NRMSE and VAA in percent (:func:`pvc_core.metrics.nrmse`,
    :func:`pvc_core.metrics.vaa` with mask ``truth > 0`` and tolerance ``vaa_alpha``) of the
    MBq/mL prediction: the network output times the input maximum, with the total conserved for
    ``normalisation='sum'`` (:func:`~pvc_core.training.normalisation.rescale_output`, as
    :func:`~pvc_core.training.predict.predict_image`). ``module=None`` scores the uncorrected
    input (the no-PVC baseline). NaN for every score without cases. Cases are read from the
    cache one at a time; a case whose truth holds no activity is an :class:`InputError` naming it.
    """
    if not len(cases):
        return {"val_loss": math.nan, "val_nrmse_pct": math.nan, "val_vaa_pct": math.nan}
    if module is not None:
        module.eval()
    scores: dict[str, list[float]] = {"val_loss": [], "val_nrmse_pct": [], "val_vaa_pct": []}
    for case in cases:
        x_map, y_map = case.load(mmap=True)
        x, y = np.array(x_map, dtype=np.float32), np.array(y_map, dtype=np.float64)
        del x_map, y_map
        mu = case.load_mu(mmap=False)
        out_n = x if module is None else predict_normalised(module, cfg, x, device, mu=mu)
        image = x.astype(np.float64) * case.scale  # the input in MBq/mL (to float rounding)
        prediction = rescale_output(out_n, case.scale, image, cfg["normalisation"]).astype(np.float64)
        truth = y * case.scale
        diff = prediction / case.scale - y
        if loss_name == "l1":
            scores["val_loss"].append(float(np.mean(np.abs(diff))))
        elif loss_name == "mse":
            scores["val_loss"].append(float(np.mean(diff ** 2)))
        else:
            scores["val_loss"].append(float(per_sample_loss(loss_name, torch.from_numpy(prediction / case.scale)[None, None],
                                                            torch.from_numpy(y)[None, None], vaa_alpha)[0]))
        try:
            scores["val_nrmse_pct"].append(nrmse(prediction, truth))
            scores["val_vaa_pct"].append(vaa(prediction, truth, alpha=vaa_alpha))
        except InputError as err:
            raise InputError(f"validation case {case.case_id}: {err}", case.sources[1]) from None
    return {k: float(np.mean(v)) for k, v in scores.items()}


def selection_key(scores: dict, selection: str) -> tuple[float, ...]:
    """Sort key of an epoch's validation ``scores`` under ``selection`` (smaller is better).

    ``'nrmse'``: (NRMSE, -VAA, loss); ``'vaa'``: (-VAA, NRMSE, loss); ``'loss'``: (loss,). The
    training keeps an epoch only when its key is strictly smaller, so ties go to the earlier one.
    """
    if selection == "nrmse":
        return (scores["val_nrmse_pct"], -scores["val_vaa_pct"], scores["val_loss"])
    if selection == "vaa":
        return (-scores["val_vaa_pct"], scores["val_nrmse_pct"], scores["val_loss"])
    if selection == "loss":
        return (scores["val_loss"],)
    raise InputError(f"selection must be one of {SELECTIONS}, got {selection!r}")


_SELECTION_TEXT = {"nrmse": "lowest mean masked NRMSE (ties: higher VAA, then lower loss, then earlier epoch)",
                   "vaa": "highest mean VAA (ties: lower masked NRMSE, then lower loss, then earlier epoch)",
                   "loss": "lowest validation loss (ties: earlier epoch)"}


def _save_checkpoint(path: Path, state_dict: dict, cfg: ModelSpec, network_kwargs: dict) -> None:
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "model_cfg": cfg.as_dict(),
        "normalisation": {"input": "divided by the input maximum",
                          "target": "divided by the input maximum",
                          "output": cfg["normalisation"]},
        "network_kwargs": network_kwargs,
        "pvc_core_version": pvc_core.__version__,
        "torch_version": str(torch.__version__),
    }
    with atomic_path(path, replace=True) as tmp, open(tmp, "wb") as fh:
        torch.save(ckpt, fh)


HISTORY_FIELDS = ("epoch", "train_loss", "val_loss", "val_nrmse_pct", "val_vaa_pct", "seconds")


def _write_history(path: Path, history: Sequence[dict]) -> None:
    """``history.csv`` (one row per epoch so far), written atomically."""
    with atomic_path(path, replace=True) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(HISTORY_FIELDS))
        writer.writeheader()
        for row in history:
            writer.writerow({k: (f"{v:.8g}" if isinstance(v, float) else v) for k, v in row.items()})


def train_model(train_pairs: Sequence[Pair], val_pairs: Sequence[Pair], model_cfg: Mapping,
                out_dir: str | os.PathLike, seed: int, log: Callable[[str], object] = print,
                device: str | torch.device | None = None, *, loss: str | None = None,
                augmentation: bool | None = None, lr_schedule: str | None = None, residual: bool | None = None,
                cache_dir: str | os.PathLike | None = None,
                num_workers: int | None = None, on_epoch_end: Callable[[int], object] | None = None,
                pipeline_fingerprint: str | None = None, vaa_alpha: float = 0.05, threads: int = 1,
                trained_for: dict | None = None) -> dict:
    """Train one network and write ``model.pt``, ``model_card.json`` and ``history.csv`` to ``out_dir``.

    Parameters
    ----------
    train_pairs, val_pairs:
        ``(input_nifti, truth_nifti)`` (or ``(case_id, input, truth)``) paths; images in MBq/mL.
    model_cfg:
        A :class:`~pvc_core.model_spec.ModelSpec`, or keys of the schema's ``$defs/model``
        (architecture, dataset, normalisation, input, epochs, batch_size, learning_rate, channels),
        which are completed with the schema's defaults and validated.
    seed:
        Global seed; the same seed, data and machine give identical weights.
    log:
        Called with one line per epoch.
    device:
        ``'cpu'``, ``'cuda'``, ...; default the model's ``device`` option (``'auto'``: CUDA when
        available). ``'cuda'`` without a GPU is an :class:`InputError` naming the option.
    loss, augmentation, lr_schedule, residual:
        Override the model's keys of the same names (see the module docstring); recorded in the
        model card.
    cache_dir:
        Folder of the normalised case cache (:mod:`pvc_core.training.case_cache`); may be shared
        by trainings on the same cases. Default: ``out_dir/cache``.
    num_workers:
        DataLoader worker processes (0: samples are read in the training process); default the
        model's ``num_workers`` option (``'auto'``:
        :func:`~pvc_core.training.loader.default_num_workers` of the device and ``threads``).
        Does not change the result.
    on_epoch_end:
        Called with the epoch number once that epoch's checkpoint and history are on disk (an
        exception raised there stops the training as a kill would; the next call resumes).

    pipeline_fingerprint:
        The pipeline's fingerprint of this training (its settings, upstream stages and code
        version); part of the specification a checkpoint must match to be resumed.
    vaa_alpha:
        Relative tolerance of the validation VAA (the configuration's ``evaluation.alpha``,
        paper 5%); see ``selection`` in the module docstring.
    threads:
        CPU threads granted to the job (for ``num_workers='auto'``).
    trained_for:
        What the training data stands for (voxel size, matrix, reconstruction, collimator, ...;
        :func:`pvc_core.pipeline.models.trained_for`), written to the card's ``trained_for``
        together with the number of training cases.

    Speed options of the model (schema ``$defs/model``): ``precision`` (``'bf16'``: bfloat16
    autocast on CUDA or the CPU), ``channels_last`` (channels_last_3d memory format),
    ``deterministic`` (``False`` on CUDA: cudnn.benchmark), ``compile`` (``torch.compile``).
    Only ``precision`` is part of the model's identity (the resume key and the pipeline's
    fingerprint); the others (:data:`~pvc_core.model_spec.RUNTIME_KEYS`) change the speed
    and at most the rounding, and are recorded in the model card's ``training.runtime``.

    ``init_from`` (a model file or folder, or a shipped model's name): the network starts from
    that model's weights (:mod:`pvc_core.training.init_from`; a network that differs is an
    :class:`InputError` naming ``init_from``, raised before any work).

    A ``checkpoint.pt`` in ``out_dir`` from a training of the same specification is resumed
    (:mod:`pvc_core.training.checkpoint`); one of another specification is overwritten. A
    finished training's checkpoint stays: started again unchanged, the training writes its
    outputs from it without another epoch (delete it to train again from the first epoch).

    Returns
    -------
    The model card (also written as JSON).
    """
    overrides = {"loss": loss, "augmentation": augmentation, "lr_schedule": lr_schedule, "residual": residual}
    changes = {k: v for k, v in overrides.items() if v is not None}
    cfg = ModelSpec.complete({**model_cfg, **changes} if changes else model_cfg, "model_cfg")
    loss, augmentation, lr_schedule, residual = (cfg[k] for k in overrides)
    network_kwargs(cfg)  # refuse a bad recurrence_t before any work (loss and schedule: the schema's enums)
    if not train_pairs:
        raise InputError("no training cases given")
    if not 0 < vaa_alpha < 1:
        raise InputError(f"vaa_alpha (evaluation.alpha) must lie in (0, 1), got {vaa_alpha}")
    initial = initial_weights(cfg)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(cfg["device"] if device is None else device)
    with distributed_context(dev) as (ctx, dev):
        return _train(ctx, dev, cfg, train_pairs, val_pairs, out_dir, seed, log, loss=loss, augmentation=augmentation,
                      lr_schedule=lr_schedule, residual=residual, cache_dir=cache_dir, num_workers=num_workers,
                      on_epoch_end=on_epoch_end, pipeline_fingerprint=pipeline_fingerprint, vaa_alpha=vaa_alpha,
                      threads=threads, trained_for=trained_for, initial=initial)


def _no_log(_line: str) -> None:
    pass


def _train(ctx: DistContext, dev: torch.device, cfg: ModelSpec, train_pairs: Sequence[Pair], val_pairs: Sequence[Pair],
           out_dir: Path, seed: int, log: Callable[[str], object], *, loss: str, augmentation: bool,
           lr_schedule: str, residual: bool, cache_dir: str | os.PathLike | None, num_workers: int | None,
           on_epoch_end: Callable[[int], object] | None, pipeline_fingerprint: str | None, vaa_alpha: float,
           threads: int, trained_for: dict | None = None, initial: InitialWeights | None = None) -> dict:
    """:func:`train_model` on this process's ``dev``, as rank ``ctx.rank`` of ``ctx.world_size``
    (:mod:`pvc_core.training.distributed`): rank 0 alone logs, validates and writes files."""
    if not ctx.is_main:
        log = _no_log
    threads = max(1, int(threads) // ctx.world_size)  # the job's CPUs are shared by its ranks
    if num_workers is None:
        num_workers = default_num_workers(dev, threads) if cfg["num_workers"] == "auto" else int(cfg["num_workers"])
    if dev.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    t_start = time.perf_counter()

    cache = Path(cache_dir) if cache_dir is not None else out_dir / "cache"
    for writer in (True, False):  # rank 0 fills the cache, then the other ranks read it
        if writer == ctx.is_main:
            train = prepare_cases(train_pairs, cache, log)
            val = prepare_cases(val_pairs, cache, log) if val_pairs else []
        if writer:
            ctx.barrier()
    if cfg["validation_cases"]:
        val = val[:cfg["validation_cases"]]
    log(f"training {cfg['architecture']} ({cfg['input']}, normalisation {cfg['normalisation']}) on "
        f"{len(train)} cases, validating on {len(val)}, {cfg['epochs']} epochs, device {dev}, {cfg['precision']}"
        f"{', channels_last' if cfg['channels_last'] else ''}{', compiled' if cfg['compile'] else ''}"
        f"{', cudnn.benchmark' if not cfg['deterministic'] and dev.type == 'cuda' else ''}, {num_workers} workers"
        f"{f' per rank, {ctx.world_size} ranks (DDP, {ctx.backend})' if ctx.active else ''}")
    if cfg["precision"] == "bf16" and dev.type == "cpu" and not cpu_has_bf16():
        log("bf16 on a CPU without AMX or AVX512-BF16: torch emulates it, probably slower than fp32")
    if initial is not None:
        log(f"starting from the weights of {initial.record['weights']} (sha256 {initial.record['weights_sha256'][:12]})")
    baseline = ctx.broadcast(validation_scores(None, cfg, val, dev, loss, vaa_alpha) if ctx.is_main else None)
    if len(val):
        log(f"validation without PVC: loss {baseline['val_loss']:.6f}  NRMSE {baseline['val_nrmse_pct']:.3f} %  "
            f"VAA {baseline['val_vaa_pct']:.2f} %; selecting by {cfg['selection']}")

    torch_seed = torch_seed_for(seed, 0, "train")
    net_kwargs = network_kwargs(cfg)
    options = {"pipeline_fingerprint": pipeline_fingerprint, "vaa_alpha": float(vaa_alpha)}
    folder = ModelFolder(out_dir)
    ckpt_path = folder.checkpoint
    identity = cfg.identity
    resumed = load_training_checkpoint(ckpt_path, resume_key(identity, options, seed, train, val), log)
    memory_format = torch.channels_last_3d if cfg["channels_last"] else torch.contiguous_format
    with _torch_algorithms(cfg["deterministic"], dev):
        torch.manual_seed(torch_seed)
        dataset = StreamingCaseDataset(train, cfg["input"], size_divisor(cfg["channels"]), torch_seed, augmentation)
        sampler = EpochBatchSampler(dataset, cfg["batch_size"], torch_seed)
        rank_sampler = RankBatchSampler(sampler, ctx.rank, ctx.world_size)
        generator = torch.Generator().manual_seed(torch_seed)
        loader = make_loader(dataset, rank_sampler if ctx.active else sampler, generator, num_workers, dev)
        module = build_network(cfg["architecture"], cfg["channels"], **net_kwargs).to(dev)
        if initial is not None:  # after the random initialisation, so that the random streams are unchanged
            load_initial_weights(module, initial)
        module = module.to(memory_format=memory_format)
        optimiser = torch.optim.Adam(module.parameters(), lr=cfg["learning_rate"])
        scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=cfg["epochs"],
                                                                eta_min=cfg["learning_rate"] / 20)
                     if lr_schedule == "cosine" else None)
        history: list[dict] = []
        best = {"epoch": 0, "val_loss": math.inf, "val_nrmse_pct": math.inf, "val_vaa_pct": -math.inf, "state": None}
        start_epoch, seconds_before = 0, 0.0
        if resumed is not None:
            try:
                module.load_state_dict(resumed["model"])
                optimiser.load_state_dict(resumed["optimiser"])
                if scheduler is not None:
                    scheduler.load_state_dict(resumed["scheduler"])
                restore_rng_states(resumed["rng"], generator)
            except (RuntimeError, KeyError, ValueError, TypeError) as err:
                raise InputError(f"training checkpoint does not fit this training ({type(err).__name__}: "
                                 f"{err}); delete it to train from the first epoch".splitlines()[0], ckpt_path) from None
            history, best = list(resumed["history"]), dict(resumed["best"])
            start_epoch, seconds_before = int(resumed["epoch"]), float(resumed["seconds"])
            log(f"resuming from {ckpt_path} after epoch {start_epoch}/{cfg['epochs']}")
        wrapped = module
        if ctx.active:  # every rank loaded the same weights; DDP broadcasts rank 0's all the same
            wrapped = nn.parallel.DistributedDataParallel(module, device_ids=[dev.index] if dev.type == "cuda" else None)
        step_module = torch.compile(wrapped) if cfg["compile"] else wrapped  # shares module's parameters
        t_loop = time.perf_counter()
        for epoch in range(start_epoch + 1, cfg["epochs"] + 1):
            t0 = time.perf_counter()
            module.train()
            sampler.set_epoch(epoch)
            total, n_seen, steps = 0.0, 0, 0
            shares = rank_sampler.shares() if ctx.active else None
            for xb, yb in batches_of(loader):
                x = xb.to(dev, non_blocking=True).contiguous(memory_format=memory_format)
                y = yb.to(dev, non_blocking=True)
                optimiser.zero_grad(set_to_none=True)
                with autocast_for(cfg, dev):
                    out = step_module(x)
                if shares is None:
                    step_loss = batch_loss(loss, out.float(), y.expand_as(out), vaa_alpha)
                    batch_sum, counted = step_loss.detach().item() * len(xb), len(xb)
                else:  # this rank's part of the global batch's mean loss (module docstring of distributed)
                    _, counted, global_size = next(shares)
                    per_sample = per_sample_loss(loss, out.float(), y.expand_as(out), vaa_alpha)
                    weights = (torch.arange(len(xb), device=dev) < counted).to(per_sample.dtype)
                    weighted = (per_sample * weights).sum()
                    step_loss = weighted * (ctx.world_size / global_size)
                    batch_sum = weighted.detach().item()
                step_loss.backward()
                optimiser.step()
                total += batch_sum
                n_seen += counted
                steps += 1
            train_seconds = time.perf_counter() - t0
            if scheduler is not None:
                scheduler.step()
            total, n_seen = ctx.sum(total, n_seen)
            train_loss = total / n_seen
            scores = ctx.broadcast(validation_scores(module, cfg, val, dev, loss, vaa_alpha) if ctx.is_main else None)
            seconds = time.perf_counter() - t0
            history.append({"epoch": epoch, "train_loss": train_loss, **scores, "seconds": seconds})
            epochs_here = epoch - start_epoch
            eta = (time.perf_counter() - t_loop) / epochs_here * (cfg["epochs"] - epoch)
            improved = (selection_key(scores, cfg["selection"]) < selection_key(best, cfg["selection"])
                        if len(val) else True)
            if improved and ctx.is_main:
                best = {"epoch": epoch, **scores,
                        "state": {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}}
            if ctx.is_main:
                save_training_checkpoint(ckpt_path, {
                    "resume_key": resume_key(identity, options, seed, train, val), "epoch": epoch,
                    "model": {k: v.detach().cpu() for k, v in module.state_dict().items()},
                    "optimiser": optimiser.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "rng": rng_states(generator), "best": best, "history": history,
                    "seconds": seconds_before + time.perf_counter() - t_start,
                })
                _write_history(folder.history, history)
            ctx.barrier()  # the checkpoint is on disk before any rank goes on
            log(f"epoch {epoch:4d}/{cfg['epochs']}  train {train_loss:.6f}  val {scores['val_loss']:.6f}  "
                f"NRMSE {scores['val_nrmse_pct']:.3f} %  VAA {scores['val_vaa_pct']:.2f} %"
                f"{'  *' if improved and len(val) else ''}  ({seconds:.1f} s, {steps / train_seconds:.2f} steps/s, "
                f"ETA {_eta(eta)})")
            if on_epoch_end is not None:
                on_epoch_end(epoch)

    digests = ctx.gather(state_digest(module.state_dict()))
    card = _write_outputs(out_dir, cfg, module, best, history, baseline, train, val, cache, net_kwargs, dev,
                          num_workers, ctx, digests, seed=seed, torch_seed=torch_seed, loss=loss,
                          augmentation=augmentation, lr_schedule=lr_schedule, residual=residual,
                          vaa_alpha=vaa_alpha, start_epoch=start_epoch, seconds=seconds_before + time.perf_counter()
                          - t_start, trained_for=trained_for, initial=initial, log=log) if ctx.is_main else None
    card = ctx.broadcast(card)
    ctx.barrier()
    return card


def _write_outputs(out_dir: Path, cfg: ModelSpec, module: nn.Module, best: dict, history: list[dict], baseline: dict,
                   train: Sequence[CachedCase], val: Sequence[CachedCase], cache: Path, network_kwargs: dict,
                   dev: torch.device, num_workers: int, ctx: DistContext, digests: list[str], *, seed: int,
                   torch_seed: int, loss: str, augmentation: bool, lr_schedule: str, residual: bool,
                   vaa_alpha: float, start_epoch: int, seconds: float, trained_for: dict | None,
                   initial: InitialWeights | None, log: Callable[[str], object]) -> dict:
    """``model.pt``, ``history.csv`` and ``model_card.json`` of a finished training (rank 0); the card."""
    folder = ModelFolder(out_dir)
    _save_checkpoint(folder.weights, best["state"], cfg, network_kwargs)
    _write_history(folder.history, history)

    card = {
        "model": "DL-PVC network (Leube et al., J Nucl Med 2024)",
        "model_cfg": cfg.as_dict(),
        "network": {"parameters": count_parameters(module), **network_kwargs,
                    "output": "relu(x + net(x))" if residual else "relu(net(x))"},
        "training": {
            "seed": int(seed), "torch_seed": torch_seed, "loss": loss, "optimiser": "Adam",
            "lr_schedule": lr_schedule,
            "augmentation": "flips of axes 0, 2; quarter turns in axes 0-1" if augmentation else "none",
            "device": str(dev), "num_workers": int(num_workers),
            "runtime": {"device": str(dev), "num_workers": int(num_workers),
                        **{k: cfg[k] for k in RUNTIME_KEYS if k not in ("device", "num_workers")},
                        "note": "runtime options: not part of the model's identity or fingerprint"},
            "precision": cfg["precision"], "epochs": cfg["epochs"], "best_epoch": best["epoch"],
            "best_val_loss": None if not len(val) else best["val_loss"],
            "best_val_nrmse_pct": None if not len(val) else best["val_nrmse_pct"],
            "best_val_vaa_pct": None if not len(val) else best["val_vaa_pct"],
            "no_pvc_val_loss": None if not len(val) else baseline["val_loss"],
            "no_pvc_val_nrmse_pct": None if not len(val) else baseline["val_nrmse_pct"],
            "no_pvc_val_vaa_pct": None if not len(val) else baseline["val_vaa_pct"],
            "vaa_alpha": float(vaa_alpha),
            "final_train_loss": history[-1]["train_loss"],
            "final_val_loss": None if not len(val) else history[-1]["val_loss"],
            "resumed_from_epoch": start_epoch,
            "init_from": None if initial is None else initial.record,
            "seconds": seconds,
            "distributed": {"world_size": ctx.world_size, "backend": ctx.backend, "global_batch_size": cfg["batch_size"],
                            "rank_weight_digests": digests,
                            "note": "runtime: the global batch is split across ranks; not part of the identity"},
            "selection": (f"{cfg['selection']}: {_SELECTION_TEXT[cfg['selection']]} over {len(val)} validation "
                          f"cases" if len(val) else "last epoch (no validation cases)"),
        },
        "trained_for": {**(trained_for or {}), "n_train_cases": len(train),
                        "attenuation_channel": bool(cfg["attenuation_channel"])},
        "data": {
            "dataset": cfg["dataset"],
            "n_train_cases": len(train), "train_case_ids": [c.case_id for c in train],
            "n_validation_cases": len(val), "validation_case_ids": [c.case_id for c in val],
            "image_shapes": sorted({str(c.shape) for c in train}),
            "cache": str(cache),
        },
        "versions": {"pvc_core": pvc_core.__version__, "torch": str(torch.__version__)},
        "files": {"weights": folder.weights.name, "history": folder.history.name,
                  "checkpoint": folder.checkpoint.name},
    }
    write_json(folder.card, card)
    log(f"best epoch {best['epoch']} by {cfg['selection']} (val loss {best['val_loss']:.6f}, NRMSE "
        f"{best['val_nrmse_pct']:.3f} %, VAA {best['val_vaa_pct']:.2f} %); wrote {folder.weights}")
    return card
