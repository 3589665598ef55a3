"""``python -m pvc_core.training JOB.json``: one training, on one process or as a rank of ``torchrun``.

On a node with N GPUs::

    torchrun --standalone --nproc_per_node N -m pvc_core.training job.json

runs N data-parallel ranks (:mod:`pvc_core.training.distributed`); without torchrun it trains
on one process. ``job.json`` names the function and its keyword arguments:

* ``{"train_model": {"train_pairs": [[input, truth], ...], "val_pairs": [...], "model_cfg": {...},
  "out_dir": "...", "seed": 1, ...}}``: :func:`pvc_core.training.train_model`;
* ``{"train_network": {...}}``: :func:`pvc_core.pipeline.dataset_stages.train_network` (what the
  rule ``train_network`` passes when its job has more than one GPU).

Exit status 2 with one line on stderr for bad input (a missing file, an invalid key).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from pvc_core.errors import InputError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: python -m pvc_core.training JOB.json (N ranks: torchrun --nproc_per_node N -m pvc_core.training JOB.json)",
              file=sys.stderr)
        return 2
    try:
        with open(argv[0]) as fh:
            job = json.load(fh)
        if not isinstance(job, dict) or len(job) != 1 or next(iter(job)) not in ("train_model", "train_network"):
            raise InputError("expected one key, 'train_model' or 'train_network', with its arguments", argv[0])
        (name, kwargs), = job.items()
        if name == "train_model":  # lazy: torch and MONAI (~2.3 s) load once the job file is checked
            from pvc_core.training import train_model as function
        else:  # lazy: the pipeline's stage adds pandas and the split reading (~0.4 s) to train_model's
            from pvc_core.pipeline.dataset_stages import train_network as function
        function(**kwargs)
    except (OSError, json.JSONDecodeError, TypeError) as err:
        print(f"python -m pvc_core.training: {argv[0]}: {type(err).__name__}: {err}".splitlines()[0], file=sys.stderr)
        return 2
    except InputError as err:
        print(f"python -m pvc_core.training: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
