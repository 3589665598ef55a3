"""The commented ``randomise:`` example of config/paper.yaml, read from there (once, for the
benchmarks that time it: bench_case_build.py, bench_dryrun.py --randomise)."""

from __future__ import annotations

from pathlib import Path

import yaml

PAPER = Path(__file__).resolve().parents[1] / "config" / "paper.yaml"


def randomise_example() -> dict:
    """The block under ``# randomise:`` in config/paper.yaml, uncommented, as a mapping."""
    lines = PAPER.read_text().splitlines()
    block = []
    for line in lines[lines.index("# randomise:") + 1:]:
        if not line.startswith("#  "):
            break
        block.append(line[1:])
    return yaml.safe_load("\n".join(block))
