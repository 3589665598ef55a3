"""What every job does before it computes: thread count and a log file."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Callable, Iterator


def set_threads(n: int) -> None:
    """Limit torch (and BLAS through torch) to ``n`` threads, as the scheduler granted."""
    import torch  # lazy: torch (~1.5 s) only for the jobs that set its threads

    torch.set_num_threads(max(1, int(n)))


@contextlib.contextmanager
def job_log(path: str | Path | None, threads: int = 1,
            on_success: Callable[[], None] | None = None) -> Iterator[Callable[[str], None]]:
    """Open a job's log file and yield a ``log(message)`` function (also echoes to stderr).

    An exception is written to the log with its one-line message before it propagates, so a
    failed job's log says why it failed. ``on_success`` runs when the block finished without one.
    """
    set_threads(threads)
    fh = open(path, "a") if path else None
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, file=sys.stderr, flush=True)
        if fh:
            fh.write(line + "\n")
            fh.flush()

    try:
        yield log
        if on_success is not None:
            on_success()
        log(f"finished in {time.perf_counter() - t0:.1f} s")
    except Exception as err:
        log(f"ERROR: {type(err).__name__}: {err}")
        raise
    finally:
        if fh:
            fh.close()


def snakemake_job(smk):
    """For a ``script:`` file: a log context and the rule's parameters.

    A rule passes its script only the specs its stage uses (``params``), never the whole
    configuration. A fan-in rule that passes ``params.job`` (its name), ``params.layout``,
    ``params.fingerprint`` and ``params.depends_on`` gets them recorded under
    ``fingerprints/`` when the job succeeds (read by ``dlpvc plan``).
    """
    log_path = smk.log[0] if len(smk.log) else None
    p = smk.params
    on_success = None
    if hasattr(p, "job") and hasattr(p, "fingerprint"):
        from pvc_core.pipeline.fingerprints import record_fan_in  # lazy: schema and scipy (~0.6 s), fan-in jobs only

        def on_success() -> None:
            record_fan_in(p.layout, p.job, p.fingerprint, p.depends_on)
    return job_log(log_path, smk.threads, on_success), p
