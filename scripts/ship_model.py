"""Copy a finished run's default model to models/dlpvc_shipped/ with its card and test metrics.

    .venv/bin/python scripts/ship_model.py results/shipped
"""
import json
import sys
from pathlib import Path

from pvc_core.apply.ship import ship

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    card = ship(sys.argv[1] if len(sys.argv) > 1 else "results/shipped", ROOT / "models" / "dlpvc_shipped")
    print(json.dumps(card["test_metrics"], indent=1))
