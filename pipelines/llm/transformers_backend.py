"""Generation with Hugging Face transformers on CPU or GPU: left-padded, length-sorted batches.

What makes it fast (each measured by `bench/generation.py`, see docs/operators.md):
- prompts are sorted by length and decoded together, `batch_size` sequences per `generate` call;
- the n samples of a prompt share one prefill: the prompt runs through the model once, its KV cache
  is copied n times, and only decoding is done per sample (generate's `num_return_sequences` would
  run the whole prompt n times, which dominates when prompts are long, as AFT's aggregation prompts are);
- the prompts of a batch share the prefix they have in common (chat template, instructions, few-shot
  demonstrations): it runs through the model once and its KV cache is copied to every row
  (`pipelines.llm.prompt_batches`);
- sampling (temperature, top-p and the draw) is one logits processor, `InverseCDFSampler`, several
  times cheaper per step than generate's own warpers and `multinomial` over a large vocabulary;
- on the CPU, linear weights are prepacked for oneDNN, the KV cache grows in place instead of by
  concatenation, and attention reads grouped key/value heads in place instead of copying them
  (`pipelines.llm.cpu_decoding`);
- the stop-string check (a tokenizer pass per step) is only set up when stop strings are given;
- the torch thread count is applied on every call, so a training job in the same worker process
  (which sets its own) cannot leave generation on a bad setting.

While a call decodes, `token_progress` (when set, see `pipelines.llm.token_progress`) hears the tokens
generated so far a few times a second, from a stopping criterion that never stops the batch.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DynamicCache,
    GenerationConfig,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
)

from pipelines.errors import InvalidConfigError
from pipelines.llm.cpu_decoding import (
    PackedLinear,
    growing_cache,
    pack_linear_weights,
    use_grouped_attention,
)
from pipelines.llm.cpu_dtype import DtypeChoice, choose_cpu_dtype
from pipelines.llm.grammar import Grammar, GrammarCompiler
from pipelines.llm.prompt_batches import pad_behind_prefix, plan_batches, positions_from_mask, shared_prefix_length
from pipelines.llm.sampling import InverseCDFSampler
from pipelines.llm.token_progress import CallTokens, TokenProgress, count_tokens
from pipelines.llm.types import Completion, Conversation, FinishReason, SamplingParams, TokenLogprobs

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class TransformersBackend:
    """A causal LM loaded from a local directory, answering batches with `model.generate`.

    `batch_size` bounds the sequences decoded together (prompts x n), so memory stays flat when
    n grows. Each prompt is tokenized and prefilled once; its n samples decode from copies of its
    KV cache. `torch_threads` (None: leave torch's setting alone) is set before every call.
    `cpu_decoding_tricks` (on a CPU only) packs the linear weights, grows the KV cache in place and
    reads grouped key/value heads in place; off, the model runs as transformers
    loads it. `kv_cache_bytes` (None: no limit) caps the KV cache of one batch: batches of long
    prompts get fewer rows, so a worker's memory stays flat.
    """

    def __init__(
        self,
        model_dir: str | Path,
        device: str = "cpu",
        dtype: str = "float32",
        batch_size: int = 16,
        torch_threads: int | None = None,
        cpu_decoding_tricks: bool = True,
        kv_cache_bytes: int | None = None,
    ) -> None:
        started = time.monotonic()
        self.model_dir = Path(model_dir)
        self.name = self.model_dir.name
        self.batch_size = max(1, batch_size)
        self.torch_threads = torch_threads or None
        self.device = torch.device(_resolve_device(device))
        self._apply_threads()
        if not (self.model_dir / "config.json").is_file():
            raise InvalidConfigError(f"{self.model_dir} holds no config.json: it is not a transformers model directory")

        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, padding_side="left")
        self.model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=_resolve_dtype(dtype, self.device))
        self.model.to(self.device).eval()
        # "auto" on a CPU: float32, or bfloat16 where this CPU has its kernels and the model's
        # next-token KL to float32 stays under the limit (pipelines.llm.cpu_dtype says why).
        self.dtype_choice: DtypeChoice | None = None
        if dtype == "auto" and self.device.type == "cpu":
            self.model, self.dtype_choice = choose_cpu_dtype(
                self.model,
                self.tokenizer,
                reload_float32=lambda: AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=torch.float32),
            )

        generation_config = self.model.generation_config
        eos = (
            generation_config.eos_token_id
            if generation_config.eos_token_id is not None
            else self.tokenizer.eos_token_id
        )
        # Decoder-only models whose forward can stop at the last position can hand generate() a
        # prefilled cache; anything else runs each sample's copy of the prompt through the model.
        self._shares_prefill = not getattr(self.model.config, "is_encoder_decoder", False) and (
            "logits_to_keep" in inspect.signature(self.model.forward).parameters
        )
        self._cpu_decoding_tricks = cpu_decoding_tricks and self.device.type == "cpu"
        # How many linear layers were packed (0: plain nn.Linear), shown by the benchmark.
        self.packed_linears = pack_linear_weights(self.model, self.batch_size) if self._cpu_decoding_tricks else 0
        if self._cpu_decoding_tricks:
            use_grouped_attention(self.model)
        bytes_per_position = kv_cache_bytes_per_position(
            self.model.config, next(self.model.parameters()).element_size()
        )
        self._cache_positions_budget = (
            kv_cache_bytes // bytes_per_position
            if kv_cache_bytes and kv_cache_bytes > 0 and bytes_per_position
            else None
        )
        # What the worker's backend cache counts against its memory budget.
        self.memory_bytes = sum(p.numel() * p.element_size() for p in self.model.parameters()) + sum(
            module.packed_weight.numel() * module.packed_weight.element_size()
            for module in self.model.modules()
            if isinstance(module, PackedLinear)
        )
        self.eos_token_ids: set[int] = set(eos if isinstance(eos, list) else [eos]) - {None}
        pad = generation_config.pad_token_id
        if pad is None:
            pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(self.eos_token_ids)
        self.pad_token_id: int = pad
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token_id = pad
        # always_include texts -> the vocabulary ids that decode to them (one pass over the vocabulary each).
        self._included_ids_cache: dict[tuple[str, ...], list[int]] = {}
        self._grammar_compiler: GrammarCompiler | None = None
        self.token_progress: TokenProgress | None = None
        """Hears each generation call's tokens while it decodes (set by the loader that hands this backend out)."""
        self.load_seconds = time.monotonic() - started

    # -- LLMBackend -------------------------------------------------------------------------------

    def chat(self, conversations: Sequence[Conversation], params: SamplingParams) -> list[list[Completion]]:
        if not self.tokenizer.chat_template:
            raise InvalidConfigError(
                f"model {self.name} has no chat template; use a raw-completion prompt or a model with one"
            )
        prompts = [
            self.tokenizer.apply_chat_template(list(conversation), tokenize=False, add_generation_prompt=True)
            for conversation in conversations
        ]
        # The template already writes any special tokens the model expects.
        return self._generate(prompts, params, add_special_tokens=False)

    def complete(self, prompts: Sequence[str], params: SamplingParams) -> list[list[Completion]]:
        return self._generate(list(prompts), params, add_special_tokens=True)

    # -- NextTokenScorer --------------------------------------------------------------------------

    def chat_next_token_logprobs(
        self, conversations: Sequence[Conversation], *, top_k: int = 20, always_include: Sequence[str] = ()
    ) -> list[TokenLogprobs]:
        """The next token's log-probabilities after each chat prompt (one forward pass, nothing sampled).

        The model's whole distribution is computed, so `always_include` texts are reported exactly
        whatever their rank (every vocabulary entry that decodes, spaces stripped, to one of them).
        Batches, prefix sharing and the KV cache budget are the generation path's.
        """
        if not self.tokenizer.chat_template:
            raise InvalidConfigError(f"model {self.name} has no chat template; it cannot judge a chat prompt")
        if not conversations:
            return []
        prompts = [
            self.tokenizer.apply_chat_template(list(conversation), tokenize=False, add_generation_prompt=True)
            for conversation in conversations
        ]
        encoded: list[list[int]] = self.tokenizer(prompts, add_special_tokens=False)["input_ids"]
        included_ids = self._token_ids_decoding_to(tuple(always_include))
        order = sorted(range(len(prompts)), key=lambda index: len(encoded[index]), reverse=True)
        batches = plan_batches(
            order,
            [len(tokens) for tokens in encoded],
            samples=1,
            max_rows=self.batch_size,
            max_new_tokens=1,
            cache_positions_budget=self._cache_positions_budget,
        )
        self._apply_threads()
        results: list[TokenLogprobs] = [{} for _ in prompts]
        with torch.inference_mode():
            for indices in batches:
                logprobs = self._next_token_logprobs([encoded[index] for index in indices])
                for row, index in enumerate(indices):
                    results[index] = self._reported_tokens(logprobs[row], top_k, included_ids)
        return results

    def _next_token_logprobs(self, token_lists: list[list[int]]) -> torch.Tensor:
        """Log-softmax (float32) of the logits at each prompt's last position, one row per prompt."""
        shared = shared_prefix_length(token_lists) if self._shares_prefill else 0
        input_ids, attention_mask = pad_behind_prefix(token_lists, shared, self.pad_token_id)
        input_ids, attention_mask = input_ids.to(self.device), attention_mask.to(self.device)
        positions = positions_from_mask(attention_mask)
        if self._shares_prefill and input_ids.shape[1] > 1:
            # As generate's first step: the cache holds all but the last column, which runs alone.
            cache = self._prefill(input_ids, attention_mask, shared, 1, self._new_cache(input_ids.shape[1] + 1))
            output = self.model(
                input_ids=input_ids[:, -1:],
                attention_mask=attention_mask,
                position_ids=positions[:, -1:],
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
        else:
            output = self.model(
                input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=False
            )
        return torch.log_softmax(output.logits[:, -1, :].float(), dim=-1).cpu()

    def _reported_tokens(self, logprobs: torch.Tensor, top_k: int, included_ids: list[int]) -> TokenLogprobs:
        """The top-k tokens plus the always-included ones, by decoded text (duplicates' probabilities added)."""
        ids = set(torch.topk(logprobs, k=min(max(top_k, 0), logprobs.shape[0])).indices.tolist()) | set(included_ids)
        reported: TokenLogprobs = {}
        for token_id in sorted(ids):
            text = self.tokenizer.decode([token_id])
            value = float(logprobs[token_id])
            reported[text] = float(np.logaddexp(reported[text], value)) if text in reported else value
        return reported

    def _token_ids_decoding_to(self, texts: tuple[str, ...]) -> list[int]:
        """Vocabulary ids whose decoded text, spaces stripped, is one of `texts` (cached per set of texts)."""
        if not texts:
            return []
        cache = self._included_ids_cache
        if texts not in cache:
            wanted = {text.strip() for text in texts}
            decoded = self.tokenizer.batch_decode([[token_id] for token_id in range(len(self.tokenizer))])
            cache[texts] = [token_id for token_id, text in enumerate(decoded) if text.strip() in wanted]
        return cache[texts]

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    # -- generation -------------------------------------------------------------------------------

    def _generate(
        self, prompts: list[str], params: SamplingParams, *, add_special_tokens: bool
    ) -> list[list[Completion]]:
        if not prompts:
            return []
        encoded: list[list[int]] = self.tokenizer(prompts, add_special_tokens=add_special_tokens)["input_ids"]
        greedy = params.temperature == 0
        # Greedy decoding gives the same text for every sample: decode once, copy n times.
        samples_per_prompt = 1 if greedy else params.n
        # Longest first: similar lengths share a batch (little padding), and memory peaks at the start.
        order = sorted(range(len(prompts)), key=lambda index: len(encoded[index]), reverse=True)
        batches = plan_batches(
            order,
            [len(tokens) for tokens in encoded],
            samples=samples_per_prompt,
            max_rows=self.batch_size,
            max_new_tokens=params.max_tokens,
            cache_positions_budget=self._cache_positions_budget,
        )
        generation_config = self._generation_config(params)
        self._apply_threads()
        # Greedy prompts decode one row whatever n is: the budget counts the rows actually decoded.
        tokens = count_tokens(self.token_progress, len(prompts) * samples_per_prompt * params.max_tokens)

        results: list[list[Completion]] = [[] for _ in prompts]
        with torch.inference_mode(), torch.random.fork_rng(devices=self._rng_devices()):
            for batch_number, indices in enumerate(batches):
                if params.seed is not None:
                    # Per-batch seeds keep a call reproducible whatever ran in this process before it.
                    torch.manual_seed(params.seed * 100_003 + batch_number)
                completions = self._generate_batch(
                    [encoded[index] for index in indices], generation_config, params, tokens
                )
                if tokens is not None:
                    tokens.part_finished(len(indices) * samples_per_prompt * params.max_tokens)
                for position, index in enumerate(indices):
                    drawn = completions[position * samples_per_prompt : (position + 1) * samples_per_prompt]
                    results[index] = drawn if not greedy else [_copy(drawn[0]) for _ in range(params.n)]
        if tokens is not None:
            tokens.end()
        return results

    def _generation_config(self, params: SamplingParams) -> GenerationConfig:
        """The same for greedy decoding and sampling: InverseCDFSampler (a logits processor, see
        _generate_batch) leaves one finite score per row, the token it drew, so generate's greedy
        mode picks exactly that draw; the n samples of a prompt are rows of their own."""
        return GenerationConfig(
            do_sample=False,
            num_return_sequences=1,
            max_new_tokens=params.max_tokens,
            eos_token_id=sorted(self.eos_token_ids),
            pad_token_id=self.pad_token_id,
            stop_strings=list(params.stop) or None,
        )

    def _generate_batch(
        self,
        token_lists: list[list[int]],
        generation_config: GenerationConfig,
        params: SamplingParams,
        tokens: CallTokens | None = None,
    ) -> list[Completion]:
        sampling = params.temperature > 0
        repeats = params.n if sampling else 1
        shared = shared_prefix_length(token_lists) if self._shares_prefill else 0
        input_ids, attention_mask = pad_behind_prefix(token_lists, shared, self.pad_token_id)
        input_ids, attention_mask = input_ids.to(self.device), attention_mask.to(self.device)
        prompt_width = input_ids.shape[1]
        cache = self._new_cache(prompt_width + params.max_tokens)
        if (shared or repeats > 1) and prompt_width > 1 and self._shares_prefill:
            cache = self._prefill(input_ids, attention_mask, shared, repeats, cache)
        if repeats > 1:
            input_ids = input_ids.repeat_interleave(repeats, dim=0)
            attention_mask = attention_mask.repeat_interleave(repeats, dim=0)
        output = self.model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            past_key_values=cache,
            generation_config=generation_config,
            logits_processor=LogitsProcessorList(
                # The grammar's mask first, so the sampler (or greedy's argmax) only sees allowed tokens.
                ([self._grammar_processor(params, input_ids.shape[0])] if params.grammar is not None else [])
                + ([InverseCDFSampler(params.temperature, params.top_p)] if sampling else [])
            ),
            # Stop strings need the tokenizer and cost a check per step: only when asked for.
            tokenizer=self.tokenizer if params.stop else None,
            stopping_criteria=(
                StoppingCriteriaList([self._token_watch(tokens, input_ids, params.max_tokens)])
                if tokens is not None
                else None
            ),
        )
        generated = output[:, prompt_width:].tolist()
        return [
            self._completion(tokens, len(token_lists[row // repeats]), params) for row, tokens in enumerate(generated)
        ]

    def _token_watch(self, tokens: CallTokens, input_ids: torch.Tensor, max_new_tokens: int) -> TokenWatch:
        # generate() pads a finished row with pad tokens, so a row whose last token ends it has ended.
        ending_ids = torch.tensor(sorted(self.eos_token_ids | {self.pad_token_id}), device=input_ids.device)
        return TokenWatch(tokens, input_ids.shape[0], input_ids.shape[1], max_new_tokens, ending_ids)

    def structured_output_mode(self, grammar: Grammar | None) -> str:
        """How a request with `grammar` is constrained here, in words for the run log."""
        return "unconstrained" if grammar is None else f"token mask (xgrammar, {grammar.kind})"

    def _grammar_processor(self, params: SamplingParams, rows: int) -> Any:
        """A fresh token mask for `rows` sequences of `params.grammar` (compiled once per backend)."""
        if self._grammar_compiler is None:
            self._grammar_compiler = GrammarCompiler(
                self.tokenizer, self.model.config.get_text_config().vocab_size, sorted(self.eos_token_ids)
            )
        return self._grammar_compiler.processor(params.grammar, rows)

    def _new_cache(self, capacity: int) -> DynamicCache:
        """A cache that grows in place up to `capacity` positions on the CPU; transformers' own elsewhere."""
        if self._cpu_decoding_tricks:
            return growing_cache(self.model.config, capacity)
        return DynamicCache(config=self.model.config)

    def _prefill(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, shared: int, repeats: int, cache: DynamicCache
    ) -> DynamicCache:
        """Fill `cache` with every prompt but its last token, computing the shared prefix and each prompt once.

        The first `shared` columns (the same tokens in every row, see `prompt_batches`) run as one
        row and their cache is copied to every row; the rest of each prompt but its last token runs
        for all rows; then the cache is copied `repeats` times, once per sample. `generate` sees a
        cache covering all but the last column, feeds only that column (one decoding-sized step) and
        samples from there: a common prefix is paid once per batch and a prompt once per n samples.
        """
        positions = positions_from_mask(attention_mask)
        rows, width = input_ids.shape
        if shared:
            self.model(
                input_ids=input_ids[:1, :shared],
                position_ids=positions[:1, :shared],
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            if rows > 1:
                cache.batch_repeat_interleave(rows)
        if width - 1 > shared:
            self.model(
                input_ids=input_ids[:, shared:-1],
                attention_mask=attention_mask[:, :-1],
                position_ids=positions[:, shared:-1],
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
        if repeats > 1:
            cache.batch_repeat_interleave(repeats)
        return cache

    def _completion(self, tokens: list[int], prompt_tokens: int, params: SamplingParams) -> Completion:
        # After a sequence finishes, generate() fills its row with pad tokens (often the eos token).
        end = next(
            (i for i, token in enumerate(tokens) if token in self.eos_token_ids or token == self.pad_token_id), None
        )
        kept = tokens if end is None else tokens[:end]
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        stop_at = min((text.find(stop) for stop in params.stop if stop in text), default=-1)
        finish_reason: FinishReason
        if stop_at >= 0:
            text, finish_reason = text[:stop_at], "stop"
            completion_tokens = len(kept)
        elif end is not None:
            finish_reason = "stop"
            completion_tokens = end + 1 if tokens[end] in self.eos_token_ids else end
        else:
            finish_reason = "length"
            completion_tokens = len(tokens)
        return Completion(
            text=text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, finish_reason=finish_reason
        )

    def _apply_threads(self) -> None:
        if self.torch_threads and self.device.type == "cpu" and torch.get_num_threads() != self.torch_threads:
            torch.set_num_threads(self.torch_threads)

    def _rng_devices(self) -> list[int]:
        return [self.device.index or 0] if self.device.type == "cuda" else []


class TokenWatch(StoppingCriteria):
    """A stopping criterion that never stops a row: when a report is due, it counts the batch's tokens.

    A row still decoding counts the steps taken so far; a row that ended counts its whole
    `max_new_tokens`, so the batch's count reaches its budget when it ends. Counting reads the
    tensors (a GPU sync), so it only happens when `CallTokens` says a report is due.
    """

    def __init__(
        self, tokens: CallTokens, rows: int, prompt_width: int, max_new_tokens: int, ending_ids: torch.Tensor
    ) -> None:
        self.tokens = tokens
        self.prompt_width = prompt_width
        self.max_new_tokens = max_new_tokens
        self.ending_ids = ending_ids
        self._never = torch.zeros(rows, dtype=torch.bool, device=ending_ids.device)

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        if self.tokens.due():
            steps = input_ids.shape[1] - self.prompt_width
            ended = int(torch.isin(input_ids[:, -1], self.ending_ids).sum())
            self.tokens.running(ended * self.max_new_tokens + (input_ids.shape[0] - ended) * steps)
        return self._never  # type: ignore[return-value]


def kv_cache_bytes_per_position(config: Any, element_size: int) -> int | None:
    """Bytes one sequence's KV cache grows by per token (keys and values, every layer); None if unknown."""
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    layers = getattr(text_config, "num_hidden_layers", None)
    heads = getattr(text_config, "num_attention_heads", None)
    kv_heads = getattr(text_config, "num_key_value_heads", None) or heads
    head_dim = getattr(text_config, "head_dim", None) or (
        text_config.hidden_size // heads if heads and getattr(text_config, "hidden_size", None) else None
    )
    if not (layers and kv_heads and head_dim):
        return None
    return 2 * layers * kv_heads * head_dim * element_size


def _copy(completion: Completion) -> Completion:
    return Completion(
        text=completion.text,
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        finish_reason=completion.finish_reason,
        meta=dict(completion.meta),
    )


def _resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidConfigError(f"device {device!r} was asked for but this machine has no CUDA GPU; use device 'cpu'")
    return device


def _resolve_dtype(dtype: str, device: torch.device) -> Any:
    if dtype == "auto":
        return "auto" if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise InvalidConfigError(f"dtype {dtype!r} is not one of {', '.join(['auto', *DTYPES])}")
    return DTYPES[dtype]
