"""Seconds per optimizer step of our preference trainer against the bound of a plain step; prints JSON.

The bound: one forward+backward of the policy over the same 2 x 4 sequences (chosen and rejected of
4 pairs, max length 128) plus one no-grad forward of the reference, in this process. Ours runs the
real `run_preference` (full fine-tuning, AdamW) and times its steps after the first. TRL's
DPOTrainer is timed for one step twice: with DPOConfig's defaults (bf16 and gradient checkpointing
on) and with both off, which shows where its time goes on a CPU without native bfloat16.

    .venv/bin/python bench/preference_step.py [--model-dir DIR] [--steps 6] [--skip-trl]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PAIRS = [
    {
        "prompt": "Explain in two sentences why the sky looks blue during the day.",
        "chosen": "Sunlight is scattered by the molecules of the air, and short blue wavelengths scatter far more "
        "than red ones (Rayleigh scattering). So blue light reaches our eyes from every direction of the sky.",
        "rejected": "The sky is blue because it reflects the colour of the oceans, which cover most of the Earth. "
        "On cloudy days there is less ocean light, so the sky turns grey.",
    },
    {
        "prompt": "Write a Python function that returns the sum of a list of numbers.",
        "chosen": "def total(numbers):\n    result = 0\n    for number in numbers:\n        result += number\n"
        "    return result\n\nThe built-in sum(numbers) does the same.",
        "rejected": "def total(numbers):\n    return len(numbers)\n\nThis counts the numbers, which is their sum.",
    },
    {
        "prompt": "What is the boiling point of water at sea level, in Celsius and Fahrenheit?",
        "chosen": "At sea level water boils at 100 degrees Celsius, which is 212 degrees Fahrenheit.",
        "rejected": "Water boils at 50 degrees Celsius, about 90 degrees Fahrenheit, at sea level.",
    },
    {
        "prompt": "Give three tips for getting better sleep.",
        "chosen": "1. Keep a regular schedule, going to bed and waking at the same times. 2. Avoid screens and "
        "caffeine in the evening. 3. Keep the bedroom dark, quiet and cool.",
        "rejected": "1. Drink coffee before bed. 2. Sleep at a different time every night. 3. Keep the lights on.",
    },
]
MAX_LENGTH = 128
MAX_PROMPT_LENGTH = 64


class StepClock:
    """A Progress that records when each optimizer step ends."""

    def __init__(self) -> None:
        self.step_times: list[float] = []

    def stage(self, name, total, done=0):  # noqa: ANN001
        pass

    def advance(self, count=1):  # noqa: ANN001
        self.step_times.append(time.perf_counter())

    def log(self, message):  # noqa: ANN001
        pass

    def metrics(self, values):  # noqa: ANN001
        pass

    def check_cancelled(self):
        pass


def time_ours(model_dir: Path, dataset: Path, steps: int, workdir: Path) -> dict:
    from pipelines.common.store import RunStore
    from pipelines.training.arguments import TrainingArgs
    from pipelines.training.config import PreferenceConfig
    from pipelines.training.preference import run_preference

    config = PreferenceConfig(
        loss="sigmoid",
        training=TrainingArgs(
            max_steps=steps,
            per_device_batch_size=4,
            learning_rate=1e-6,
            adapter="full",
            optimizer="adamw",
            max_length=MAX_LENGTH,
            max_prompt_length=MAX_PROMPT_LENGTH,
            save_steps=10_000,
            device="cpu",
        ),
        merge_adapter=False,
    )
    clock = StepClock()
    started = time.perf_counter()
    run_preference(config, model_dir, None, dataset, RunStore(workdir / "ours"), clock)
    total = time.perf_counter() - started
    gaps = [b - a for a, b in zip(clock.step_times, clock.step_times[1:], strict=False)]
    return {
        "seconds_per_step": min(gaps),
        "median_seconds_per_step": sorted(gaps)[len(gaps) // 2],
        "run_seconds": total,
    }


def time_bound(model_dir: Path, repeats: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    from pipelines.training.batching import collate_pairs
    from pipelines.training.encoding import encode_preference_with_report
    from pipelines.training.examples import preference_pairs
    from pipelines.training.models import load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    features, _report = encode_preference_with_report(
        tokenizer, preference_pairs(PAIRS), max_length=MAX_LENGTH, max_prompt_length=MAX_PROMPT_LENGTH
    )
    batch = collate_pairs(features, tokenizer.pad_token_id)
    policy = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).train()
    reference = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        loss = policy(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
        loss.backward()
        with torch.no_grad():
            reference(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        policy.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - started)
    return {
        "seconds_per_step": min(times[1:]),
        "tokens": list(batch["input_ids"].shape),
        "real_tokens": int(batch["attention_mask"].sum()),
    }


def time_trl(model_dir: Path, dataset: Path, workdir: Path, *, cpu_friendly: bool) -> dict:
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    from pipelines.training.models import load_tokenizer

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.begin = self.end = 0.0

        def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001
            self.begin = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            self.end = time.perf_counter()

    overrides = {"bf16": False, "gradient_checkpointing": False} if cpu_friendly else {}
    args = DPOConfig(
        output_dir=str(workdir / f"trl-{cpu_friendly}"),
        max_steps=1,
        per_device_train_batch_size=4,
        max_length=MAX_LENGTH,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        **overrides,
    )
    clock = Clock()
    trainer = DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32),
        args=args,
        train_dataset=load_dataset("json", data_files=str(dataset), split="train"),
        processing_class=load_tokenizer(model_dir),
        callbacks=[clock],
    )
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # stdout carries only the JSON report
    trainer.train()
    return {
        "seconds_per_step": clock.end - clock.begin,
        "bf16": args.bf16,
        "gradient_checkpointing": args.gradient_checkpointing,
        "precompute_ref_log_probs": args.precompute_ref_log_probs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, default=None, help="default: the embedded SmolLM2-135M-Instruct")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--skip-trl", action="store_true")
    options = parser.parse_args()
    import torch

    from pipelines.llm.embedded import default_model_cache_dir, ensure_embedded_model

    model_dir = options.model_dir or ensure_embedded_model(default_model_cache_dir())
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        dataset = workdir / "pairs.jsonl"
        dataset.write_text("".join(json.dumps(pair) + "\n" for pair in PAIRS))
        bound = time_bound(model_dir, repeats=3)
        ours = time_ours(model_dir, dataset, options.steps, workdir)
        report = {
            "model": str(model_dir),
            "pairs_per_step": len(PAIRS),
            "max_length": MAX_LENGTH,
            "torch_threads": torch.get_num_threads(),
            "load_average": os.getloadavg(),
            "bound_forward_backward_plus_reference_forward": bound,
            "ours": ours,
            "ratio_ours_to_bound": ours["seconds_per_step"] / bound["seconds_per_step"],
            "ratio_ours_median_to_bound": ours["median_seconds_per_step"] / bound["seconds_per_step"],
            "target_ratio": 1.5,
        }
        if not options.skip_trl:
            for cpu_friendly in (False, True):
                key = "trl_dpo_cpu_friendly" if cpu_friendly else "trl_dpo_defaults"
                try:
                    report[key] = time_trl(model_dir, dataset, workdir, cpu_friendly=cpu_friendly)
                except Exception as error:  # report, don't hide, why TRL could not run here
                    report[key] = {"error": f"{type(error).__name__}: {error}"}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
