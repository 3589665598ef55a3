# Configuration validation, typed settings, fingerprints and every path the rules use (built by
# pvc_core.pipeline.paths, so a file name is spelled once).
import sys

from pvc_core.config import validate_config
from pvc_core.domain import DATASETS, RECONSTRUCTIONS, dataset_parts
from pvc_core.errors import InputError
from pvc_core.phantom import check_phantom_source
from pvc_core.pipeline import paths
from pvc_core.pipeline.paths import RunLayout
from pvc_core.pipeline.case_stages import case_is_done
from pvc_core.pipeline.fingerprints import CASE_STAGES, JobMapping, StageGraph
from pvc_core.pipeline.fingerprints import fingerprint as fingerprint_of
from pvc_core.pipeline.models import INFERENCE_KEYS, main_models, model_name, model_specs, sweep_stages, trained_for, training_name, trainings
from pvc_core.pipeline.shards import n_shards, retry_token, shard_cases
from pvc_core.specs import Settings

_config_source = ", ".join(str(p) for p in (workflow.overwrite_configfiles or [])) or "config.yaml"
try:
    validate_config(config, _config_source)
    SETTINGS = Settings.from_config(config)
    if workflow.is_main_process:  # once per run, not again in every job's own process
        check_phantom_source(SETTINGS.phantom, SETTINGS.grid)
except InputError as err:
    print(f"dlpvc: invalid configuration: {err}", file=sys.stderr)
    sys.exit(2)

LAYOUT = RunLayout.of(SETTINGS)  # every path of the run and the stage order (pvc_core/pipeline/paths.py)
RESULTS = SETTINGS.results_dir
N_SHARDS = n_shards(SETTINGS.n_cases, SETTINGS.cases_per_shard)
SHARDS = [f"{s:04d}" for s in range(N_SHARDS)]
MODEL_SPECS, SWEEP_MODELS = model_specs(SETTINGS.training)
TRAINING_SPECS = trainings(MODEL_SPECS)  # each distinct network once (sum and max models share one)
TRAINING_OF = {m: training_name(spec) for m, spec in MODEL_SPECS.items()}
MAIN_MODELS = list(main_models(SETTINGS.training))  # the report's Table 1: the default model on each dataset
DEFAULT_MODEL = model_name(SETTINGS.training["default"])
DEFAULT_TRAINING = TRAINING_OF[DEFAULT_MODEL]
SUITES = {"main": MAIN_MODELS, "sweep": SWEEP_MODELS}
SWEEP_STAGES = sweep_stages(SETTINGS.training)  # stage -> variants (dataset, label, model)
SPLIT = str(LAYOUT.split_file())
REPORT = str(LAYOUT.report_file())


wildcard_constraints:
    shard=r"\d{4}",
    recon="|".join(RECONSTRUCTIONS),
    dataset="|".join(DATASETS),
    suite="main|sweep",
    study="|".join(paths.STUDIES),


def manifest(stage, shard="{shard}"):
    return str(LAYOUT.manifest(stage, shard))


def all_manifests(stage):
    return [manifest(stage, s) for s in SHARDS]


def recon_manifests(*recons):
    """Every shard manifest of the given reconstructions (all by default): a fan-in job's input,
    from which it also learns which cases finished."""
    return [m for r in (recons or RECONSTRUCTIONS) for m in all_manifests(f"recon_{r}")]


GRAPH = StageGraph(SETTINGS, MODEL_SPECS, TRAINING_SPECS)


def fingerprint(stage):
    """Rule parameter: the stage's fingerprint (Snakemake reruns the job when it changes)."""
    return lambda wildcards: GRAPH.fingerprint(stage.format(**wildcards))


def depends_on(stage):
    """Rule parameter: the stage's dependencies (recorded in markers and fan-in records)."""
    return lambda wildcards: JobMapping(GRAPH.dependencies(stage.format(**wildcards)))


def results_folder(wildcards):
    """Rule parameter: the results folder. The jobs read their paths from ``params.layout``
    (:class:`~pvc_core.pipeline.paths.RunLayout`, which Snakemake does not record); this string
    stays because Snakemake's params trigger records it, and dropping it would rerun every job
    of a results folder made before."""
    return RESULTS


def cases_of(wildcards):
    return shard_cases(int(wildcards.shard), SETTINGS.n_cases, SETTINGS.cases_per_shard)


def retry(stage):
    """Rule parameter that changes when this shard's last run left failed cases, or when a later
    stage found one of its outputs corrupt: Snakemake then reruns the shard, which redoes only those."""

    def token(wildcards):
        # Built from the wildcards, not from `output`: Snakemake ignores changes of parameters
        # derived from input or output files, and this one must trigger a rerun.
        name = stage.format(**wildcards)
        return retry_token(manifest(name, wildcards.shard), case_is_done(LAYOUT, name))

    return token


def log_file(stage, name="{shard}"):
    return str(LAYOUT.log_file(stage, name))


def bench_file(stage, name="{shard}"):
    return str(LAYOUT.bench_file(stage, name))


def model_file(training="{training}"):
    return str(LAYOUT.model_folder(training).weights)


def model_card(training="{training}"):
    return str(LAYOUT.model_folder(training).card)


def sweep_table(stage="{stage}"):
    return str(LAYOUT.sweep_table(stage))


def metrics_table(suite="{suite}"):
    return str(LAYOUT.metrics_table(suite))


def summary_table(suite="{suite}"):
    return str(LAYOUT.summary_table(suite))


def calibration_file(recon="{recon}"):
    return str(LAYOUT.calibration_file(recon))


def resolution_file(recon="{recon}"):
    return str(LAYOUT.resolution_file(recon))


def iy_done(dataset="{dataset}"):
    return str(LAYOUT.iy_done(dataset))


def deconvolution_done(dataset="{dataset}"):
    return str(LAYOUT.deconvolution_done(dataset))


def study_manifest(study="{study}"):
    return str(LAYOUT.study_manifest(study))


def study_table(study="{study}"):
    return str(LAYOUT.study_table(study))


def predictions_done(model="{model}"):
    return str(LAYOUT.predictions_done(model))


def recon_of_dataset(wildcards):
    """The reconstruction of a dataset wildcard (RR_n -> RR)."""
    return dataset_parts(wildcards.dataset)[0]


def recon_of_training(wildcards):
    """The reconstruction whose images a training trains on."""
    return dataset_parts(TRAINING_SPECS[wildcards.training]["dataset"])[0]


def recon_of_model(wildcards):
    """The reconstruction whose images a model corrects."""
    return dataset_parts(MODEL_SPECS[wildcards.model]["dataset"])[0]


def training_model_file(wildcards):
    """The trained network of a model (its training's model.pt)."""
    return model_file(TRAINING_OF[wildcards.model])
