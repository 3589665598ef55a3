# Configuration validation and every path the rules use, spelled once (via pvc_core.pipeline.paths).
import sys
from itertools import product

from pvc_core.config import validate_config
from pvc_core.errors import InputError
from pvc_core.pipeline import paths
from pvc_core.phantom import check_phantom_source
from pvc_core.pipeline.case_stages import case_is_done
from pvc_core.pipeline.shards import n_shards, retry_token, shard_cases

_config_source = ", ".join(str(p) for p in (workflow.overwrite_configfiles or [])) or "config.yaml"
try:
    validate_config(config, _config_source)
    if workflow.is_main_process:  # once per run, not again in every job's own process
        check_phantom_source(config)
except InputError as err:
    print(f"dlpvc: invalid configuration: {err}", file=sys.stderr)
    sys.exit(2)

RESULTS = config["results_dir"]
N_SHARDS = n_shards(config["n_cases"], config["cases_per_shard"])
SHARDS = [f"{s:04d}" for s in range(N_SHARDS)]
CONFIG = dict(config)  # passed to scripts as params.config


wildcard_constraints:
    shard=r"\d{4}",
    method="|".join(paths.METHODS),
    dataset="|".join(paths.DATASETS),
    suite="main|sweep",


def model_specs():
    """Name -> specification of every model: the default and the sweep's combinations."""
    base = config["training"]["default"]
    specs = {paths.model_name(base): base}
    sweep = config["training"].get("sweep")
    sweep_names = []
    if sweep:
        keys = ("architectures", "datasets", "normalisations", "inputs")
        values = [sweep.get(k, [base[k[:-1] if k != "architectures" else "architecture"]]) for k in keys]
        for arch, ds, norm, inp in product(*values):
            spec = {**base, "architecture": arch, "dataset": ds, "normalisation": norm, "input": inp}
            specs[paths.model_name(spec)] = spec
            sweep_names.append(paths.model_name(spec))
    return specs, sweep_names


MODEL_SPECS, SWEEP_MODELS = model_specs()
DEFAULT_MODEL = paths.model_name(config["training"]["default"])
SUITES = {"main": [DEFAULT_MODEL], "sweep": SWEEP_MODELS}
REPORT = f"{RESULTS}/report/report.html"
SPLIT = str(paths.split_file(RESULTS))


def manifest(stage, shard="{shard}"):
    return f"{RESULTS}/manifests/{stage}/shard{shard}.json"


def all_manifests(stage):
    return [manifest(stage, s) for s in SHARDS]


def cases_of(wildcards):
    return shard_cases(int(wildcards.shard), config["n_cases"], config["cases_per_shard"])


def retry(stage):
    """Rule parameter that changes when this shard's last run left failed cases, or when a later
    stage found one of its outputs corrupt: Snakemake then reruns the shard, which redoes only those."""

    def token(wildcards):
        # Built from the wildcards, not from `output`: Snakemake ignores changes of parameters
        # derived from input or output files, and this one must trigger a rerun.
        name = stage.format(**wildcards)
        return retry_token(manifest(name, wildcards.shard), case_is_done(RESULTS, name))

    return token


def log_file(stage, name="{shard}"):
    return f"{RESULTS}/logs/{stage}/{name}.log"


def bench_file(stage, name="{shard}"):
    return f"{RESULTS}/benchmarks/{stage}/{name}.tsv"


def model_file(model):
    return f"{RESULTS}/models/{model}/model.pt"


def metrics_table(suite):
    return f"{RESULTS}/tables/metrics_{suite}.csv"


def resolution_of(wildcards):
    """The matched-filter result of the reconstruction method of a dataset (RR_n -> RR)."""
    return f"{RESULTS}/resolution/{wildcards.dataset.split('_')[0]}.json"
