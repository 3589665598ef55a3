"""What every job does before it computes: thread count and a log file."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Callable, Iterator


def set_threads(n: int) -> None:
    """Limit torch (and BLAS through torch) to ``n`` threads, as the scheduler granted."""
    import torch

    torch.set_num_threads(max(1, int(n)))


@contextlib.contextmanager
def job_log(path: str | Path | None, threads: int = 1) -> Iterator[Callable[[str], None]]:
    """Open a job's log file and yield a ``log(message)`` function (also echoes to stderr).

    An exception is written to the log with its one-line message before it propagates, so a
    failed job's log says why it failed.
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
        log(f"finished in {time.perf_counter() - t0:.1f} s")
    except Exception as err:
        log(f"ERROR: {type(err).__name__}: {err}")
        raise
    finally:
        if fh:
            fh.close()


def snakemake_job(smk) -> tuple[Callable, dict]:
    """For a ``script:`` file: a log context and the validated configuration of the job.

    The workflow passes the configuration to every rule as ``params.config`` (never read from
    the global config inside a script).
    """
    log_path = smk.log[0] if len(smk.log) else None
    return job_log(log_path, smk.threads), smk.params.config
