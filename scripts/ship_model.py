"""Copy a finished run's default model to pvc_core/models/dlpvc_shipped/ (package data) with its
card and test metrics.

    .venv/bin/python scripts/ship_model.py results/shipped

It writes into the package this checkout's venv imports (an editable install of this repository),
and refuses to write into an installed copy elsewhere (site-packages).
"""
import json
import sys
from pathlib import Path

from pvc_core.apply.model import SHIPPED_MODEL_DIR
from pvc_core.apply.ship import ship
from pvc_core.pipeline.paths import RunLayout

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    if not SHIPPED_MODEL_DIR.resolve().is_relative_to(ROOT.resolve()):
        sys.exit(f"ship_model.py: pvc_core is imported from {SHIPPED_MODEL_DIR.parents[1]}, not from this "
                 f"repository ({ROOT}); run it with the repository's editable install (.venv/bin/python)")
    card = ship(RunLayout(sys.argv[1] if len(sys.argv) > 1 else "results/shipped"), SHIPPED_MODEL_DIR)
    print(json.dumps(card["test_metrics"], indent=1))
