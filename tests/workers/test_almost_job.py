"""An ALMoST run through the queue: the site's config -> Redis -> a real rqworker -> pipeline -> artifacts and registry."""
from __future__ import annotations

import json

import pytest

from tests.fixtures.runs import wait_for_run
from webapp.almost import services
from webapp.almost.services import ConfigurationChoice
from webapp.library.models import Artifact, FewShotExample, FewShotSet, SeedPrompt, SeedPromptSet
from webapp.registry.models import ModelEntry
from webapp.runs import services as run_services
from webapp.runs.models import PipelineRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SEEDS = ["How do I boil an egg?", "What is a tuple in Python?", "Why is the sea salty?", "Name a good book to read."]
NO_RESPONSE_RULES = {
    name: False
    for name in ("empty", "too_short", "ends_with_question", "starts_with_well", "no_final_punctuation",
                 "dont_know", "contains_human_turn", "contains_image", "length")
}


def _library(dialogues: list[tuple[str, str]]) -> tuple[SeedPromptSet, FewShotSet]:
    """The seed prompts (with an instruction line) and an HHH-style demonstration set of these dialogues."""
    seeds = SeedPromptSet.objects.create(name="seeds", instruction="### Instruction: Write a user's first question.")
    for position, text in enumerate(SEEDS):
        SeedPrompt.objects.create(prompt_set=seeds, position=position, text=text)
    hhh = FewShotSet.objects.create(name="HHH demonstration prompt", kind=FewShotSet.Kind.DEMONSTRATION,
                                    preamble="Dialogues with a helpful AI assistant.")
    for position, (question, answer) in enumerate(dialogues):
        FewShotExample.objects.create(few_shot_set=hhh, position=position, context=f"Human: {question}\n\nAssistant: {answer}")
    return seeds, hhh


def test_an_almost_run_through_a_worker_produces_comparisons_a_reward_model_and_demonstrations(
    live_settings, rq_worker, researcher, tiny_model_dir
):
    tiny = ModelEntry.objects.create(name="tiny", source=ModelEntry.Source.LOCAL, path=str(tiny_model_dir), parameter_count=1)
    seeds, hhh = _library([(f"What is {position} + 1?", f"It is {position + 1}.") for position in range(3)])
    config = services.almost_config_build(
        seed_prompt_set=seeds,
        configurations=[ConfigurationChoice(tiny, 2, hhh), ConfigurationChoice(tiny, 1, hhh)],
        reward_model=tiny,
        num_generation=3,
        in_context=2,
        rmsp_n=2,
        filters=NO_RESPONSE_RULES,  # the tiny model writes noise: keep only the "identical" rule
        preset="tiny-cpu-demo",
        reward_max_steps=2,
        response_max_tokens=10,
        prompt_max_tokens=10,
        reward_overrides={"torch_threads": 1, "save_steps": 1, "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": "all-linear"}},
    )
    config["almost"]["prompt_generation"]["min_chars"] = 0
    config["almost"]["reward"]["eval_fraction"] = 0.34
    worker = rq_worker().wait_ready()
    run = run_services.run_create(kind="almost", user=researcher, config=config, name="almost on tiny")

    run = wait_for_run(run, timeout=240, what="the ALMoST run to finish")
    assert run.status == PipelineRun.Status.SUCCEEDED, run.error + run.traceback + worker.log_text()[-3000:]

    comparisons = Artifact.objects.get(run=run, name="comparisons")
    assert comparisons.kind == Artifact.Kind.COMPARISONS and comparisons.row_count == run.summary["comparisons"]["kept"] >= 2
    assert {"prompt", "chosen", "rejected", "chosen_config", "rejected_config", "verdicts"} <= set(comparisons.columns)
    assert all(row["chosen_config"] == "tiny-hhh-2shot" for row in comparisons.preview)
    everything = Artifact.objects.get(run=run, name="comparisons-all")
    assert everything.row_count == run.summary["comparisons"]["candidates"] == 3
    demonstrations = Artifact.objects.get(run=run, name="rmsp-demonstrations")
    assert demonstrations.kind == Artifact.Kind.SFT and {"prompt", "response", "score"} <= set(demonstrations.columns)

    reward = ModelEntry.objects.get(produced_by_run=run)
    assert (reward.task, reward.parent, reward.trained_on) == (ModelEntry.Task.REWARD, tiny, comparisons)
    summary = run.summary
    assert summary["prompt_generation"]["prompts"] == 3
    assert [row["configuration"] for row in summary["response_generation"]["configurations"]] == ["tiny-hhh-2shot", "tiny-hhh-1shot"]
    assert 0.0 <= summary["reward_training"]["held_out_accuracy"] <= 1.0 and summary["reward_model"] == reward.name
    assert summary["self_play"]["scores"]["count"] == demonstrations.row_count

    # A resumed (re-queued) finished run re-registers without duplicating anything.
    PipelineRun.objects.filter(pk=run.pk).update(status=PipelineRun.Status.FAILED)
    run.refresh_from_db()
    run_services.run_resume(run=run)
    run = wait_for_run(run, timeout=120, what="the resumed run to finish")
    assert run.status == PipelineRun.Status.SUCCEEDED, run.error + run.traceback
    assert Artifact.objects.filter(run=run).count() == 3 and ModelEntry.objects.filter(produced_by_run=run).count() == 1
    assert Artifact.objects.get(run=run, name="comparisons").row_count == comparisons.row_count


def test_two_configurations_of_the_real_model_survive_a_killed_worker_without_duplicate_rows(
    live_settings, rq_worker, researcher, embedded_model_dir
):
    """1-shot vs 3-shot of SmolLM2-135M through the queue; SIGKILL during rg, resume, and count every row once."""
    from webapp.registry.services import model_ensure_embedded

    smol = model_ensure_embedded()
    seeds, hhh = _library(
        [("What is 2 + 2?", "2 + 2 is 4."), ("Name a primary colour.", "Red is a primary colour."),
         ("What does a thermometer measure?", "A thermometer measures temperature.")]
    )
    config = services.almost_config_build(
        seed_prompt_set=seeds,
        configurations=[ConfigurationChoice(smol, 3, hhh), ConfigurationChoice(smol, 1, hhh)],
        reward_model=smol,
        num_generation=6,
        in_context=2,
        rmsp_n=2,
        filters=NO_RESPONSE_RULES,  # 16-token answers are cut mid-sentence: keep only the "identical" rule
        preset="tiny-cpu-demo",
        reward_max_steps=2,
        response_max_tokens=16,
        prompt_max_tokens=24,
        reward_overrides={"torch_threads": 1, "save_steps": 1, "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": "all-linear"}},
    )
    config["almost"]["prompt_generation"]["min_chars"] = 5
    config["almost"]["response_generation"]["batch_size"] = 2  # three batches per configuration: room to kill between them
    config["almost"]["reward"]["eval_fraction"] = 0.34
    config["almost"]["rmsp"]["max_prompts"] = 3
    first = rq_worker().wait_ready()
    run = run_services.run_create(kind="almost", user=researcher, config=config, name="almost on the 135M model")
    label = services.model_label(smol)
    names = [f"{label}-hhh-3shot", f"{label}-hhh-1shot"]

    run = wait_for_run(run, lambda r: r.stage.startswith("rg") and r.progress_done >= 2, 600, "the first rg batch")
    first.kill()
    rg_dir = run_services.run_directory(run) / "rg"
    batches_before_kill = {path.relative_to(rg_dir): path.stat().st_mtime_ns for path in rg_dir.rglob("batch-*.jsonl")}
    prompts_before_kill = (run_services.run_directory(run) / "pg" / "prompts.jsonl").read_bytes()
    assert batches_before_kill and len(batches_before_kill) < 6
    run = wait_for_run(run, lambda r: r.status == PipelineRun.Status.LOST, 90, "the run to be detected as lost")

    second = rq_worker()
    run_services.run_resume(run=run)
    run = wait_for_run(run, timeout=900, what="the resumed run to finish")
    assert run.status == PipelineRun.Status.SUCCEEDED, run.error + run.traceback + second.log_text()[-3000:]
    assert run.attempt == 2

    directory = run_services.run_directory(run)
    assert (directory / "pg" / "prompts.jsonl").read_bytes() == prompts_before_kill, "pg ran again after the kill"
    for path, mtime in batches_before_kill.items():
        assert (rg_dir / path).stat().st_mtime_ns == mtime, f"rg/{path} was generated twice"
    prompt_ids = [row["prompt_id"] for row in _jsonl(directory / "pg" / "prompts.jsonl")]
    assert len(prompt_ids) == len(set(prompt_ids)) == run.summary["prompt_generation"]["prompts"] > 0
    for name in names:
        answered = [row["prompt_id"] for row in _jsonl(rg_dir / f"{name}.jsonl")]
        assert answered == prompt_ids, f"{name}: every prompt answered exactly once, in prompt order"

    everything = [json.loads(line) for line in (directory / "cs" / "comparisons-all.jsonl").read_text().splitlines()]
    assert len(everything) == len({row["prompt_id"] for row in everything}) == len(prompt_ids)
    assert all((row["chosen_config"], row["rejected_config"]) == tuple(names) for row in everything)
    comparisons = Artifact.objects.get(run=run, name="comparisons")
    assert comparisons.row_count == run.summary["comparisons"]["kept"] >= 2
    assert [row["configuration"] for row in run.summary["response_generation"]["configurations"]] == names
    assert 0.0 <= run.summary["reward_training"]["held_out_accuracy"] <= 1.0
    demonstrations = Artifact.objects.get(run=run, name="rmsp-demonstrations")
    assert demonstrations.row_count == 3 == run.summary["self_play"]["scores"]["count"]
    assert Artifact.objects.filter(run=run).count() == 3
    assert ModelEntry.objects.filter(produced_by_run=run, task=ModelEntry.Task.REWARD).count() == 1


def _jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_whole_chain_on_the_bundled_model_through_a_worker_ends_with_an_rl_policy_and_its_evaluation(
    live_settings, rq_worker, researcher, researcher_client, embedded_model_dir
):
    """RM -> RMSP demonstrations -> SFT policy -> RL policy (PPO, the CPU preset cut to 2 steps) on SmolLM2-135M,
    every model registered with its lineage; then the run page's one-click win-rate evaluation is queued and runs."""
    from webapp.almost.policy_evaluation import policy_evaluations
    from webapp.almost.services import PolicyChoice
    from webapp.registry.services import model_ensure_embedded

    smol = model_ensure_embedded()
    seeds, hhh = _library(
        [("What is 2 + 2?", "2 + 2 is 4."), ("Name a primary colour.", "Red is a primary colour."),
         ("What does a thermometer measure?", "A thermometer measures temperature.")]
    )
    config = services.almost_config_build(
        seed_prompt_set=seeds,
        configurations=[ConfigurationChoice(smol, 3, hhh), ConfigurationChoice(smol, 1, hhh)],
        reward_model=smol,
        num_generation=6,
        in_context=2,
        rmsp_n=2,
        filters=NO_RESPONSE_RULES,
        preset="tiny-cpu-demo",
        reward_max_steps=2,
        response_max_tokens=16,
        prompt_max_tokens=24,
        policy=PolicyChoice(sft=True, rl=True, algorithm="ppo", rl_preset="cpu-demo", rl_max_steps=2, held_out_prompts=2),
    )
    config["almost"]["prompt_generation"]["min_chars"] = 5
    config["almost"]["reward"]["eval_fraction"] = 0.34
    config["almost"]["policy"]["sft"]["training"].update(max_steps=1, save_steps=1)
    config["almost"]["policy"]["rl"].update(max_new_tokens=12, eval_steps=2)
    config["almost"]["policy"]["rl"]["ppo"]["num_ppo_epochs"] = 1  # the mechanics, in a suite that must stay short
    config["almost"]["policy"]["rl"]["training"].update(per_device_batch_size=2, save_steps=1)
    worker = rq_worker().wait_ready()
    run = run_services.run_create(kind="almost", user=researcher, config=config, name="ALMoST to the end")
    run = wait_for_run(run, timeout=900, what="the ALMoST chain to finish")
    assert run.status == PipelineRun.Status.SUCCEEDED, run.error + run.traceback + worker.log_text()[-3000:]

    summary = run.summary
    reward = ModelEntry.objects.get(pk=summary["reward_model_id"])
    sft = ModelEntry.objects.get(pk=summary["sft_policy_id"])
    rl = ModelEntry.objects.get(pk=summary["rl_policy_id"])
    assert (reward.task, reward.parent) == (ModelEntry.Task.REWARD, smol)
    assert (sft.parent, sft.trained_on.name, sft.reward_model) == (smol, "rmsp-demonstrations", None)
    assert (rl.parent, rl.trained_on.name, rl.reward_model) == (sft, "rl-prompts", reward)
    assert summary["rl"]["steps"] == 2 and "held_out/kl" in summary["rl"]
    policies = summary["policy_evaluation"]["policies"]
    assert set(policies) == {"base", "sft", "rl"} and summary["policy_evaluation"]["held_out_prompts"] == 2
    assert {"sft", "rl", "policy_evaluation"} <= set(summary["stage_seconds"])
    assert any(name.startswith("rl/objective/kl") for row in run.metrics for name in row)

    page = researcher_client.get(run.get_absolute_url()).content.decode()
    assert 'id="almost-policy-evaluation"' in page and 'id="almost-evaluate-policies"' in page
    response = researcher_client.post(f"/almost/runs/{run.pk}/evaluate-policies/")
    (evaluation,) = policy_evaluations(run)
    assert response.status_code == 302 and response["Location"] == evaluation.get_absolute_url()
    assert [c["label"] for c in evaluation.candidates] and evaluation.baseline
    evaluation_run = wait_for_run(evaluation.run, timeout=600, what="the policies' win-rate evaluation")
    assert evaluation_run.status == PipelineRun.Status.SUCCEEDED, evaluation_run.error + evaluation_run.traceback
