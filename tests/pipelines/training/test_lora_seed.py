"""A fresh LoRA adapter is drawn from the run's seed, not from whatever the process drew before.

A resumed SPIN run trains its next iteration in a new worker process, a warm worker's job follows
other jobs: with the adapter's A matrices drawn from torch's global generator as it happened to be,
the trained model (and every later iteration's generated text) differed from an uninterrupted run's.
"""

from __future__ import annotations

import torch

from .conftest import tiny_training


def adapter_weights(tiny_model_dir, seed: int, drawn_before: int) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForCausalLM

    from pipelines.training.models import apply_lora

    torch.manual_seed(1234)
    torch.rand(drawn_before)  # the process's earlier work moved the global generator along
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    model = apply_lora(model, tiny_training(seed=seed))
    return {name: value.detach().clone() for name, value in model.named_parameters() if "lora_" in name}


def test_a_fresh_adapter_is_the_same_whatever_the_process_drew_before_and_follows_the_seed(tiny_model_dir):
    first = adapter_weights(tiny_model_dir, seed=7, drawn_before=0)
    after_other_work = adapter_weights(tiny_model_dir, seed=7, drawn_before=1000)
    other_seed = adapter_weights(tiny_model_dir, seed=8, drawn_before=0)
    assert first and first.keys() == after_other_work.keys()
    assert all(torch.equal(first[name], after_other_work[name]) for name in first)
    assert any(not torch.equal(first[name], other_seed[name]) for name in first)
