"""A ``dlpvc apply`` call: plan it, correct every input it can, report each, settle the exit code.

Order (so that a refused call costs no time and a batch loses nothing):

1. the model is *found* (its file and card; no torch) and the whole call is planned
   (:func:`pvc_core.apply.plan.plan_apply`): a problem of the call is one line and exit 2;
2. each input in turn is read and checked, and only then is its model loaded (once per model): a
   call whose every input is refused never loads a network;
3. each input gets one line: ``<input> -> <output>: ...`` on stdout when written or skipped,
   ``dlpvc apply: <file or option>: <problem>`` on stderr when refused or failed; warnings and
   notes are one line each on stderr (``dlpvc apply: WARNING: ...`` / ``note: ...``);
4. ``--summary FILE`` gets one JSON line per input (input, output, status, reasons, totals, domain;
   with ``--uncertainty`` the SD image's path).

Exit codes (:data:`EXIT_CODES`): 0 every input written or skipped; 2 an input or the call was
refused (nothing written for that input); 1 we failed on an input (an I/O error, a fault of
ours); 130 / 143 interrupted by SIGINT / SIGTERM, temporaries removed. A batch goes on after a
refused or failed input and exits 1 if any failed, else 2 if any was refused, else 0. A closed
stdout (``dlpvc apply ... | head``) never stops a batch: the lines are dropped, the work goes on.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from pvc_core.apply.exit_codes import EXIT_CODES, EXIT_FAILED, EXIT_OK, EXIT_REFUSED, EXIT_SIGINT, EXIT_SIGTERM
from pvc_core.apply.model import ModelRef, find_model, load_apply_model
from pvc_core.apply.plan import CORRECT, REFUSE, SKIP, ApplyPlan, Job, plan_apply, written_from
from pvc_core.errors import InputError
from pvc_core.io.atomic import atomic_path, remove_pending

__all__ = ["EXIT_OK", "EXIT_FAILED", "EXIT_REFUSED", "EXIT_SIGINT", "EXIT_SIGTERM", "EXIT_CODES", "ApplyOptions",
           "Interrupted", "run_apply"]

class Interrupted(BaseException):
    """Raised by the SIGTERM handler so that the batch unwinds (temporaries removed) and exits 143."""

    def __init__(self, code: int, name: str) -> None:
        super().__init__(name)
        self.code, self.name = code, name


@dataclass(frozen=True)
class ApplyOptions:
    """What the user asked of ``dlpvc apply`` (the command-line options)."""

    inputs: Sequence[str]
    outputs: Sequence[str]
    cts: Sequence[str] | None = None
    model: str | None = None
    device: str = "auto"
    reconstruction: str | None = None
    strict: bool = False
    overwrite: bool = False
    skip_existing: bool = False
    summary: str | None = None
    uncertainty: bool = False
    labels: Sequence[str] | None = None


class _Console:
    """One-line output: results on stdout (dropped once stdout is closed), everything else on stderr."""

    def __init__(self, command: str = "apply") -> None:
        self.prefix = f"dlpvc {command}: "
        self.stdout_open = True

    def result(self, text: str) -> None:
        if not self.stdout_open:
            return
        try:
            print(text, file=sys.stdout, flush=True) if sys.stdout is not None else None
        except (OSError, ValueError):  # `| head` (broken pipe), `> /dev/full`: stop printing, keep working
            self.stdout_open = False
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
            except (OSError, ValueError):
                pass

    def _err(self, text: str) -> None:
        if sys.stderr is None:  # started with stderr closed (2>&-)
            return
        try:
            print(self.prefix + " ".join(str(text).split()), file=sys.stderr, flush=True)
        except (BrokenPipeError, OSError, ValueError):
            pass

    def refused(self, text: str) -> None:
        self._err(text)

    def warning(self, text: str) -> None:
        self._err(f"WARNING: {text}")

    def note(self, text: str) -> None:
        self._err(f"note: {text}")


@dataclass
class _Record:
    """One input's line of the ``--summary`` file."""

    job: Job
    status: str = "not started"
    reasons: list[str] = field(default_factory=list)
    sidecar: dict | None = None

    def as_dict(self) -> dict:
        side = self.sidecar or {}
        return {"input": str(self.job.input), "output": str(self.job.output), "sidecar": str(self.job.sidecar),
                "status": self.status, "reasons": self.reasons,
                "input_total_mbq": side.get("input_total_mbq"), "output_total_mbq": side.get("output_total_mbq"),
                "domain": side.get("domain"), "warnings": side.get("warnings", []),
                "model": (side.get("model") or {}).get("name"), "seconds": side.get("seconds"),
                **({"sd": side["uncertainty"]["sd"]} if side.get("uncertainty") else {})}


def _one_line(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        where = f"{err.filename}: " if err.filename else ""
        return f"{where}{err.strerror}"
    return " ".join(f"{type(err).__name__}: {err}".split())


class _Models:
    """Models found by path and loaded on first use (a refused call never loads one)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._loaded: dict[Path, object] = {}

    def load(self, ref: ModelRef):
        """The loaded model; a model that cannot load is tried once (each input then gets its line)."""
        if ref.path not in self._loaded:
            try:
                self._loaded[ref.path] = load_apply_model(ref, self.device)
            except InputError as err:
                self._loaded[ref.path] = err
        loaded = self._loaded[ref.path]
        if isinstance(loaded, InputError):
            raise loaded
        return loaded


def _model_for(opts: ApplyOptions, call_model: ModelRef, stated_kind: str | None) -> ModelRef:
    """The model of one input: the call's (``--model``, or the default for ``--reconstruction``, else
    RR), unless neither option is given and the input states its reconstruction kind."""
    if opts.model or opts.reconstruction or not stated_kind:
        return call_model
    return find_model(None, stated_kind)


def _write_summary(path: str, records: list[_Record], overwrite: bool) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)  # e.g. inside the output folder of a folder batch
    with atomic_path(target, replace=overwrite) as tmp:
        tmp.write_text("".join(json.dumps(r.as_dict()) + "\n" for r in records))


#: Signals received during the call. The handlers also raise, but an exception raised while Python
#: runs a finaliser (``__del__``) is printed and dropped, so the batch checks this between inputs too.
_received: list[Interrupted] = []


def _on_signal(signum, frame):  # noqa: ARG001 - signal handler signature
    stop = Interrupted(EXIT_SIGTERM, "SIGTERM") if signum == signal.SIGTERM else Interrupted(EXIT_SIGINT, "SIGINT")
    _received.append(stop)
    raise stop


def _stop_if_signalled() -> None:
    if _received:
        raise _received[0]


def run_apply(opts: ApplyOptions, console: _Console | None = None) -> int:
    """Run one ``dlpvc apply`` call and return its exit code (see the module docstring)."""
    console = console or _Console()
    if opts.model is not None:
        call_model = find_model(opts.model, None)
    elif opts.reconstruction is not None:
        call_model = find_model(None, opts.reconstruction)
    else:
        call_model = find_model(None, "RR")
    plan = plan_apply(opts.inputs, opts.outputs, opts.cts, overwrite=opts.overwrite,
                      skip_existing=opts.skip_existing, model_sha256=call_model.sha256, summary=opts.summary,
                      uncertainty=opts.uncertainty, labels=opts.labels)
    for text in plan.notes:
        console.note(text)
    records = [_Record(job) for job in plan.jobs]
    previous = {}
    in_main = _in_main_thread()
    _received.clear()
    if in_main:
        previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    code = None
    try:
        _run_jobs(opts, plan, records, call_model, console)
    except (KeyboardInterrupt, Interrupted) as stop:
        remove_pending()
        code = stop.code if isinstance(stop, Interrupted) else EXIT_SIGINT
        name = stop.name if isinstance(stop, Interrupted) else "SIGINT"
        for record in records:
            if record.status == "running":  # the signal may have come after both files were committed
                record.status = "done" if written_from(record.job) else "interrupted"
        done = sum(r.status == "done" for r in records)
        console.refused(f"interrupted by {name}: {done} of {len(records)} image(s) written, the rest not; "
                        "no partial file left")
    finally:
        if in_main:
            for sig, handler in previous.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        if opts.summary is not None:
            try:
                _write_summary(opts.summary, records, opts.overwrite)
            except OSError as err:
                console.refused(f"--summary: {_one_line(err)}")
                code = code or EXIT_FAILED
    if code is not None:
        return code
    statuses = [r.status for r in records]
    if len(records) > 1:
        counts = {s: statuses.count(s) for s in ("done", "skipped", "refused", "failed") if statuses.count(s)}
        console.note(f"{len(records)} image(s): " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    if "failed" in statuses:
        return EXIT_FAILED
    if "refused" in statuses:
        return EXIT_REFUSED
    return EXIT_OK


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _run_jobs(opts: ApplyOptions, plan: ApplyPlan, records: list[_Record], call_model: ModelRef,
              console: _Console) -> None:
    models = _Models(opts.device)
    bar = _progress(len(records))
    for record in records:
        _stop_if_signalled()
        job = record.job
        if job.action == SKIP:
            record.status, record.reasons = "skipped", list(job.reasons)
            console.result(f"{job.input} -> {job.output}: skipped ({job.reasons[0]})")
            _tick(bar)
            continue
        if job.action == REFUSE:
            record.status, record.reasons = "refused", list(job.reasons)
            console.refused("; ".join(job.reasons))
            _tick(bar)
            continue
        assert job.action == CORRECT
        # lazy: reading and correcting (scipy.ndimage, schema: ~0.25 s) load at the first input corrected, none on refusal
        from pvc_core.apply.correct import apply_one, read_spect

        record.status = "running"
        try:
            spect = read_spect(job.input, console.note)
            ref = _model_for(opts, call_model, spect.stated.get("reconstruction"))
            model = models.load(ref)
            side = apply_one(model, job, say=console.note, warn=console.warning, reconstruction=opts.reconstruction,
                             strict=opts.strict, spect=spect)
        except InputError as err:
            record.status, record.reasons = "refused", [str(err)]
            console.refused(str(err))
        except (KeyboardInterrupt, Interrupted):
            raise
        except Exception as err:  # noqa: BLE001 - one input's fault never stops the batch
            record.status, record.reasons = "failed", [_one_line(err)]
            console.refused(f"{job.input}: failed, nothing written: {_one_line(err)}")
        else:
            record.status, record.sidecar = "done", side
            flag = "" if side["domain"]["status"] == "inside" else f" [{side['domain']['status']} the model's domain]"
            spread = side.get("uncertainty")
            sd = f"; SD of {spread['n_symmetries']} symmetries -> {spread['sd']}" if spread else ""
            console.result(f"{job.input} -> {job.output}: {side['input_total_mbq']:.2f} MBq in, "
                           f"{side['output_total_mbq']:.2f} MBq out, {side['seconds']:.2f} s on {side['device']}"
                           f"{flag}{sd}")
        _tick(bar)
    if bar is not None:
        bar.close()
    _stop_if_signalled()


def _progress(n: int):
    """A progress bar on stderr for a batch on a terminal (none otherwise)."""
    if n < 2 or sys.stderr is None or not sys.stderr.isatty():
        return None
    return tqdm(total=n, desc="dlpvc apply", unit="image", file=sys.stderr, leave=False)


def _tick(bar) -> None:
    if bar is not None:
        bar.update(1)
