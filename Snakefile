# dlpvc: deep-learning partial-volume correction for quantitative Lu-177 SPECT/CT.
# Reads like a table of contents: configuration, stages, targets. Logic lives in pvc_core.
#
#   snakemake --profile profiles/default                 # demo (config.yaml) -> report
#   snakemake --profile profiles/default --configfile config/test.yaml
#   snakemake -n --configfile config/paper.yaml          # plan the paper-scale build

import os

from snakemake.utils import min_version

min_version("9.0")

if not config:

    configfile: os.path.join(workflow.basedir, "config.yaml")


include: "rules/common.smk"
include: "rules/phantom.smk"
include: "rules/simulate.smk"
include: "rules/calibrate.smk"
include: "rules/reconstruct.smk"
include: "rules/split.smk"
include: "rules/resolution.smk"
include: "rules/train.smk"
include: "rules/pvc.smk"
include: "rules/evaluate.smk"
include: "rules/studies.smk"
include: "rules/report.smk"


localrules:
    split_cases,
    make_phantom_montage,
    make_report,
    compare_sweep_stages,


rule all:
    default_target: True
    input:
        REPORT,


rule dataset:
    input:
        all_manifests("prune"),


rule train:  # the report's models: training.default on each dataset of training.datasets
    input:
        [model_file(TRAINING_OF[m]) for m in MAIN_MODELS],


rule studies:
    input:
        [study_manifest(s) for s in paths.STUDIES],


rule sweep:
    input:
        sorted({model_file(TRAINING_OF[m]) for m in SWEEP_MODELS}),
        metrics_table("sweep"),
        [sweep_table(stage) for stage in SWEEP_STAGES],


rule report:
    input:
        REPORT,
