"""Generation throughput: our TransformersBackend against naive `generate`, next to this machine's hardware bound.

Runs in one process on the real embedded SmolLM2-135M-Instruct, on the same prompts, and prints one
JSON object (also written to --out). For each case (batch of 1, 8 and 32 prompts; the AFT pattern:
n=5 samples of one prompt, once with a short question and once with an aggregation-sized prompt of
~500 tokens; and 32 questions behind the same ~260-token few-shot prefix, the way ALMoST and AugCon
prompt) it times

- `naive_batched`: one plain `model.generate` over the whole left-padded batch (for the AFT pattern:
  `num_return_sequences=5`) on the model as transformers loads it, torch's default thread count, no
  other tricks;
- `naive_sequential`: one `generate` call per prompt and per sample, one after another (the loop a
  script without batching writes; the issue's reference for its targets; not for the few-shot case);
- `ours`: the backend exactly as the pipelines get it (`pipelines.llm.factory.build_backend` on the
  embedded model's spec, so the `REFINERY_*` settings of the environment apply),

and reports tokens/s for each, the ratios, and the hardware bound: compute (2 x parameters FLOPs per
token that any implementation must run through the model, a prefix all prompts share counted once
and each distinct prompt once, at the measured matmul FLOP/s) and memory (all weights read once per
decoding step at the measured copy bandwidth, shared by the batch's rows), whichever is lower. The
machine is measured before and after the cases and the higher figures kept: on a shared host whose
speed drifts, that is the more demanding bound.

Usage:
    .venv/bin/python bench/generation.py --quick          # minutes: 16 new tokens, batches 1 and 8, AFT
    .venv/bin/python bench/generation.py                  # 64 new tokens, batches 1, 8, 32 and AFT
    .venv/bin/python bench/generation.py --top-p 0.95     # nucleus sampling, as the pipelines sample
    .venv/bin/python bench/generation.py --dtype float32  # our backend in float32 (default auto: bfloat16 where
                                                          # this CPU has its kernels and the KL check passes)
    .venv/bin/python bench/generation.py --out bench/results/generation-cpu.json
    .venv/bin/python bench/generation.py --grammar-overhead  # the grammar engines' mask cost per decoding step

`--grammar-overhead` measures, instead of the cases, what constrained decoding (`SamplingParams.grammar`)
adds to a decoding step at batch 1 and 32: a decoding step of our backend (the time of 33 new tokens
less the time of 1, over the 32 steps between), and the mask of each candidate engine (xgrammar, as
`pipelines.llm.grammar` uses it, and llguidance through the same logits-processor shape) on the
embedded model's tokenizer: every row's matcher advanced by one token of a reply that matches the
grammar, its allowed tokens computed, and the scores masked, per step. It prints the mask's seconds
per step and its fraction of a decoding step, per engine, grammar (AugCon's question-and-split
regular expression and a judge-verdict JSON schema) and batch size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.llm.cpu_dtype import cpu_bfloat16_flags  # noqa: E402
from pipelines.llm.embedded import default_model_cache_dir, ensure_embedded_model  # noqa: E402
from pipelines.llm.prompt_batches import shared_prefix_length  # noqa: E402
from pipelines.llm.types import SamplingParams  # noqa: E402

QUESTIONS = [
    "Explain why the sky is blue.",
    "Write a short poem about the sea.",
    "What are three tips for learning a new language?",
    "Describe how a bicycle works.",
    "Why do cats purr?",
    "Give me a recipe for pancakes.",
    "What is photosynthesis?",
    "How do airplanes stay in the air?",
    "Summarize the plot of Romeo and Juliet.",
    "What is the difference between weather and climate?",
    "List some benefits of regular exercise.",
    "How does a computer store information?",
    "Why is the ocean salty?",
    "What makes a good friend?",
    "Explain gravity to a child.",
    "How do vaccines work?",
    "What causes the seasons on Earth?",
    "Describe the water cycle in a few sentences.",
    "How do I write a good cover letter?",
    "What is the capital of Australia and why was it chosen?",
    "Explain what a black hole is.",
    "Give three ideas for a rainy weekend.",
    "How does a refrigerator keep food cold?",
    "What is the difference between a virus and a bacterium?",
    "Why do leaves change color in autumn?",
    "Write a haiku about mountains.",
    "How do bees make honey?",
    "What are the main causes of inflation?",
    "Explain how a rainbow forms.",
    "What should I pack for a week-long hiking trip?",
    "How does the internet work, in simple terms?",
    "Why do we dream?",
]
# AFT's aggregation step samples n answers to one long prompt: the question and the proposals.
PROPOSAL = (
    "The sky looks blue because sunlight is scattered by the gases in the air. Light from the sun "
    "contains every color, and shorter wavelengths such as blue and violet are scattered much more "
    "strongly than longer ones such as red, an effect called Rayleigh scattering. Our eyes are more "
    "sensitive to blue than to violet, and some violet is absorbed high in the atmosphere, so the "
    "scattered light that reaches us from every direction of the sky looks blue."
)
AGGREGATION_PROMPT = (
    "Question: Explain why the sky is blue.\n\n"
    + "".join(f"Proposed answer {k}: {PROPOSAL}\n\n" for k in range(1, 6))
    + "Using the proposed answers above, write the single best answer to the question."
)
# How ALMoST and AugCon ask: every prompt opens with the same instructions and demonstrations.
FEW_SHOT_PREFIX = (
    "You answer questions for curious readers. Here are three answers in the style we want: "
    "accurate, friendly, a few sentences long.\n\n"
    "Question: Why do we have day and night?\n"
    "Answer: The Earth spins on its axis once every 24 hours. The half facing the sun has day, and the "
    "half facing away has night. As the planet turns, places move from one half to the other, which is "
    "why the sun seems to rise in the east and set in the west.\n\n"
    "Question: How do plants drink water?\n"
    "Answer: Roots take up water from the soil through tiny root hairs. The water then travels up thin "
    "tubes called xylem to the stem and leaves. As water evaporates from small pores in the leaves, it "
    "pulls more water up behind it, a bit like sipping through a straw.\n\n"
    "Question: Why does ice float?\n"
    "Answer: When water freezes, its molecules lock into an open crystal pattern that takes up more "
    "space than liquid water. Ice is therefore less dense than the water around it, so it floats. This "
    "is why lakes freeze from the top down and fish can survive the winter below.\n\n"
    "Question: "
)
TEMPERATURE = 0.7
SEED = 0
# (name, prompts, samples per prompt)
FULL_CASES = [
    ("batch_1", 1, 1),
    ("batch_8", 8, 1),
    ("batch_32", 32, 1),
    ("aft_n5_one_prompt", 1, 5),
    ("aft_n5_long_prompt", 1, 5),
    ("few_shot_32", 32, 1),
]
QUICK_CASES = [("batch_1", 1, 1), ("batch_8", 8, 1), ("aft_n5_one_prompt", 1, 5), ("aft_n5_long_prompt", 1, 5)]


# -- hardware bound -------------------------------------------------------------------------------


def _best_seconds(run: Callable[[], Any], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        run()
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return min(timings)


def measure_hardware(thread_counts: list[int], dtype_name: str = "float32") -> dict[str, Any]:
    """Matmul FLOP/s (in `dtype_name`) and copy bandwidth of this machine, best over the given thread counts.

    The matmul is a large GEMM (the most a core can do, the compute ceiling) and the model's own MLP
    shape at batch 32 (what decoding actually runs), each through torch's matmul (MKL) and through
    oneDNN with the weight packed once (the kernel our backend uses): on AMD CPUs MKL takes a path
    that reaches about half of what oneDNN does, and a ceiling our own kernels beat would be no
    bound. The bandwidth is a 256 MiB copy (read + write bytes), far larger than the caches, like
    the weights a decoding step streams.
    """
    import torch

    dtype = getattr(torch, dtype_name)
    previous_threads = torch.get_num_threads()
    per_threads: dict[str, dict[str, float]] = {}
    large_a, large_b = torch.randn(1024, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
    mlp_x, mlp_w = torch.randn(32, 576, dtype=dtype), torch.randn(1536, 576, dtype=dtype)
    source = torch.empty(64 * 2**20)  # 256 MiB of float32
    target = torch.empty_like(source)
    packed_large, packed_mlp = _packed_linear(large_b, 1024), _packed_linear(mlp_w, 32)
    for threads in sorted(set(thread_counts)):
        torch.set_num_threads(threads)
        large = _best_seconds(lambda: large_a @ large_b, repeats=5)
        mlp = _best_seconds(lambda: torch.nn.functional.linear(mlp_x, mlp_w), repeats=50)
        copy = _best_seconds(lambda: target.copy_(source), repeats=5)
        figures = {
            "gemm_2048_gflops": round(2 * 1024 * 2048 * 2048 / large / 1e9, 1),
            "mlp_shape_b32_gflops": round(2 * 32 * 576 * 1536 / mlp / 1e9, 1),
            "copy_gb_per_s": round(2 * source.numel() * 4 / copy / 1e9, 1),
        }
        if packed_large is not None and packed_mlp is not None:
            large_packed = _best_seconds(lambda: packed_large(large_a), repeats=5)
            mlp_packed = _best_seconds(lambda: packed_mlp(mlp_x), repeats=50)
            figures["gemm_2048_onednn_packed_gflops"] = round(2 * 1024 * 2048 * 2048 / large_packed / 1e9, 1)
            figures["mlp_shape_b32_onednn_packed_gflops"] = round(2 * 32 * 576 * 1536 / mlp_packed / 1e9, 1)
        per_threads[str(threads)] = figures
    torch.set_num_threads(previous_threads)
    return {
        "dtype": dtype_name,
        "by_thread_count": per_threads,
        "matmul_gflops": max(
            value for figures in per_threads.values() for key, value in figures.items() if key.endswith("gflops")
        ),
        "copy_gb_per_s": max(v["copy_gb_per_s"] for v in per_threads.values()),
    }


def _packed_linear(weight, rows: int):
    """The product our backend runs for `weight` ([out, in]): a `PackedLinear`; None where oneDNN cannot pack it."""
    import torch

    from pipelines.llm.cpu_decoding import PackedLinear

    linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False, dtype=weight.dtype)
    linear.weight.data = weight
    try:
        return PackedLinear(linear, rows)
    except RuntimeError:
        return None


def fastest_hardware(*measurements: dict[str, Any]) -> dict[str, Any]:
    """The highest of each figure over several measurements, each measurement kept for the record."""
    return {
        "dtype": measurements[0]["dtype"],
        "measurements": [m["by_thread_count"] for m in measurements],
        "matmul_gflops": max(m["matmul_gflops"] for m in measurements),
        "copy_gb_per_s": max(m["copy_gb_per_s"] for m in measurements),
    }


def hardware_bound(
    parameters: int,
    bytes_per_parameter: int,
    hardware: dict[str, Any],
    *,
    rows: int,
    new_tokens: int,
    prompt_tokens: int,
) -> dict[str, float]:
    """Generated tokens/s no implementation can beat on this machine for this case.

    Compute: each token through the model, prompt or generated, costs ~2 FLOPs per parameter
    (attention over these short contexts adds a few percent). `prompt_tokens` is the prompt work
    that cannot be shared: a prefix common to all prompts once, each distinct prompt once (its n
    samples can share the prefill). Memory: each decoding step reads every
    weight once, whatever the batch, so a step of `rows` sequences yields `rows` tokens per full
    weight read. The slower of the two limits the case; all rows are taken to run `new_tokens`.
    """
    flops_per_token = 2 * parameters
    weight_bytes = parameters * bytes_per_parameter
    generated = rows * new_tokens
    compute_seconds = (prompt_tokens + generated) * flops_per_token / (hardware["matmul_gflops"] * 1e9)
    memory_seconds = (new_tokens + 1) * weight_bytes / (hardware["copy_gb_per_s"] * 1e9)
    return {
        "flops_per_token_g": round(flops_per_token / 1e9, 3),
        "weight_bytes_per_step_mb": round(weight_bytes / 1e6, 1),
        "prompt_tokens_computed_once": prompt_tokens,
        "compute_bound_tokens_per_s": round(generated / compute_seconds, 1),
        "memory_bound_tokens_per_s": round(generated / memory_seconds, 1),
        "bound_tokens_per_s": round(generated / max(compute_seconds, memory_seconds), 1),
    }


# -- the three ways to generate ---------------------------------------------------------------------


def generated_tokens(rows: list[list[int]], stop_ids: set[int]) -> int:
    """Tokens each row really generated: up to and including its first end token, like `completion_tokens`."""
    total = 0
    for row in rows:
        end = next((i for i, token in enumerate(row) if token in stop_ids), None)
        total += len(row) if end is None else end + 1
    return total


def naive_batched(model, tokenizer, texts: list[str], samples: int, max_tokens: int, top_p: float) -> int:
    import torch

    torch.manual_seed(SEED)
    encoded = tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        output = model.generate(
            **encoded,
            do_sample=True,
            temperature=TEMPERATURE,
            top_k=0,
            max_new_tokens=max_tokens,
            top_p=top_p,
            num_return_sequences=samples,
            pad_token_id=tokenizer.pad_token_id,
        )
    stop_ids = {tokenizer.pad_token_id, *_eos_ids(model)}
    return generated_tokens(output[:, encoded["input_ids"].shape[1] :].tolist(), stop_ids)


def naive_sequential(model, tokenizer, texts: list[str], samples: int, max_tokens: int, top_p: float) -> int:
    import torch

    torch.manual_seed(SEED)
    total = 0
    with torch.inference_mode():
        for text in texts:
            encoded = tokenizer([text], return_tensors="pt", add_special_tokens=False)
            for _ in range(samples):
                output = model.generate(
                    **encoded,
                    do_sample=True,
                    temperature=TEMPERATURE,
                    top_k=0,
                    top_p=top_p,
                    max_new_tokens=max_tokens,
                    pad_token_id=tokenizer.pad_token_id,
                )
                total += generated_tokens(output[:, encoded["input_ids"].shape[1] :].tolist(), set(_eos_ids(model)))
    return total


def _eos_ids(model) -> list[int]:
    eos = model.generation_config.eos_token_id
    return eos if isinstance(eos, list) else [eos]


# -- the benchmark ----------------------------------------------------------------------------------


def best_of(runners: dict[str, Callable[[], int]], repeats: int) -> dict[str, dict[str, float]]:
    """Each runner's tokens, best seconds and tokens/s over `repeats` rounds, the runners' order alternating.

    Other processes on a shared machine slow whichever run they overlap, and the least disturbed
    run is the closest to what the code costs. A runner returns the tokens it generated.
    """
    timings: dict[str, list[float]] = {key: [] for key in runners}
    tokens: dict[str, int] = {}
    for round_number in range(repeats):
        order = list(runners) if round_number % 2 == 0 else list(runners)[::-1]
        for key in order:
            started = time.perf_counter()
            tokens[key] = runners[key]()
            timings[key].append(time.perf_counter() - started)
    return {
        key: {
            "tokens": tokens[key],
            "seconds": round(min(timings[key]), 2),
            "tokens_per_s": round(tokens[key] / min(timings[key]), 1),
        }
        for key in runners
    }


def bench_case(
    backend,
    plain_model,
    case: tuple[str, int, int],
    *,
    max_tokens: int,
    top_p: float,
    repeats: int,
    naive_threads: int,
    skip_sequential: bool,
) -> dict[str, Any]:
    import torch

    name, prompt_count, samples = case
    questions = [AGGREGATION_PROMPT] if "long_prompt" in name else QUESTIONS
    if name.startswith("few_shot"):
        questions = [FEW_SHOT_PREFIX + question + "\nAnswer:" for question in QUESTIONS]
    conversations = [[{"role": "user", "content": questions[i % len(questions)]}] for i in range(prompt_count)]
    texts = [
        backend.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
        for conversation in conversations
    ]
    params = SamplingParams(n=samples, temperature=TEMPERATURE, top_p=top_p, max_tokens=max_tokens, seed=SEED)
    model, tokenizer = plain_model, backend.tokenizer

    def ours() -> int:
        return sum(c.completion_tokens for drawn in backend.chat(conversations, params) for c in drawn)

    def with_naive_threads(run: Callable[..., int]) -> Callable[[], int]:
        def timed() -> int:
            torch.set_num_threads(naive_threads)
            return run(model, tokenizer, texts, samples, max_tokens, top_p)

        return timed

    runners: dict[str, Callable[[], int]] = {"naive_batched": with_naive_threads(naive_batched), "ours": ours}
    # The one-at-a-time loop over 32 long prompts would take minutes and says nothing new.
    if not skip_sequential and not name.startswith("few_shot"):
        runners["naive_sequential"] = with_naive_threads(naive_sequential)
    measured = best_of(runners, repeats)
    encoded = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
    # The least prompt work any implementation must do: the prefix all prompts share once, then the rest
    # of each distinct prompt once (its n samples can share it).
    shared = shared_prefix_length(encoded, minimum=1)
    prompt_tokens_to_compute = shared + sum(len(tokens) - shared for tokens in encoded)
    result: dict[str, Any] = {
        "case": name,
        "prompts": prompt_count,
        "samples_per_prompt": samples,
        "prompt_tokens": sum(len(tokens) for tokens in encoded),
        "shared_prefix_tokens": shared,
        "prompt_tokens_to_compute": prompt_tokens_to_compute,
    }
    result.update(measured)
    ours_rate = result["ours"]["tokens_per_s"]
    result["speedup_vs_naive_batched"] = round(ours_rate / result["naive_batched"]["tokens_per_s"], 2)
    if "naive_sequential" in result:
        result["speedup_vs_naive_sequential"] = round(ours_rate / result["naive_sequential"]["tokens_per_s"], 2)
    return result


# -- grammar overhead -----------------------------------------------------------------------------

GRAMMAR_CASES = {
    # AugCon's question-and-split reply (pipelines.augcon.cst.cst_grammar at the tiny-cpu-demo's 192 tokens)
    "cst_regex": (
        "regex",
        r"\S[^\n]{4,114}\n\nContext 1: \S[^\n]{0,287}\n\nContext 2: \S[^\n]*\n?",
        "What does the while statement do?\n\nContext 1: The while statement is used for repeated execution "
        "as long as an expression is true.\n\nContext 2: It repeatedly tests the expression and executes the suite.",
    ),
    "verdict_json_schema": (
        "json_schema",
        json.dumps(
            {
                "type": "object",
                "properties": {"reason": {"type": "string", "maxLength": 300}, "verdict": {"enum": ["A", "B", "tie"]}},
                "required": ["reason", "verdict"],
                "additionalProperties": False,
            }
        ),
        '{"reason": "Response A answers the question and explains the loop; B does not.", "verdict": "A"}',
    ),
}


class LLGuidanceProcessor:
    """llguidance behind the same logits-processor shape as `pipelines.llm.grammar.GrammarLogitsProcessor`
    (one matcher per row, the batch's masks filled in parallel), for the comparison only."""

    def __init__(self, tokenizer_info: Any, grammar_text: str, rows: int, vocab_size: int) -> None:
        import llguidance
        import llguidance.torch

        self._torch = llguidance.torch
        self.matchers = [llguidance.LLMatcher(tokenizer_info, grammar_text) for _ in range(rows)]
        self.bitmask = llguidance.torch.allocate_token_bitmask(rows, vocab_size)
        self.executor = llguidance.LLExecutor()
        self._started = False

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self._started:
            for matcher, token in zip(self.matchers, input_ids[:, -1].tolist(), strict=True):
                if not (matcher.is_stopped() or matcher.is_error()):
                    matcher.consume_token(token)
        self._started = True
        self.bitmask.fill_(-1)
        active = [
            (matcher, row)
            for row, matcher in enumerate(self.matchers)
            if not (matcher.is_stopped() or matcher.is_error())
        ]
        if active:
            self._torch.fill_next_token_bitmask_par(self.executor, active, self.bitmask)
        self._torch.apply_token_bitmask_inplace(scores, self.bitmask)
        return scores


def grammar_processor_factories(tokenizer: Any, vocab_size: int, stop_ids: list[int]) -> dict[str, Callable[..., Any]]:
    """engine name -> processor(kind, source, rows); each engine's tokenizer tables are built once, here."""
    from pipelines.llm.grammar import Grammar, GrammarCompiler

    compiler = GrammarCompiler(tokenizer, vocab_size, stop_ids)
    factories: dict[str, Callable[..., Any]] = {
        "xgrammar": lambda kind, source, rows: compiler.processor(Grammar(kind, source), rows)
    }
    try:
        import llguidance
        import llguidance.hf
    except ImportError:
        return factories
    info = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size, eos_token=stop_ids[0])

    def guidance(kind: str, source: str, rows: int) -> LLGuidanceProcessor:
        text = (
            llguidance.LLMatcher.grammar_from_regex(source)
            if kind == "regex"
            else llguidance.LLMatcher.grammar_from_json_schema(source, defaults={"whitespace_flexible": False})
        )
        return LLGuidanceProcessor(info, text, rows, vocab_size)

    factories["llguidance"] = guidance
    return factories


def mask_seconds_per_step(
    make_processor: Callable[[], Any], reply_tokens: list[int], rows: int, vocab_size: int, repeats: int
) -> float:
    """Median over `repeats` passes of the processor's seconds per step, walking every row through `reply_tokens`."""
    import torch

    per_pass = []
    scores = torch.randn(rows, vocab_size)
    for _ in range(repeats):
        processor = make_processor()
        input_ids = torch.zeros((rows, 1), dtype=torch.long)
        started = time.perf_counter()
        for step, token in enumerate([None, *reply_tokens]):
            if token is not None:
                input_ids[:, -1] = token
            processor(input_ids, scores.clone() if step == 0 else scores)
        per_pass.append((time.perf_counter() - started) / (len(reply_tokens) + 1))
    return sorted(per_pass)[len(per_pass) // 2]


def decoding_step_seconds(backend: Any, rows: int, repeats: int) -> float:
    """Seconds of one decoding step of `rows` sequences: (33 new tokens - 1 new token) / 32, best of `repeats`."""
    prompts = [QUESTIONS[index % len(QUESTIONS)] for index in range(rows)]

    def timed(max_tokens: int) -> tuple[float, int]:
        params = SamplingParams(n=1, temperature=TEMPERATURE, max_tokens=max_tokens, seed=SEED)
        started = time.perf_counter()
        completions = backend.complete(prompts, params)
        steps = max(completion.completion_tokens for drawn in completions for completion in drawn)
        return time.perf_counter() - started, steps

    best = float("inf")
    for _ in range(repeats):
        short, _ = timed(1)
        long, steps = timed(33)
        best = min(best, (long - short) / max(1, steps - 1))
    return best


def grammar_overhead(backend: Any, batch_sizes: list[int], repeats: int) -> dict[str, Any]:
    """Every engine's mask cost per decoding step, alone and as a fraction of the backend's step."""
    tokenizer = backend.tokenizer
    vocab_size = backend.model.config.get_text_config().vocab_size
    factories = grammar_processor_factories(tokenizer, vocab_size, sorted(backend.eos_token_ids))
    results = []
    for rows in batch_sizes:
        step = decoding_step_seconds(backend, rows, repeats)
        for case, (kind, source, reply) in GRAMMAR_CASES.items():
            reply_tokens = tokenizer(reply, add_special_tokens=False)["input_ids"]
            for engine, factory in factories.items():
                mask = mask_seconds_per_step(
                    partial(factory, kind, source, rows), reply_tokens, rows, vocab_size, repeats
                )
                results.append(
                    {
                        "engine": engine,
                        "grammar": case,
                        "batch": rows,
                        "decoding_step_seconds": round(step, 5),
                        "mask_seconds_per_step": round(mask, 6),
                        "overhead_fraction_of_step": round(mask / step, 4),
                    }
                )
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    versions = {}
    for package in ("xgrammar", "llguidance"):
        try:
            versions[package] = __import__("importlib.metadata").metadata.version(package)
        except Exception:  # noqa: BLE001 - a candidate that is not installed is simply not measured
            versions[package] = None
    return {"engine_versions": versions, "grammar_overhead": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 new tokens, one round, no batch of 32")
    parser.add_argument("--max-tokens", type=int, default=None, help="new tokens per answer (64; 16 with --quick)")
    parser.add_argument(
        "--top-p",
        type=float,
        default=1.0,
        help="nucleus sampling for every runner (1.0: off; the pipelines' defaults are 0.9-0.95)",
    )
    parser.add_argument("--repeats", type=int, default=None, help="alternating rounds per case (2; 1 with --quick)")
    parser.add_argument("--cases", default="", help="comma-separated subset of " + ",".join(c[0] for c in FULL_CASES))
    parser.add_argument("--skip-sequential", action="store_true", help="leave out the one-at-a-time loop")
    parser.add_argument("--naive-threads", type=int, default=0, help="torch threads for the naive runs (0: default)")
    parser.add_argument(
        "--dtype",
        choices=["auto", "float32", "bfloat16"],
        default="auto",
        help="our backend's dtype, as a registry entry gives it (auto: bfloat16 where this CPU has its kernels "
        "and the KL check passes, else float32); the bound is the dtype it runs in",
    )
    parser.add_argument(
        "--naive-dtype",
        choices=["float32", "bfloat16"],
        default="float32",
        help="the naive runners' dtype (float32: the model as transformers loads it)",
    )
    parser.add_argument("--model-cache-dir", type=Path, default=default_model_cache_dir())
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument(
        "--grammar-overhead", action="store_true", help="measure the grammar engines' mask cost instead of the cases"
    )
    args = parser.parse_args()
    if args.grammar_overhead:
        _grammar_overhead_main(args)
        return
    max_tokens = args.max_tokens or (16 if args.quick else 64)
    repeats = max(1, args.repeats or (1 if args.quick else 2))
    cases = QUICK_CASES if args.quick else FULL_CASES
    if args.cases:
        wanted = set(args.cases.split(","))
        cases = [case for case in FULL_CASES if case[0] in wanted]

    import torch
    from transformers import AutoModelForCausalLM

    from pipelines.llm.factory import build_backend

    default_threads = torch.get_num_threads()
    naive_threads = args.naive_threads or default_threads
    ensure_embedded_model(args.model_cache_dir)
    spec = {"kind": "transformers", "source": "embedded", "dtype": args.dtype}
    backend = build_backend(spec, model_cache_dir=args.model_cache_dir)
    ours_threads = getattr(backend, "torch_threads", None) or default_threads
    ours_dtype = str(next(backend.model.parameters()).dtype).removeprefix("torch.")
    # The naive runners get the model exactly as transformers loads it (the backend packs its own copy).
    plain_model = AutoModelForCausalLM.from_pretrained(backend.model_dir, dtype=getattr(torch, args.naive_dtype)).eval()
    # Warm-up: the first calls pay for kernel selection and allocator growth.
    backend.chat([[{"role": "user", "content": "Hi"}]], SamplingParams(n=2, max_tokens=4, seed=0))
    naive_batched(plain_model, backend.tokenizer, ["Hi"], 2, 4, 1.0)
    parameters = sum(parameter.numel() for parameter in plain_model.parameters())
    bytes_per_parameter = next(backend.model.parameters()).element_size()

    load_before = os.getloadavg()
    thread_counts = [1, default_threads, ours_threads]
    hardware_before = measure_hardware(thread_counts, ours_dtype)
    results = []
    for case in cases:
        result = bench_case(
            backend,
            plain_model,
            case,
            max_tokens=max_tokens,
            top_p=args.top_p,
            repeats=repeats,
            naive_threads=naive_threads,
            skip_sequential=args.skip_sequential,
        )
        results.append(result)
        print(json.dumps(result), file=sys.stderr, flush=True)
    hardware = fastest_hardware(hardware_before, measure_hardware(thread_counts, ours_dtype))
    for case, result in zip(cases, results, strict=True):
        bound = hardware_bound(
            parameters,
            bytes_per_parameter,
            hardware,
            rows=case[1] * case[2],
            new_tokens=max_tokens,
            prompt_tokens=result["prompt_tokens_to_compute"],
        )
        result["hardware_bound"] = bound
        result["ours_fraction_of_bound"] = round(result["ours"]["tokens_per_s"] / bound["bound_tokens_per_s"], 3)

    report = {
        "benchmark": "bench/generation.py" + (" --quick" if args.quick else ""),
        "machine": {
            "cpu": _cpu_name(),
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "transformers": __import__("transformers").__version__,
            # Other work on the machine skews timings; the load averages show how much there was.
            "load_average_1_5_15_before": [round(value, 2) for value in load_before],
            "load_average_1_5_15_after": [round(value, 2) for value in os.getloadavg()],
        },
        "model": backend.name,
        "parameters": parameters,
        # Ours runs in `dtype` (the bound's too); the naive runners in `naive_dtype`.
        "dtype": ours_dtype,
        "dtype_asked": args.dtype,
        "dtype_choice": backend.dtype_choice.as_dict() if getattr(backend, "dtype_choice", None) else None,
        "cpu_bfloat16_flags": cpu_bfloat16_flags(),
        "naive_dtype": args.naive_dtype,
        # Linear layers the backend packed for oneDNN (0: it decodes with plain nn.Linear).
        "packed_linears": getattr(backend, "packed_linears", 0),
        "max_tokens": max_tokens,
        "temperature": TEMPERATURE,
        "top_p": args.top_p,
        "repeats": repeats,
        "threads": {"naive": naive_threads, "ours": ours_threads, "torch_default": default_threads},
        "settings": {key: value for key, value in os.environ.items() if key.startswith(("REFINERY_", "OMP_"))},
        "backend_load_seconds": round(backend.load_seconds, 2),
        "hardware": hardware,
        "results": results,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


def _grammar_overhead_main(args: argparse.Namespace) -> None:
    import torch

    from pipelines.llm.factory import build_backend

    ensure_embedded_model(args.model_cache_dir)
    backend = build_backend(
        {"kind": "transformers", "source": "embedded", "dtype": args.dtype}, model_cache_dir=args.model_cache_dir
    )
    backend.complete(["Hi"], SamplingParams(n=1, max_tokens=4, seed=0))  # warm-up
    load_before = os.getloadavg()
    measured = grammar_overhead(backend, [1, 32], max(1, args.repeats or 3))
    report = {
        "benchmark": "bench/generation.py --grammar-overhead",
        "machine": {
            "cpu": _cpu_name(),
            "cores": os.cpu_count(),
            "torch": torch.__version__,
            "threads": getattr(backend, "torch_threads", None) or torch.get_num_threads(),
            "load_average_1_5_15_before": [round(value, 2) for value in load_before],
            "load_average_1_5_15_after": [round(value, 2) for value in os.getloadavg()],
        },
        "model": backend.name,
        **measured,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
