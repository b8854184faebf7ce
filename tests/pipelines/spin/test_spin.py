"""SPIN on a tiny random model: rows in SPIN's format, data mixing, the chain of iterations, resume, reference."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from pipelines.common.presets import preset_named
from pipelines.common.progress import RecordingProgress
from pipelines.common.store import RunStore
from pipelines.errors import InvalidConfigError, RunCancelled
from pipelines.llm.loader import LocalBackends
from pipelines.llm.types import SamplingParams
from pipelines.spin import SPIN_PRESETS, SpinConfig
from pipelines.spin.config import batch_for_devices, effective_batch, lora_preset, paper_training_args, tiny_cpu_preset
from pipelines.spin.run import SpinInputs, build_spin_prompts, run_spin, spin_pair, spin_prompts

QA = [
    ("What is 2 + 2?", "2 + 2 is 4."),
    ("Name the capital of France.", "Paris."),
    ("Is ice cold or hot?", "Ice is cold."),
    ("How many legs does a spider have?", "Eight."),
    ("What colour is the daytime sky?", "Blue."),
]


@pytest.fixture
def sft_path(tmp_path) -> Path:
    path = tmp_path / "sft.jsonl"
    path.write_text("".join(json.dumps({"question": q, "answer": a, "context": "ignored"}) + "\n" for q, a in QA))
    return path


@pytest.fixture
def tiny_config() -> SpinConfig:
    config = tiny_cpu_preset(SpinConfig(iterations=2))
    training = config.training.training
    return replace(
        config,
        generation=SamplingParams(n=1, temperature=1.0, top_p=1.0, max_tokens=6, seed=3),
        generation_batch_size=2,
        training=replace(config.training, training=replace(training, max_steps=2, save_steps=1, torch_threads=2)),
        max_prompts=4,
    )


def _inputs(model_dir: Path, sft_path: Path) -> SpinInputs:
    return SpinInputs(model={"kind": "transformers", "source": "local", "path": str(model_dir)}, sft_path=sft_path)


def test_sft_rows_become_first_turn_prompts_with_real_answers_and_pairs_in_spins_format(sft_path):
    from pipelines.training.examples import read_rows

    prompts = spin_prompts(read_rows(sft_path), max_prompts=3)
    assert [row["prompt"] for row in prompts] == [q for q, _ in QA[:3]]
    pair = spin_pair(prompts[0], "2 + 2 is 5.", iteration=0)
    assert pair["real"] == [
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "2 + 2 is 4."},
    ]
    assert pair["generated"] == [
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "2 + 2 is 5."},
    ]
    assert (pair["chosen"], pair["rejected"]) == ("2 + 2 is 4.", "2 + 2 is 5.")


CONVERSATION = [
    {"role": "user", "content": "What is the capital of Austria?"},
    {"role": "assistant", "content": "Vienna."},
    {"role": "user", "content": "And its population?"},
    {"role": "assistant", "content": "About 2.1 million."},
]


def test_a_multi_turn_row_gives_its_first_user_turn_and_reply_as_spin_does_on_ultrachat():
    rows = [{"messages": CONVERSATION}, {"messages": CONVERSATION[:2]}]
    prompts = spin_prompts(rows)
    assert [(row["prompt"], row["real_answer"], row["turn"]) for row in prompts] == [
        ("What is the capital of Austria?", "Vienna.", 1),
        ("What is the capital of Austria?", "Vienna.", 1),
    ]
    _, summary = build_spin_prompts(rows)
    assert (summary["multi_turn_rows"], summary["replies_left_out"], summary["prompt_shape"]) == (1, 1, "text")


def test_the_conversation_modes_keep_every_turn_before_the_chosen_reply():
    rows = [{"messages": CONVERSATION}, {"messages": CONVERSATION[:2]}]
    last = spin_prompts(rows, conversation_turn="last")
    # One shape for the whole file: the single-turn row is a one-message conversation too.
    assert last[0]["prompt"] == CONVERSATION[:3] and last[0]["real_answer"] == "About 2.1 million."
    assert last[1]["prompt"] == CONVERSATION[:1] and last[1]["real_answer"] == "Vienna."
    every = spin_prompts(rows, conversation_turn="every")
    assert [(row["prompt_id"], len(row["prompt"]), row["turn"]) for row in every] == [
        ("p000000-t1", 1, 1),
        ("p000000-t2", 3, 2),
        ("p000001-t1", 1, 1),
    ]
    pair = spin_pair(last[0], "Two million or so.", iteration=0)
    assert pair["real"] == CONVERSATION and pair["generated"] == [
        *CONVERSATION[:3],
        {"role": "assistant", "content": "Two million or so."},
    ]
    assert pair["prompt"] == CONVERSATION[:3]  # the flat view the trainers read keeps the context too
    assert build_spin_prompts(rows, conversation_turn="every")[1]["replies_left_out"] == 0


def test_the_training_layer_reads_a_multi_turn_pair_with_its_whole_context():
    from pipelines.training.examples import preference_pairs

    pair = spin_pair(spin_prompts([{"messages": CONVERSATION}], conversation_turn="last")[0], "Two million.", 0)
    (read,) = preference_pairs([pair])
    assert read.prompt == CONVERSATION[:3] and (read.chosen, read.rejected) == ("About 2.1 million.", "Two million.")


def test_config_defaults_are_the_papers_and_bad_values_are_refused():
    config = SpinConfig()
    assert (config.training.loss, config.training.beta, config.training.training.learning_rate) == ("spin", 0.1, 5e-7)
    args = config.training.training
    assert args.optimizer == "rmsprop" and args.warmup_ratio == 0.1 and args.lr_scheduler == "linear"
    # Full fine-tuning, as the paper; an effective batch of 64 on one device (8 per device x 8 steps).
    assert args.adapter == "full" and effective_batch(args, devices=1)["effective"] == 64
    assert (args.max_length, args.max_prompt_length, args.num_epochs) == (1024, 512, 2.0)
    assert config.conversation_turn == "first"
    assert config.training_for(2).training.learning_rate == pytest.approx(1e-7)
    assert config.training_for(3).beta == 5.0 and config.training_for(7).beta == 5.0
    assert SpinConfig.from_dict(config.to_dict()) == config
    with pytest.raises(InvalidConfigError, match="generation.n must be 1"):
        SpinConfig(generation=SamplingParams(n=2))
    with pytest.raises(InvalidConfigError, match="schedule") as caught:
        SpinConfig(schedule=[{"epochs": 3}])
    assert caught.value.field == "schedule"  # the error names its field, so a form shows it there
    with pytest.raises(InvalidConfigError) as caught:
        SpinConfig(iterations=0)
    assert caught.value.field == "iterations"


def test_the_presets_are_named_and_say_which_settings_are_ours():
    assert [preset.name for preset in SPIN_PRESETS] == ["lora", "tiny-cpu-demo", "7b-8gpu-zero3"]
    assert "ours" in preset_named(SPIN_PRESETS, "lora").description
    assert preset_named(SPIN_PRESETS, "tiny-cpu-demo").apply(SpinConfig()) == tiny_cpu_preset(SpinConfig())
    with pytest.raises(InvalidConfigError) as caught:
        preset_named(SPIN_PRESETS, "huge")
    assert caught.value.field == "preset"


def test_the_paper_batch_is_64_on_any_device_count_that_divides_it():
    for devices, expected in ((1, (8, 8)), (2, (8, 4)), (8, (8, 1)), (16, (4, 1))):
        args = batch_for_devices(SpinConfig(), devices).training.training
        assert (args.per_device_batch_size, args.gradient_accumulation_steps) == expected
        assert effective_batch(args, devices)["effective"] == 64
    with pytest.raises(InvalidConfigError, match="cannot be split over 3 devices"):
        batch_for_devices(SpinConfig(), 3)


def test_the_lora_and_tiny_presets_are_ours_with_a_rate_that_moves_an_adapter_and_keep_the_schedules_ratio():
    lora = lora_preset(SpinConfig())
    assert lora.training.training.adapter == "lora" and lora.training.training.learning_rate == 5e-6
    assert lora.training_for(2).training.learning_rate == pytest.approx(1e-6)  # the paper's 5:1 drop
    tiny = tiny_cpu_preset(SpinConfig())
    assert tiny.training.training.adapter == "lora" and tiny.training.training.max_steps == 8
    assert effective_batch(tiny.training.training, 1)["effective"] == 2
    # A learning rate changed on the form scales the later iterations with it (before: 1e-7 absolute).
    changed = replace(
        SpinConfig(),
        training=replace(SpinConfig().training, training=replace(paper_training_args(), learning_rate=1e-6)),
    )
    assert changed.training_for(3).training.learning_rate == pytest.approx(2e-7)
    assert [row["learning_rate"] for row in lora.plan()] == pytest.approx([5e-6, 5e-6])
    assert tiny.training.training.learning_rate == 5e-5 and tiny.training_for(
        2
    ).training.learning_rate == pytest.approx(1e-5)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"iterations": 1000}, "iterations"),
        ({"generation": {"n": 1, "max_tokens": 10**9}}, "generation.max_tokens"),
        ({"generation": {"n": 1, "seed": -1}}, "generation.seed"),
        ({"generation": {"n": 1, "temperature": 50}}, "generation.temperature"),
        ({"max_prompts": 10**12}, "max_prompts"),
        ({"conversation_turn": "second"}, "conversation_turn"),
        # The training layer's own bounds (TrainingArgs), met through SPIN's config as well.
        ({"training": {"training": {"num_epochs": 10**6}}}, "num_epochs"),
        ({"training": {"training": {"max_steps": 10**9}}}, "max_steps"),
        ({"training": {"training": {"seed": 2**40}}}, "seed"),
        ({"schedule": [{"learning_rate": 1e-6, "learning_rate_factor": 0.5}]}, "learning_rate_factor"),
    ],
)
def test_every_spin_limit_is_in_the_config_so_any_caller_meets_it(changes, named):
    with pytest.raises(InvalidConfigError) as caught:
        SpinConfig.from_dict({**SpinConfig().to_dict(), **changes})
    assert named in str(caught.value)


def test_two_iterations_chain_models_mix_data_and_use_the_generator_as_reference(
    tmp_path, sft_path, tiny_model_dir, tiny_config
):
    backends = LocalBackends(tmp_path / "cache")
    progress = RecordingProgress()
    store = RunStore(tmp_path / "run")
    result = run_spin(tiny_config, _inputs(tiny_model_dir, sft_path), backends, store, progress)
    first, second = (store.read_json(f"iter-{iteration}", "summary.json") for iteration in (0, 1))
    # Each iteration was published as it finished: its pairs, and its model trained on them.
    assert [[model.key for model in published.models] for published in progress.published] == [["iter0"], ["iter1"]]
    assert [[artifact.name for artifact in published.artifacts] for published in progress.published] == [
        ["pairs-iter0"],
        ["pairs-iter1"],
    ]
    # The registry chain: iter0 from the run's model, iter1 from iter0, each on its own pairs.
    iter0, iter1 = result.models
    assert (iter0.parent, iter0.dataset, iter1.parent, iter1.dataset) == (
        "model",
        "pairs-iter0",
        "iter0",
        "pairs-iter1",
    )
    assert (iter0.label, iter1.label) == ("SPIN iter0", "SPIN iter1")
    assert iter1.training_config["spin_iteration"] == 1 and str(iter1.output_dir) == second["model_dir"]
    assert [(artifact.name, artifact.kind) for artifact in result.artifacts] == [
        ("pairs-iter0", "preferences"),
        ("pairs-iter1", "preferences"),
    ]
    assert [row["iteration"] for row in result.summary["iterations"]] == [0, 1]
    # iter0 is generated by the starting model, iter1 by iter0's output, each loaded fresh.
    assert backends.loaded == [str(tiny_model_dir), first["model_dir"]]
    assert second["generator_dir"] == first["model_dir"] and Path(second["model_dir"], "config.json").is_file()
    # iteration 1 trains on its own pairs plus iteration 0's.
    train_rows = list(store.read_jsonl("iter-1", "train.jsonl"))
    assert sorted(row["iteration"] for row in train_rows) == [0] * 4 + [1] * 4
    assert first["train_pairs"] == 4 and second["train_pairs"] == 8
    assert [row["train_pairs"] for row in result.summary["iterations"]] == [4, 8]

    # The reference log-probs of iteration 1 are those of its generator (iter0's model), computed here
    # directly: the sum of log p(token) over each reply's tokens, one sequence at a time.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pipelines.training.encoding import encode_preference_with_report
    from pipelines.training.examples import load_preference_pairs

    generator = AutoModelForCausalLM.from_pretrained(first["model_dir"], dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(first["model_dir"])
    args = tiny_config.training.training
    features, _report = encode_preference_with_report(
        tokenizer,
        load_preference_pairs(store.path("iter-1", "train.jsonl")),
        max_length=args.max_length,
        max_prompt_length=args.max_prompt_length,
    )

    def reply_logp(prompt_ids: list[int], reply_ids: list[int]) -> float:
        ids = torch.tensor([prompt_ids + reply_ids])
        with torch.inference_mode():
            logps = torch.log_softmax(generator(input_ids=ids).logits[0, :-1].float(), dim=-1)
        targets = ids[0, 1:]
        return logps[len(prompt_ids) - 1 :].gather(-1, targets[len(prompt_ids) - 1 :, None]).sum().item()

    cached = json.loads(store.path("iter-1", "train", "reference_logps.json").read_text())
    assert cached["chosen"] == pytest.approx([reply_logp(f["prompt_ids"], f["chosen_ids"]) for f in features], abs=1e-3)
    assert cached["rejected"] == pytest.approx(
        [reply_logp(f["prompt_ids"], f["rejected_ids"]) for f in features], abs=1e-3
    )


def test_a_stopped_run_resumes_without_regenerating_or_retraining_finished_work(
    tmp_path, sft_path, tiny_model_dir, tiny_config
):
    store = RunStore(tmp_path / "run")
    backends = LocalBackends(tmp_path / "cache")
    inputs = _inputs(tiny_model_dir, sft_path)
    with pytest.raises(RunCancelled):
        # Stops during iteration 0's generation, after its first batch of 2 prompts.
        run_spin(tiny_config, inputs, backends, store, RecordingProgress(cancel_after=1))
    first_batch = store.path("iter-0", "generate", "batches", "batch-000000.jsonl")
    assert first_batch.is_file() and not store.exists("iter-0", "pairs.jsonl")
    first_batch_written = first_batch.stat().st_mtime_ns

    result = run_spin(tiny_config, inputs, backends, store, RecordingProgress())
    assert first_batch.stat().st_mtime_ns == first_batch_written, "a finished batch was generated twice"
    assert len(list(store.read_jsonl("iter-0", "pairs.jsonl"))) == 4
    assert len(backends.loaded) == 3  # iteration 0 before the stop and after it, iteration 1 once
    assert [row["steps"] for row in result.summary["iterations"]] == [2, 2]

    progress = RecordingProgress()
    again = run_spin(tiny_config, inputs, backends, store, progress)
    assert len(backends.loaded) == 3 and again == result  # nothing generated or trained again
    # The finished iterations are published again (registering them again updates their entries).
    assert [[model.key for model in published.models] for published in progress.published] == [["iter0"], ["iter1"]]


def test_a_multi_turn_dataset_is_generated_and_trained_with_its_whole_conversation(
    tmp_path, tiny_model_dir, tiny_config
):
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps({"messages": CONVERSATION}) + "\n" for _ in range(2)))
    config = replace(tiny_config, iterations=1, conversation_turn="last", max_prompts=0)
    config = replace(config, training=replace(config.training, training=replace(config.training.training, max_steps=1)))
    store = RunStore(tmp_path / "run")
    result = run_spin(
        config, _inputs(tiny_model_dir, path), LocalBackends(tmp_path / "cache"), store, RecordingProgress()
    )
    # p_0 answered the follow-up with the first exchange in front of it, and the pair keeps it.
    generated = list(store.read_jsonl("iter-0", "generate", "generations.jsonl"))
    assert [row["prompt"] for row in generated] == [CONVERSATION[:3]] * 2
    pairs = list(store.read_jsonl("iter-0", "pairs.jsonl"))
    assert all(pair["real"] == CONVERSATION and pair["generated"][:3] == CONVERSATION[:3] for pair in pairs)
    assert result.summary["iterations"][0]["steps"] == 1
    assert store.read_json("prompts-summary.json")["prompt_shape"] == "messages"


def test_the_lora_presets_rate_moves_an_adapter_as_far_as_the_papers_full_fine_tuning(tmp_path, tiny_model_dir):
    """Why `lora` trains at 5e-6: at the paper's 5e-7 an adapter barely moves; at 5e-6 it moves as full fine-tuning does."""
    from safetensors.torch import load_file

    from pipelines.training.preference import run_preference

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "".join(
            json.dumps({"prompt": f"Question {i}?", "chosen": f"Answer {i} is right.", "rejected": f"No idea {i}."})
            + "\n"
            for i in range(8)
        )
    )

    def weights(directory) -> dict:
        return {
            name: tensor for path in Path(directory).glob("*.safetensors") for name, tensor in load_file(path).items()
        }

    def weight_change(config: SpinConfig, learning_rate: float, name: str) -> float:
        args = replace(
            config.training.training,
            learning_rate=learning_rate,
            max_steps=8,
            per_device_batch_size=2,
            gradient_accumulation_steps=1,
            max_length=64,
            max_prompt_length=32,
            device="cpu",
            dtype="float32",
            torch_threads=1,
            save_steps=100,
        )
        result = run_preference(
            replace(config.training, training=args),
            tiny_model_dir,
            None,
            pairs,
            RunStore(tmp_path / name),
            RecordingProgress(),
        )
        before, after = weights(tiny_model_dir), weights(result.output_dir)
        return sum(float((after[key].float() - before[key].float()).norm()) ** 2 for key in before) ** 0.5

    full = weight_change(SpinConfig(), 5e-7, "full")
    lora_at_papers_rate = weight_change(lora_preset(SpinConfig()), 5e-7, "lora-slow")
    lora = weight_change(lora_preset(SpinConfig()), lora_preset(SpinConfig()).training.training.learning_rate, "lora")
    assert lora_at_papers_rate < 0.25 * full
    assert 0.5 * full < lora < 2 * full
