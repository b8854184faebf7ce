"""The run-kind registry: every installed app's kinds are declared once and everything reads them."""
from __future__ import annotations

import inspect

import pytest
from django.utils.module_loading import import_string

from webapp.runs import services
from webapp.runs.models import PipelineRun
from webapp.runs.registry import RunKind, UnknownRunKind, all_run_kinds, kind_label, register, run_kind

EXPECTED_KINDS = {
    "generate", "train_sft", "train_preference", "train_reward", "train_rl", "spin", "augcon",
    "aft_inference", "aft_data", "almost", "evaluation",
}


def test_every_method_registers_its_kinds_once_from_its_app():
    assert {declared.kind for declared in all_run_kinds()} == EXPECTED_KINDS


@pytest.mark.parametrize("kind", sorted(EXPECTED_KINDS))
def test_each_kinds_job_is_a_prepare_function_of_the_run_and_its_store(kind):
    prepare = import_string(run_kind(kind).job)
    assert prepare.__name__ == "prepare" and prepare.__module__.startswith("workers.kinds.")
    assert list(inspect.signature(prepare).parameters) == ["run", "store"]


def test_the_queue_comes_from_the_kind_and_may_depend_on_the_config():
    assert run_kind("spin").queue_for({}) == "gpu"
    assert run_kind("aft_data").queue_for({"model_id": 3}) == "gpu"
    assert run_kind("aft_data").queue_for({"model_id": None}) == "default"  # a rule-based target needs no model


def test_a_kind_registered_twice_differently_is_refused_and_the_same_declaration_is_allowed():
    spin = run_kind("spin")
    register(spin)  # an app's ready() running twice (tests, reloads) changes nothing
    with pytest.raises(ValueError, match="registered twice"):
        register(RunKind(kind="spin", label="another", queue="default", job="workers.kinds.spin.prepare"))
    assert run_kind("spin") is spin


def test_an_unknown_kind_cannot_be_queued_and_an_old_runs_kind_still_has_a_label(researcher, db):
    with pytest.raises(UnknownRunKind, match="'distill' is not registered"):
        services.run_create(user=researcher, kind="distill", config={})
    assert PipelineRun.objects.count() == 0
    assert kind_label("distill") == "distill"  # a run of a kind no installed app declares any more
    assert kind_label("spin") == "SPIN: self-play fine-tuning"


def test_training_kinds_are_the_ones_whose_run_page_draws_training_curves():
    assert {declared.kind for declared in all_run_kinds() if declared.trains} == {
        "train_sft", "train_preference", "train_reward", "train_rl", "spin",
    }
