"""Each trainer a few steps on the tiny random model: loss finite and moving, checkpoints, outputs, refusals."""

from __future__ import annotations

import math

import pytest

from pipelines.common.progress import RecordingProgress
from pipelines.common.store import RunStore
from pipelines.errors import InvalidConfigError, InvalidInputError
from pipelines.training.config import PreferenceConfig, RewardConfig, SFTConfig
from pipelines.training.preference import run_preference
from pipelines.training.reward import RewardScorer, run_reward
from pipelines.training.sft import run_sft

from .conftest import tiny_training, write_jsonl


def losses(progress: RecordingProgress) -> list[float]:
    return [row["loss"] for row in progress.metric_rows if "loss" in row]


def assert_trained(progress: RecordingProgress, store: RunStore, steps: int = 4) -> None:
    values = losses(progress)
    assert len(values) == steps
    assert all(math.isfinite(value) for value in values)
    assert values[-1] != values[0]
    assert store.exists("checkpoints", f"checkpoint-{steps}")
    assert not any(path.name.startswith(".staging") for path in store.path("checkpoints").iterdir())
    for row in progress.metric_rows:
        if "loss" in row:
            assert {"loss", "learning_rate", "grad_norm", "epoch", "step"} <= set(row)


def test_sft_with_lora_trains_checkpoints_and_merges(tiny_model_dir, sft_dataset, tmp_path):
    store, progress = RunStore(tmp_path / "run"), RecordingProgress()
    result = run_sft(SFTConfig(training=tiny_training()), tiny_model_dir, sft_dataset, store, progress)
    assert_trained(progress, store)
    assert result.steps == 4
    assert result.adapter_dir and result.merged_dir and result.output_dir == result.merged_dir
    assert 0 < result.trainable_parameter_count < result.parameter_count
    assert store.exists("final", "merged", "model.safetensors")
    # A finished run is not trained again.
    assert run_sft(SFTConfig(training=tiny_training()), tiny_model_dir, sft_dataset, store, RecordingProgress()) == result


def test_sft_full_with_packing(tiny_model_dir, sft_dataset, tmp_path):
    store, progress = RunStore(tmp_path / "run"), RecordingProgress()
    config = SFTConfig(packing=True, training=tiny_training(adapter="full", max_length=128, per_device_batch_size=1))
    result = run_sft(config, tiny_model_dir, sft_dataset, store, progress)
    assert_trained(progress, store)
    assert result.adapter_dir is None and store.exists("final", "model", "model.safetensors")
    assert result.trainable_parameter_count == result.parameter_count
    assert any("training rows" in message for message in progress.messages)


def test_sft_resumes_after_an_interrupt_with_the_step_count_continuing(tiny_model_dir, sft_dataset, tmp_path):
    store = RunStore(tmp_path / "run")
    config = SFTConfig(training=tiny_training(max_steps=6, save_steps=3))
    with pytest.raises(Exception, match="checkpoint saved at .*checkpoint-2"):
        run_sft(config, tiny_model_dir, sft_dataset, store, RecordingProgress(cancel_after=2))
    resumed = RecordingProgress()
    result = run_sft(config, tiny_model_dir, sft_dataset, store, resumed)
    assert result.steps == 6
    assert [row["step"] for row in resumed.metric_rows if "loss" in row] == [3, 4, 5, 6]
    assert ("train", 6) in resumed.stages


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo", "hinge"])
def test_preference_variants_train(tiny_model_dir, preference_dataset, tmp_path, loss_type):
    store, progress = RunStore(tmp_path / "run"), RecordingProgress()
    config = PreferenceConfig(loss=loss_type, beta=0.5, training=tiny_training(adapter="full"))
    result = run_preference(config, tiny_model_dir, None, preference_dataset, store, progress)
    assert_trained(progress, store)
    assert result.output_dir.endswith("final/model")


def test_reward_model_trains_reports_held_out_accuracy_and_scores(tiny_model_dir, preference_dataset, tmp_path):
    store, progress = RunStore(tmp_path / "run"), RecordingProgress()
    config = RewardConfig(eval_fraction=0.34, training=tiny_training())
    result = run_reward(config, tiny_model_dir, preference_dataset, store, progress)
    assert_trained(progress, store)
    eval_rows = [row for row in progress.metric_rows if "eval/accuracy" in row]
    assert len(eval_rows) == 2  # at the start and at the end
    assert 0.0 <= result.metrics["eval/accuracy"] <= 1.0
    scores = RewardScorer(result.output_dir).score(["What is 2 + 2?"] * 2, ["2 + 2 is 4.", "2 + 2 is 7."])
    assert len(scores) == 2 and all(math.isfinite(score) for score in scores)
    assert RewardScorer(result.adapter_dir).score(["What is 2 + 2?"], ["2 + 2 is 4."])[0] == pytest.approx(
        scores[0], abs=1e-4
    )


def test_wrong_fields_are_refused_before_any_model_loads(tiny_model_dir, tmp_path):
    dataset = write_jsonl(tmp_path / "sft-shaped.jsonl", [{"prompt": "a", "response": "b"}])
    with pytest.raises(
        InvalidInputError, match="no `chosen` field; preference training needs prompt, chosen, rejected"
    ):
        run_preference(
            PreferenceConfig(training=tiny_training()),
            tiny_model_dir,
            None,
            dataset,
            RunStore(tmp_path / "r"),
            RecordingProgress(),
        )
    with pytest.raises(InvalidInputError, match="no `response` field"):
        run_sft(
            SFTConfig(training=tiny_training()),
            tiny_model_dir,
            write_jsonl(tmp_path / "x.jsonl", [{"prompt": "a"}]),
            RunStore(tmp_path / "s"),
            RecordingProgress(),
        )


def test_qlora_is_refused_on_a_host_without_cuda(tiny_model_dir, sft_dataset, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this host has CUDA")
    config = SFTConfig(training=tiny_training(qlora=True, device="auto"))
    with pytest.raises(InvalidConfigError, match="qlora needs a CUDA GPU"):
        run_sft(config, tiny_model_dir, sft_dataset, RunStore(tmp_path / "run"), RecordingProgress())


def test_merged_lora_model_loads_and_generates(tiny_model_dir, sft_dataset, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pipelines.training.merge import merge_lora

    result = run_sft(
        SFTConfig(merge_adapter=False, training=tiny_training(max_steps=2)),
        tiny_model_dir,
        sft_dataset,
        RunStore(tmp_path / "run"),
        RecordingProgress(),
    )
    assert result.merged_dir is None and result.output_dir == result.adapter_dir
    merged_dir = merge_lora(tiny_model_dir, result.adapter_dir, tmp_path / "merged")
    model = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    assert not any("lora" in name for name, _ in model.named_parameters())
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    output = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert output.shape[1] == inputs["input_ids"].shape[1] + 5


def _model_copy(source, target, *, chat_template: bool = True, config_changes: dict | None = None):
    """A copy of the tiny model, optionally without its chat template (a base model) or with config changes."""
    import json
    import shutil

    shutil.copytree(source, target)
    if not chat_template:
        (target / "chat_template.jinja").unlink(missing_ok=True)
        tokenizer_config = json.loads((target / "tokenizer_config.json").read_text())
        tokenizer_config.pop("chat_template", None)
        (target / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    if config_changes:
        config = json.loads((target / "config.json").read_text())
        config.update(config_changes)
        (target / "config.json").write_text(json.dumps(config))
    return target


def test_preference_training_takes_its_first_step_without_dropout(tiny_model_dir, preference_dataset, tmp_path):
    # A policy equal to its reference has h = 0 and a first loss of exactly log 2, unless dropout
    # perturbs the policy's forward pass (the reference pass runs in eval mode, without it).
    model_dir = _model_copy(tiny_model_dir, tmp_path / "dropout-model", config_changes={"attention_dropout": 0.5})
    progress = RecordingProgress()
    config = PreferenceConfig(training=tiny_training(adapter="full", max_steps=1, save_steps=1))
    run_preference(config, model_dir, None, preference_dataset, RunStore(tmp_path / "run"), progress)
    assert losses(progress)[0] == pytest.approx(math.log(2), abs=1e-6)
    assert any("policy dropout off in" in message for message in progress.messages)

    with_dropout = RecordingProgress()
    config = PreferenceConfig(disable_dropout=False, training=config.training)
    run_preference(config, model_dir, None, preference_dataset, RunStore(tmp_path / "run2"), with_dropout)
    assert losses(with_dropout)[0] != pytest.approx(math.log(2), abs=1e-6)


def test_disable_dropout_reaches_lora_dropout(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    from pipelines.training.models import apply_lora, disable_dropout

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    model = apply_lora(model, tiny_training(lora={"r": 4, "alpha": 8, "dropout": 0.3}))
    assert disable_dropout(model) > 0
    assert all(module.p == 0 for module in model.modules() if isinstance(module, torch.nn.Dropout))


def test_a_base_model_without_chat_template_trains_sft_and_a_reward_model_in_the_raw_format(
    tiny_model_dir, sft_dataset, preference_dataset, tmp_path
):
    base_dir = _model_copy(tiny_model_dir, tmp_path / "base", chat_template=False)
    with pytest.raises(InvalidConfigError, match="set prompt_format to raw_assistant"):
        run_sft(
            SFTConfig(training=tiny_training()), base_dir, sft_dataset, RunStore(tmp_path / "refused"), RecordingProgress()
        )

    raw = tiny_training(prompt_format="raw_assistant")
    sft_store, sft_progress = RunStore(tmp_path / "sft"), RecordingProgress()
    run_sft(SFTConfig(training=raw), base_dir, sft_dataset, sft_store, sft_progress)
    assert_trained(sft_progress, sft_store)

    reward_store, reward_progress = RunStore(tmp_path / "reward"), RecordingProgress()
    result = run_reward(
        RewardConfig(eval_fraction=0, training=raw), base_dir, preference_dataset, reward_store, reward_progress
    )
    assert_trained(reward_progress, reward_store)
    scorer = RewardScorer(result.output_dir)
    assert scorer.prompt_format == "raw_assistant"  # recorded beside the model, so scoring formats alike
    assert all(math.isfinite(score) for score in scorer.score(["What is 2 + 2?"], ["2 + 2 is 4."]))


def test_the_result_reports_token_lengths_and_what_was_cut(tiny_model_dir, tmp_path):
    rows = [{"prompt": "What is 2 + 2?", "response": "4."}] * 3 + [{"prompt": "Tell me. " * 40, "response": "ok"}]
    dataset = write_jsonl(tmp_path / "mixed.jsonl", rows)
    progress = RecordingProgress()
    result = run_sft(
        SFTConfig(training=tiny_training(max_steps=2)), tiny_model_dir, dataset, RunStore(tmp_path / "run"), progress
    )
    assert result.lengths["rows"] == 4 and result.lengths["rows_cut"] == 1
    assert result.lengths["rows_over_max_prompt_length"] == 1
    assert result.lengths["proposed_max_prompt_length"] >= result.lengths["longest_prompt_tokens"] > 48
    assert any("token lengths: 4 rows" in message and "1 cut" in message for message in progress.messages)
    with pytest.raises(InvalidInputError, match="1 of 4 rows are longer than the limits"):
        run_sft(
            SFTConfig(training=tiny_training(over_length="refuse")),
            tiny_model_dir,
            dataset,
            RunStore(tmp_path / "refused"),
            RecordingProgress(),
        )


def test_a_raw_format_reward_model_scores_the_eos_token_as_almost(tiny_model_dir, preference_dataset, tmp_path):
    # ALMoST pads with its own [PAD] token, so the score is read at the reply's EOS. Padding with EOS
    # (the tokenizer's pad here) would read it one token early.
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    base_dir = _model_copy(tiny_model_dir, tmp_path / "base", chat_template=False)
    raw = tiny_training(prompt_format="raw_assistant", adapter="full", max_steps=2)
    result = run_reward(
        RewardConfig(eval_fraction=0, training=raw),
        base_dir,
        preference_dataset,
        RunStore(tmp_path / "rm"),
        RecordingProgress(),
    )
    tokenizer = AutoTokenizer.from_pretrained(result.output_dir)
    assert tokenizer.pad_token_id == tokenizer.eos_token_id
    ids = tokenizer("What is 2 + 2?\n\nAssistant: 2 + 2 is 4.", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([[*ids, tokenizer.eos_token_id]])
    model = AutoModelForSequenceClassification.from_pretrained(result.output_dir, num_labels=1, dtype=torch.float32)
    with torch.inference_mode():
        hidden = model.model(input_ids=ids).last_hidden_state
        at_eos = model.score(hidden[0, -1]).item()
        before_eos = model.score(hidden[0, -2]).item()
    [scored] = RewardScorer(result.output_dir).score(["What is 2 + 2?"], ["2 + 2 is 4."])
    assert scored == pytest.approx(at_eos, abs=1e-5)
    assert scored != pytest.approx(before_eos, abs=1e-5)
