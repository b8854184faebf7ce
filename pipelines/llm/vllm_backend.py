"""Generation with in-process vLLM (GPU): the whole batch goes to the engine, which schedules it itself."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipelines.errors import InvalidConfigError
from pipelines.llm.grammar import Grammar
from pipelines.llm.types import Completion, Conversation, FinishReason, SamplingParams, TokenLogprobs


class VLLMBackend:
    """A `vllm.LLM` with prefix caching on, so the n samples and shared system prompts reuse their KV cache.

    A thin adapter: the whole batch goes to the engine in one call (it schedules continuously), n
    samples are the engine's own `SamplingParams(n=...)` from one prefill, and a seed is passed per
    request so a rerun of the same batch draws the same text. It has no `token_progress` hook
    (`pipelines.llm.token_progress`): the engine returns the batch at once, so the run page sees the
    call only when it returns.
    """

    def __init__(
        self,
        model_dir: str | Path,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.85,
        max_model_len: int | None = None,
        **engine_options: Any,
    ) -> None:
        started = time.monotonic()
        try:
            import vllm
        except ImportError as error:
            raise InvalidConfigError(
                "the vllm backend needs the `vllm` package and a CUDA GPU; install requirements-gpu.txt "
                "on a GPU worker, or pick the transformers backend"
            ) from error
        self._vllm = vllm
        self.model_dir = Path(model_dir)
        self.name = self.model_dir.name
        self.llm = vllm.LLM(
            model=str(self.model_dir),
            dtype=dtype,
            enable_prefix_caching=True,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            **engine_options,
        )
        # The engine reserves this share of the GPU whatever the model's size: that is what it holds.
        self.memory_bytes = int(gpu_memory_utilization * _gpu_total_bytes())
        self.load_seconds = time.monotonic() - started

    def chat(self, conversations: Sequence[Conversation], params: SamplingParams) -> list[list[Completion]]:
        if not conversations:
            return []
        outputs = self.llm.chat(
            [list(conversation) for conversation in conversations],
            sampling_params=self._sampling_params(params),
            add_generation_prompt=True,
            use_tqdm=False,
        )
        return [_completions(output) for output in outputs]

    def complete(self, prompts: Sequence[str], params: SamplingParams) -> list[list[Completion]]:
        if not prompts:
            return []
        outputs = self.llm.generate(list(prompts), sampling_params=self._sampling_params(params), use_tqdm=False)
        return [_completions(output) for output in outputs]

    def chat_next_token_logprobs(
        self, conversations: Sequence[Conversation], *, top_k: int = 20, always_include: Sequence[str] = ()
    ) -> list[TokenLogprobs]:
        """The engine's top-k log-probabilities of the first generated token (one greedy token per prompt).

        vLLM reports at most its `max_logprobs` (20 unless the engine was started with more) most
        likely tokens plus the sampled one; `always_include` cannot widen that, so a text outside the
        top k is simply absent (the caller counts it as probability 0).
        """
        if not conversations:
            return []
        outputs = self.llm.chat(
            [list(conversation) for conversation in conversations],
            sampling_params=self._vllm.SamplingParams(n=1, temperature=0.0, max_tokens=1, logprobs=max(1, top_k)),
            add_generation_prompt=True,
            use_tqdm=False,
        )
        results: list[TokenLogprobs] = []
        for output in outputs:
            positions = output.outputs[0].logprobs or []
            reported: TokenLogprobs = {}
            for entry in (positions[0] if positions else {}).values():
                text, value = entry.decoded_token or "", float(entry.logprob)
                reported[text] = _log_add(reported[text], value) if text in reported else value
            results.append(reported)
        return results

    def close(self) -> None:
        self.llm = None  # type: ignore[assignment]
        import gc

        gc.collect()
        try:
            import torch

            torch.cuda.empty_cache()
        except ImportError:
            pass

    def structured_output_mode(self, grammar: Grammar | None) -> str:
        """How a request with `grammar` is constrained here, in words for the run log."""
        return "unconstrained" if grammar is None else f"vLLM structured outputs ({grammar.kind})"

    def _sampling_params(self, params: SamplingParams) -> Any:
        return self._vllm.SamplingParams(
            n=params.n,
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_tokens,
            seed=params.seed,
            stop=list(params.stop) or None,
            **structured_output_fields(params.grammar),
        )


def structured_output_fields(grammar: Grammar | None) -> dict[str, Any]:
    """vLLM's `SamplingParams` keyword for `grammar`: `structured_outputs=StructuredOutputsParams(...)`
    since vLLM 0.10.2 (the only form from 0.12), `guided_decoding=GuidedDecodingParams(...)` before."""
    if grammar is None:
        return {}
    constraint = {"regex": grammar.source} if grammar.kind == "regex" else {"json": grammar.schema()}
    try:
        from vllm.sampling_params import StructuredOutputsParams
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(**constraint)}
    return {"structured_outputs": StructuredOutputsParams(**constraint)}


def _gpu_total_bytes() -> int:
    try:
        import torch

        return torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
    except (ImportError, RuntimeError, AssertionError):
        return 0


def _completions(output: Any) -> list[Completion]:
    prompt_tokens = len(output.prompt_token_ids or [])
    return [
        Completion(
            text=sample.text,
            prompt_tokens=prompt_tokens,
            completion_tokens=len(sample.token_ids),
            finish_reason=_finish_reason(sample.finish_reason),
        )
        for sample in sorted(output.outputs, key=lambda sample: sample.index)
    ]


def _finish_reason(reason: str | None) -> FinishReason:
    return "length" if reason == "length" else "stop"


def _log_add(first: float, second: float) -> float:
    """log(exp(first) + exp(second)) without overflow."""
    high, low = max(first, second), min(first, second)
    return high + math.log1p(math.exp(low - high))
