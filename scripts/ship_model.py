"""Copy a finished run's model into pvc_core/models/ (package data) with its card and test metrics.

    .venv/bin/python scripts/ship_model.py results/shipped            # -> pvc_core/models/dlpvc_shipped/
    .venv/bin/python scripts/ship_model.py results/clinic_round2 --training unet_RR_n_full-<hash> \\
        --as dlpvc_rr --test-metrics results/eval_test_set/clinic_test/RR/test_metrics.json --default RR

The first form ships a run's one evaluated model with the run's own test metrics; the second a
model of a run that only trained, with test metrics measured on a separate test set
(benchmarks/eval_test_set.py), and makes it `dlpvc apply`'s default for its reconstruction kind.
It writes into the package this checkout's venv imports (an editable install of this repository),
and refuses to write into an installed copy elsewhere (site-packages).
"""
import argparse
import json
import sys
from pathlib import Path

from pvc_core.apply.model import MODELS_DIR
from pvc_core.apply.ship import set_default, ship
from pvc_core.domain import RECONSTRUCTIONS
from pvc_core.pipeline.paths import RunLayout

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", nargs="?", default="results/shipped", help="results_dir of the finished run")
    p.add_argument("--training", help="a folder of the run's models/ (a run that only trained)")
    p.add_argument("--as", dest="name", default="dlpvc_shipped", help="folder under pvc_core/models/")
    p.add_argument("--test-metrics", type=Path, help="JSON of the model's test metrics (with --training)")
    p.add_argument("--default", choices=RECONSTRUCTIONS, help="make it apply's default for this kind")
    a = p.parse_args()
    if not MODELS_DIR.resolve().is_relative_to(ROOT.resolve()):
        sys.exit(f"ship_model.py: pvc_core is imported from {MODELS_DIR.parent}, not from this "
                 f"repository ({ROOT}); run it with the repository's editable install (.venv/bin/python)")
    if (a.training is None) != (a.test_metrics is None):
        sys.exit("ship_model.py: --training and --test-metrics go together")
    metrics = json.loads(a.test_metrics.read_text()) if a.test_metrics else None
    try:
        card = ship(RunLayout(a.run), MODELS_DIR / a.name, training=a.training, metrics=metrics)
        if a.default:
            set_default(MODELS_DIR, a.default, a.name)
    except ValueError as err:
        sys.exit(f"ship_model.py: {err}")
    print(json.dumps(card["test_metrics"], indent=1))
