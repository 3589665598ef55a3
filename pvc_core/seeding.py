"""Reproducible random streams: every case is a pure function of (global seed, case id).

Each stage gets its own independent stream, so that re-running one stage (e.g. noise) never
changes what another stage (e.g. the phantom) draws, and adding a stage never shifts the
numbers of an existing one.
"""

from __future__ import annotations

import zlib

import numpy as np



def stage_key(stage: str) -> int:
    """Stable 32-bit integer for a stage name (CRC32 of its UTF-8 bytes)."""
    return zlib.crc32(stage.encode("utf-8"))


def rng_for(seed: int, case_id: int, stage: str) -> np.random.Generator:
    """Independent numpy Generator for ``(seed, case_id, stage)``.

    The same three values always give the same stream, bit for bit, on every machine
    (PCG64 seeded through ``SeedSequence``).
    """
    if seed < 0 or case_id < 0:
        raise ValueError(f"seed and case id must be >= 0, got seed={seed}, case_id={case_id}")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(case_id), stage_key(stage)])))


def torch_seed_for(seed: int, case_id: int, stage: str) -> int:
    """A 63-bit integer seed for ``torch.manual_seed`` derived like :func:`rng_for`."""
    return int(rng_for(seed, case_id, stage).integers(0, 2**63 - 1))
