"""ALMoST end to end on the tiny model: prompts, two configurations, comparisons, a reward model, RMSP; and resume."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipelines.almost.config import (
    FILTERS,
    AlmostConfig,
    ComparisonConfig,
    PromptGenerationConfig,
    ResponseConfiguration,
    ResponseGenerationConfig,
    RMSPConfig,
)
from pipelines.almost.prompts import AlmostInputs, DemonstrationPrompt, response_prompt_text
from pipelines.almost.run import run_almost, too_few_pairs_message
from pipelines.almost.self_play import _pick_best
from pipelines.common.progress import RecordingProgress
from pipelines.common.result import PipelineResult
from pipelines.common.store import RunStore
from pipelines.errors import InvalidInputError, RunCancelled
from pipelines.training.arguments import TrainingArgs
from pipelines.training.config import RewardConfig
from pipelines.training.presets import training_preset

HHH = DemonstrationPrompt(
    preamble="Below are dialogues between people and a helpful, honest and harmless AI assistant.",
    dialogues=[
        "Human: What is 2 + 2?\n\nAssistant: 2 + 2 is 4.",
        "Human: Name a primary colour.\n\nAssistant: Red is a primary colour.",
    ],
)
INPUTS = AlmostInputs(
    seed_prompts=["How do I boil an egg?", "What is a tuple in Python?", "Why is the sea salty?"],
    instruction="### Instruction: Please generate initial query to start conversation with bot.",
    demonstrations={"hhh": HHH},
)


def _config() -> AlmostConfig:
    reward = training_preset("tiny-cpu-demo").apply(RewardConfig(eval_fraction=0.34))
    training = TrainingArgs.from_dict(
        {**reward.training.to_dict(), "max_steps": 2, "save_steps": 1, "torch_threads": 1}
    )
    # The tiny model writes noise: every response rule would remove every pair, so only "identical" stays on.
    filters = {name: name == "identical" for name in FILTERS}
    return AlmostConfig(
        configurations=[
            ResponseConfiguration("tiny", 2, "hhh", max_tokens=12),
            ResponseConfiguration("tiny", 1, "hhh", max_tokens=12),
        ],
        prompt_generation=PromptGenerationConfig(
            num_generation=3, in_context=2, max_tokens=10, batch_size=2, min_chars=0
        ),
        response_generation=ResponseGenerationConfig(batch_size=2),
        comparisons=ComparisonConfig(filters=filters),
        reward=replace(reward, training=training),
        rmsp=RMSPConfig(n=2, batch_size=2),
    )


def test_the_response_prompt_shows_the_preamble_k_dialogues_then_the_users_turn():
    # It ends "Assistant: " with the original's trailing space (`form_prompt`).
    text = response_prompt_text(HHH, 1, "Why is the sea salty?")
    assert text == (
        f"{HHH.preamble}\n\n-----\n\n{HHH.dialogues[0]}\n\n-----\n\nHuman: Why is the sea salty?\n\nAssistant: "
    )
    assert response_prompt_text(None, 0, "Hi?") == "Human: Hi?\n\nAssistant: "


def test_rmsp_keeps_the_highest_scoring_sample_of_each_prompt():
    class LengthScorer:  # a stand-in reward: longer is better, so the expected pick is plain
        def score(self, prompts, responses):
            return [float(len(response)) for response in responses]

    sampled = [
        {"prompt_id": "a", "prompt": "p", "samples": ["short.", "the longest one.", "", "mid one."]},
        {"prompt_id": "b", "prompt": "q", "samples": ["", ""]},
    ]
    rows = _pick_best(sampled, LengthScorer(), "cfg")
    assert rows[0]["response"] == "the longest one." and rows[0]["score"] == 16.0
    assert len(rows[0]["candidates"]) == 3  # empty samples are not scored
    assert rows[1]["response"] == "" and rows[1]["score"] is None


def _inputs(spec: dict) -> AlmostInputs:
    return replace(INPUTS, models={"tiny": spec}, reward_model=spec)


def test_almost_runs_end_to_end_on_the_tiny_model_and_a_cancelled_run_resumes_without_duplicates(
    tmp_path, backend_pool, tiny_spec, embedder
):
    config = _config()
    inputs = _inputs(tiny_spec)
    store = RunStore(tmp_path / "run")
    # Cancelled during the first configuration's responses (after its first batch of 2 prompts).
    with pytest.raises(RunCancelled):
        run_almost(
            config,
            inputs,
            backend_pool,
            store,
            _CancelInStage("rg · tiny-hhh-2shot", after=2),
            embedder_loader=lambda: embedder,
        )
    assert store.exists("pg", "prompts.jsonl") and not store.exists("rg", "tiny-hhh-2shot.jsonl")
    calls_first_attempt = backend_pool.calls

    progress = RecordingProgress()
    result = run_almost(config, inputs, backend_pool, store, progress, embedder_loader=lambda: embedder)

    prompts = list(store.read_jsonl("pg", "prompts.jsonl"))
    assert len(prompts) == 3 and len({row["prompt"] for row in prompts}) == 3
    for name in ("tiny-hhh-2shot", "tiny-hhh-1shot"):
        rows = list(store.read_jsonl("rg", f"{name}.jsonl"))
        assert [row["prompt_id"] for row in rows] == [row["prompt_id"] for row in prompts]  # once each, in order
    assert calls_first_attempt >= 1

    comparisons = list(store.read_jsonl("cs", "comparisons.jsonl"))
    assert comparisons and all(
        (row["chosen_config"], row["rejected_config"]) == ("tiny-hhh-2shot", "tiny-hhh-1shot") for row in comparisons
    )
    assert result.summary["comparisons"]["kept"] == result.summary["comparisons_kept"] == len(comparisons)
    # Every step's numbers went out as the step finished; the comparisons, then the reward model, as soon as made.
    published = [key for early in progress.published for key in early.summary]
    assert published == ["prompt_generation", "response_generation", "comparisons", "reward_training", "self_play"]
    artifacts_early = [output.name for early in progress.published for output in early.artifacts]
    assert artifacts_early == ["comparisons", "comparisons-all", "rmsp-demonstrations"]
    (reward_model,) = [output for early in progress.published for output in early.models]
    assert (reward_model.key, reward_model.parent, reward_model.dataset, reward_model.task) == (
        "reward_model",
        "reward_base",
        "comparisons",
        "reward",
    )
    assert result.models == [reward_model]
    assert [output.name for output in result.artifacts] == ["comparisons", "comparisons-all", "rmsp-demonstrations"]
    assert all(output.parquet_path.is_file() for output in result.artifacts)
    rm = result.summary["reward_training"]
    assert rm["steps"] == 2 and 0.0 <= rm["held_out_accuracy"] <= 1.0 and rm["held_out_pairs"] == 1
    training = config.reward.training
    assert rm["batch"]["text"] == (
        f"{training.per_device_batch_size} per device x {training.gradient_accumulation_steps} accumulation x "
        f"1 device = {training.per_device_batch_size * training.gradient_accumulation_steps}"
    )
    assert rm["batch"]["held_out_fraction"] == config.reward.eval_fraction

    demonstrations = list(store.read_jsonl("rmsp", "demonstrations.jsonl"))
    assert {row["prompt_id"] for row in demonstrations} <= {row["prompt_id"] for row in prompts}
    for row in demonstrations:
        assert row["score"] == max(candidate["score"] for candidate in row["candidates"])
        assert row["response"] in [candidate["response"] for candidate in row["candidates"]]
    assert result.summary["self_play"]["scores"]["count"] == len(demonstrations)
    assert rm["lengths"]["rows"] == len(comparisons)  # the training length report, with anything cut or dropped
    assert (tmp_path / "run" / "cs" / "comparisons.parquet").is_file()

    # A finished run read again does no model work at all.
    backend_pool.release_all()
    backend_pool.loads.clear()
    again = run_almost(config, inputs, backend_pool, store, RecordingProgress())
    assert again.summary == result.summary and backend_pool.loads == []
    assert isinstance(again, PipelineResult) and again.models[0].output_dir == reward_model.output_dir


def test_a_rubric_asking_for_more_dialogues_than_the_prompt_has_fails_before_any_generation(
    tmp_path, backend_pool, tiny_spec
):
    config = replace(
        _config(),
        configurations=[ResponseConfiguration("tiny", 5, "hhh"), ResponseConfiguration("tiny", 1, "hhh")],
    )
    with pytest.raises(InvalidInputError, match="tiny-hhh-5shot: 5 shots, but demonstration prompt 'hhh' holds 2"):
        run_almost(config, _inputs(tiny_spec), backend_pool, RunStore(tmp_path), RecordingProgress())
    assert backend_pool.loads == []


def test_too_few_pairs_left_by_the_filters_names_the_filters_that_failed_most():
    """As the 135M demo run on 20 prompts stopped: 18 responses cut off at max_tokens."""
    counts = {
        "candidates": 20,
        "kept": 0,
        "filters": [
            {"filter": "empty", "enabled": True, "failed": 0},
            {"filter": "ends_with_question", "enabled": True, "failed": 3},
            {"filter": "no_final_punctuation", "enabled": True, "failed": 18},
            {"filter": "dont_know", "enabled": True, "failed": 1},
            {"filter": "length", "enabled": False, "failed": 9},
        ],
    }
    message = too_few_pairs_message(counts)
    assert message.startswith("only 0 of 20 candidate pairs survived the filters; the reward model needs at least 2.")
    assert "failed most pairs: no_final_punctuation (18 of 20), ends_with_question (3 of 20), dont_know (1 of 20)." in message
    assert "length" not in message.split("failed most pairs:")[1].split(".")[0]  # switched off: not to blame


class _CancelInStage(RecordingProgress):
    """Cancels once `after` items of the named stage are done: a kill at a known point, for resume tests."""

    def __init__(self, stage_name: str, after: int) -> None:
        super().__init__()
        self.stage_name, self.after = stage_name, after

    def check_cancelled(self) -> None:
        if self.stages and self.stages[-1][0] == self.stage_name and self.done >= self.after:
            raise RunCancelled(f"cancelled in {self.stage_name}")
