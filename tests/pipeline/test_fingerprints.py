"""Stage fingerprints: which stages a changed setting reaches (known answers, no DAG run)."""

import copy
from pathlib import Path

import pytest

from pvc_core.config import load_config
from pvc_core.io import write_json
from pvc_core.pipeline import fingerprints
from pvc_core.pipeline.paths import RunLayout
from pvc_core.pipeline.case_stages import case_is_done
from pvc_core.pipeline.fingerprints import CASE_STAGES, StageGraph, changed_keys
from pvc_core.pipeline.models import main_models, model_name, model_specs, training_name
from pvc_core.specs import Settings

CONFIG = Path(__file__).resolve().parents[2] / "config" / "test.yaml"
#: Generic job keys of the default model's training and prediction (their names carry a hash of
#: the model's specification, so a changed training setting also changes the name).
TRAIN, PREDICT = "train", "predict"
STUDIES = ("study_min_feature_size", "study_validation_phantoms")
JOBS = CASE_STAGES + ("calibration_noRR", "calibration_RR", "split", "resolution_noRR", "resolution_RR", TRAIN, PREDICT,
                      "iy_noRR_n", "iy_noRR_nf", "iy_RR_n", "iy_RR_nf", "deconv_noRR_n", "deconv_noRR_nf", "deconv_RR_n",
                      "deconv_RR_nf", "montage") + STUDIES


def _graph(change=None) -> StageGraph:
    cfg = load_config(CONFIG)
    if change:
        cfg = copy.deepcopy(cfg)
        change(cfg)
    settings = Settings.from_config(cfg)
    return StageGraph(settings, model_specs(settings.training)[0])


def _default_names(graph: StageGraph) -> tuple[str, str]:
    spec = graph.settings.training["default"]
    return training_name(spec), model_name(spec)


def _fingerprints(graph: StageGraph) -> dict[str, str]:
    training, model = _default_names(graph)
    jobs = {TRAIN: f"train_{training}", PREDICT: f"predict_{model}"}
    out = {j: graph.fingerprint(jobs.get(j, j)) for j in JOBS}
    main = list(main_models(graph.settings.training))
    assert main[0] == model
    out["evaluate"] = fingerprints.fingerprint(graph.evaluate_dependencies(main))
    out["report"] = fingerprints.fingerprint(graph.report_dependencies(main))
    return out


def _redone(change) -> set[str]:
    before, after = _fingerprints(_graph()), _fingerprints(_graph(change))
    return {j for j in before if before[j] != after[j]}


AFTER_RECON = {"evaluate", "report"}


def test_same_configuration_same_fingerprints():
    assert _fingerprints(_graph()) == _fingerprints(_graph())


def test_camera_setting_redoes_simulate_and_everything_after_but_not_the_phantom():
    redone = _redone(lambda c: c["camera"].update(time_per_view_s=2 * c["camera"]["time_per_view_s"]))
    assert redone == set(JOBS + ("evaluate", "report")) - {"phantom", "split", "montage"}


def test_rr_iterations_redo_rr_and_its_dependants_only():
    redone = _redone(lambda c: c["reconstruction"]["RR"].update(iterations=3))
    assert redone == ({"calibration_RR", "recon_RR", "resolution_RR", TRAIN, PREDICT, "iy_RR_n", "iy_RR_nf", "deconv_RR_n",
                       "deconv_RR_nf"} | set(STUDIES) | AFTER_RECON)


def test_norr_subsets_do_not_touch_the_rr_model():
    redone = _redone(lambda c: c["reconstruction"]["noRR"].update(subsets=4))
    # the studies use the default model's dataset (RR_n): untouched
    assert redone == {"calibration_noRR", "recon_noRR", "resolution_noRR", "iy_noRR_n", "iy_noRR_nf", "deconv_noRR_n",
                      "deconv_noRR_nf"} | AFTER_RECON


def test_report_setting_redoes_the_report_only():
    assert _redone(lambda c: c["report"].update(n_example_cases=1)) == {"report"}


def test_seed_changes_everything():
    assert _redone(lambda c: c.update(seed=c["seed"] + 1)) == set(JOBS) | AFTER_RECON


def test_phantom_setting_redoes_every_case_stage_but_not_the_split():
    redone = _redone(lambda c: c["phantom"].update(body_margin_mm=25.0))
    assert redone == (set(JOBS) | AFTER_RECON) - {"split", "calibration_noRR", "calibration_RR"}


def test_calibration_setting_redoes_both_reconstructions_not_the_acquisition():
    redone = _redone(lambda c: c["calibration"].update(activity_mbq=300.0))
    assert redone == (set(JOBS) | AFTER_RECON) - {"phantom", "simulate", "noise", "split", "montage"}


def test_training_setting_redoes_training_and_after():
    redone = _redone(lambda c: c["training"]["default"].update(epochs=3))
    assert redone == {TRAIN, PREDICT} | set(STUDIES) | AFTER_RECON


def test_a_study_setting_redoes_that_study_and_the_report_only():
    assert _redone(lambda c: c["studies"]["min_feature_size"].update(repeats=3)) == {"study_min_feature_size", "report"}


def test_deconvolution_iterations_redo_the_deconvolutions_not_iterative_yang():
    redone = _redone(lambda c: c["pvc"].update(rl_iterations=5))
    assert redone == {"deconv_noRR_n", "deconv_noRR_nf", "deconv_RR_n", "deconv_RR_nf"} | AFTER_RECON


def test_iy_iterations_redo_iterative_yang_and_the_studies():
    redone = _redone(lambda c: c["pvc"].update(iy_iterations=5))
    assert redone == {"iy_noRR_n", "iy_noRR_nf", "iy_RR_n", "iy_RR_nf"} | set(STUDIES) | AFTER_RECON


def test_code_version_bump_redoes_the_stage_and_downstream(monkeypatch):
    before = _fingerprints(_graph())
    monkeypatch.setitem(fingerprints.CODE_VERSIONS, "noise", fingerprints.CODE_VERSIONS["noise"] + 1)
    after = _fingerprints(_graph())
    redone = {j for j in before if before[j] != after[j]}
    assert "noise" in redone and "recon_RR" in redone and "simulate" not in redone and "phantom" not in redone
    assert "calibration_RR" not in redone


def test_a_new_scatter_model_fit_redoes_the_reconstructions_that_use_it_only(monkeypatch):
    from pvc_core.spect.scatter_model import FIT_VERSION

    assert fingerprints.CODE_VERSIONS["scatter_model"] == FIT_VERSION  # one version, in both places

    def bumped(change) -> set[str]:
        before = _fingerprints(_graph(change))
        monkeypatch.setitem(fingerprints.CODE_VERSIONS, "scatter_model", FIT_VERSION + 1)
        after = _fingerprints(_graph(change))
        monkeypatch.setitem(fingerprints.CODE_VERSIONS, "scatter_model", FIT_VERSION)
        return {j for j in before if before[j] != after[j]}

    def rr_model(c):
        c["reconstruction"]["RR"]["scatter_correction"] = "model"
        c["reconstruction"]["noRR"]["scatter_correction"] = "tew"

    assert bumped(lambda c: [r.update(scatter_correction="tew") for r in c["reconstruction"].values()]) == set()
    redone = bumped(rr_model)
    assert {"calibration_RR", "recon_RR"} <= redone
    assert not redone & {"phantom", "simulate", "noise", "calibration_noRR", "recon_noRR"}


def test_changed_keys_name_the_setting():
    a, b = _graph(), _graph(lambda c: c["camera"].update(n_views=12))
    assert changed_keys(a.dependencies("recon_RR"), b.dependencies("recon_RR")) == ["camera.n_views"]
    assert changed_keys(None, b.dependencies("recon_RR")) == []


def test_a_case_is_done_only_when_its_marker_records_the_current_fingerprint(tmp_path):
    layout = RunLayout(tmp_path)
    write_json(layout.marker_file(0, "noise"), {"fingerprint": "aaaa"})
    assert case_is_done(layout, "noise", "aaaa")(0)
    assert not case_is_done(layout, "noise", "bbbb")(0)
    assert case_is_done(layout, "noise")(0)  # existence only (retry tokens)
    assert not case_is_done(layout, "noise", "aaaa")(1)
    assert not case_is_done(layout, "noise", "aaaa", outputs=("missing.nii.gz",))(0)


@pytest.mark.parametrize("key", ["results_dir", "cases_per_shard"])
def test_bookkeeping_settings_leave_every_fingerprint_unchanged(key):
    """(The DAG still reruns fan-in jobs after cases_per_shard changes: their manifests are rewritten.)"""
    value = "elsewhere" if key == "results_dir" else 1
    assert _redone(lambda c: c.update({key: value})) == set()


def test_runtime_training_options_leave_the_fingerprint_but_precision_and_selection_change_it():
    for key, value in (("device", "cpu"), ("num_workers", 3), ("compile", True), ("channels_last", True),
                       ("deterministic", False)):
        assert _redone(lambda c: c["training"]["default"].update({key: value})) == set(), key
    for key, value in (("precision", "bf16"), ("selection", "loss"), ("validation_cases", 1)):
        assert _redone(lambda c: c["training"]["default"].update({key: value})) == (
            {TRAIN, PREDICT} | set(STUDIES) | AFTER_RECON), key
    assert {TRAIN, PREDICT} <= _redone(lambda c: c["evaluation"].update(alpha=0.1))


def test_a_changed_training_setting_changes_the_model_folder_and_normalisation_does_not():
    base = _default_names(_graph())
    more_epochs = _default_names(_graph(lambda c: c["training"]["default"].update(epochs=3)))
    as_max = _default_names(_graph(lambda c: c["training"]["default"].update(normalisation="max")))
    assert more_epochs[0] != base[0] and more_epochs[1] != base[1]   # no overwriting of another run
    assert as_max[0] == base[0] and as_max[1] != base[1]              # sum and max share one training


def test_writing_a_default_out_changes_no_name():
    base = _default_names(_graph())
    assert _default_names(_graph(lambda c: c["training"]["default"].update(loss="l1", tta=False))) == base
