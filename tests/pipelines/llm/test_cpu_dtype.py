"""The CPU's dtype for "auto": bfloat16 only where the CPU has its kernels and the model's next-token KL allows."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from pipelines.errors import InvalidConfigError
from pipelines.llm import cpu_dtype
from pipelines.llm.cpu_dtype import BFLOAT16_KL_LIMIT, choose_cpu_dtype
from pipelines.llm.transformers_backend import TransformersBackend
from pipelines.llm.types import SamplingParams


def _float32_model(model_dir):
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()


@pytest.fixture
def with_bfloat16_kernels(monkeypatch):
    """The KL check itself, on any CPU: bfloat16 arithmetic is the same where oneDNN emulates it."""
    monkeypatch.setattr(cpu_dtype, "cpu_has_bfloat16_kernels", lambda: True)
    monkeypatch.setenv("REFINERY_CPU_DTYPE", "auto")


def _never_reloaded():
    raise AssertionError("the float32 model was read again although bfloat16 passed")


def test_the_bundled_model_passes_the_kl_check_and_runs_in_bfloat16(embedded_model_dir, with_bfloat16_kernels):
    model = _float32_model(embedded_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir)
    chosen, choice = choose_cpu_dtype(model, tokenizer, reload_float32=_never_reloaded)
    # Converted in place: the worker never holds a float32 and a bfloat16 copy at once.
    assert chosen is model
    assert choice.dtype == "bfloat16" and next(chosen.parameters()).dtype == torch.bfloat16
    assert 0 < choice.mean_kl <= BFLOAT16_KL_LIMIT and choice.max_kl >= choice.mean_kl
    assert choice.top1_agreement > 0.95
    assert f"{choice.mean_kl} nats" in choice.reason


def test_a_model_that_bfloat16_moves_too_far_stays_in_float32(tiny_model_dir, with_bfloat16_kernels):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    # Logits in the thousands: bfloat16's 8-bit mantissa rounds each by several units (~0.004 nats of
    # KL on the tiny model), over a limit set below that.
    def scaled_float32_model():
        scaled = _float32_model(tiny_model_dir)
        with torch.no_grad():
            scaled.model.norm.weight.mul_(1e4)
        return scaled

    model = scaled_float32_model()
    expected = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    chosen, choice = choose_cpu_dtype(model, tokenizer, reload_float32=scaled_float32_model, kl_limit=0.001)
    assert choice.dtype == "float32" and next(chosen.parameters()).dtype == torch.float32
    # The bfloat16 rounding did not stay behind: the weights are float32's exactly.
    assert all(torch.equal(tensor, expected[name]) for name, tensor in chosen.state_dict().items())
    assert not chosen.training
    assert choice.mean_kl > 0.001
    assert choice.reason.endswith(f"is {choice.mean_kl} nats, over the limit of 0.001")


def test_the_setting_decides_before_any_measurement(tiny_model_dir, monkeypatch):
    model = _float32_model(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    monkeypatch.setenv("REFINERY_CPU_DTYPE", "float32")
    chosen, choice = choose_cpu_dtype(model, tokenizer, reload_float32=_never_reloaded)
    assert (choice.dtype, choice.mean_kl, chosen) == ("float32", None, model)

    monkeypatch.setenv("REFINERY_CPU_DTYPE", "float64")
    with pytest.raises(InvalidConfigError, match="REFINERY_CPU_DTYPE='float64' is not one of auto, float32, bfloat16"):
        choose_cpu_dtype(model, tokenizer, reload_float32=_never_reloaded)


def test_a_cpu_without_bfloat16_kernels_keeps_float32_and_says_so(tiny_model_dir, monkeypatch):
    monkeypatch.setattr(cpu_dtype, "cpu_has_bfloat16_kernels", lambda: False)
    model = _float32_model(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    monkeypatch.setenv("REFINERY_CPU_DTYPE", "auto")
    chosen, choice = choose_cpu_dtype(model, tokenizer, reload_float32=_never_reloaded)
    assert chosen is model and choice.reason == "this CPU has no bfloat16 kernels (AVX512-BF16 or AMX)"
    monkeypatch.setenv("REFINERY_CPU_DTYPE", "bfloat16")
    with pytest.raises(InvalidConfigError, match="no bfloat16 kernels"):
        choose_cpu_dtype(model, tokenizer, reload_float32=_never_reloaded)


def test_the_backend_records_its_choice_for_auto_and_none_for_a_registered_dtype(tiny_model_dir, with_bfloat16_kernels):
    auto = TransformersBackend(tiny_model_dir, dtype="auto", torch_threads=1)
    assert auto.dtype_choice is not None
    assert next(auto.model.parameters()).dtype == getattr(torch, auto.dtype_choice.dtype)
    # The choice is the model the backend decodes with, tricks and all: it still answers.
    assert auto.complete(["Hello"], SamplingParams(n=1, max_tokens=4, seed=0))[0][0].completion_tokens > 0
    registered = TransformersBackend(tiny_model_dir, dtype="float32", torch_threads=1)
    assert registered.dtype_choice is None and next(registered.model.parameters()).dtype == torch.float32
