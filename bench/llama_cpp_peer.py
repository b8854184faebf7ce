"""Our transformers backend against llama.cpp on the same machine, model and prompts.

llama.cpp is what a CPU user would pick instead of us, and the bundled SmolLM2-135M-Instruct is a
GGUF file, llama.cpp's own format. This runs both in one process, alternating rounds, on exactly
the same prompt token ids (our tokenizer applies the chat template; llama.cpp gets the ids), at
temperature 0.7 and top-p 1.0, up to `--max-tokens` new tokens per sequence, and reports generated
tokens/s for each case:

- `ours`: `pipelines.llm.factory.build_backend` on the embedded model, as the pipelines get it, in
  each dtype asked for (`--ours-dtypes`, default `auto,float32`: auto is what a worker runs on
  this CPU, bfloat16 where it has the kernels and the KL check passes);
- `llama_cpp_sequential`: one sequence at a time (a llama.cpp server with one slot, or the
  `Llama` class of llama-cpp-python, which decodes one sequence);
- `llama_cpp_parallel`: every sequence of the case decoded together, one llama.cpp sequence id
  each, in one `llama_decode` batch per step (llama.cpp's `batched` example, and what its server
  does with as many slots as sequences: continuous batching);

each on every GGUF given: the bundled Q4_1 file (what llama.cpp would run, its 4-bit kernels) and,
with `--convert`, the same float32 weights our backend runs, converted to F32 and BF16 GGUF files
by llama.cpp's own `convert_hf_to_gguf.py` (the like-for-like arithmetic; pass its path).

llama.cpp is an optional, bench-only install: `pip install -r bench/requirements-llama-cpp.txt`
into the project's virtualenv (llama-cpp-python builds llama.cpp from source: ~15 minutes on 2
cores, with gcc and cmake). Nothing else in Refinery imports it.

Usage:
    .venv/bin/python bench/llama_cpp_peer.py --out bench/results/llama-cpp-cpu-2core.json
    .venv/bin/python bench/llama_cpp_peer.py --convert /path/to/llama.cpp/convert_hf_to_gguf.py
    .venv/bin/python bench/llama_cpp_peer.py --cases batch_1,batch_32 --max-tokens 32   # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.generation import QUESTIONS, TEMPERATURE, _cpu_name, best_of  # noqa: E402
from pipelines.llm.cpu_dtype import cpu_bfloat16_flags  # noqa: E402
from pipelines.llm.embedded import default_model_cache_dir, embedded_gguf_path, ensure_embedded_model  # noqa: E402
from pipelines.llm.types import SamplingParams  # noqa: E402

SEED = 0
CASES = {"batch_1": 1, "batch_8": 8, "batch_32": 32}


class LlamaCppModel:
    """One GGUF file in llama.cpp, through llama-cpp-python's C API (ctypes), decoding sequences in batches."""

    def __init__(self, gguf_path: Path, *, threads: int, max_sequences: int, max_positions: int) -> None:
        import llama_cpp

        self.api = llama_cpp
        llama_cpp.llama_backend_init()
        model_params = llama_cpp.llama_model_default_params()
        self.model = llama_cpp.llama_model_load_from_file(str(gguf_path).encode(), model_params)
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {gguf_path}")
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        context_params = llama_cpp.llama_context_default_params()
        # One KV cache shared by all sequences, large enough for every sequence's prompt and answer.
        context_params.n_ctx = max_sequences * max_positions
        context_params.n_batch = max(max_sequences * max_positions, 512)
        context_params.n_ubatch = 512
        context_params.n_seq_max = max_sequences
        context_params.kv_unified = True
        context_params.n_threads = threads
        context_params.n_threads_batch = threads
        context_params.no_perf = True
        self.context = llama_cpp.llama_init_from_model(self.model, context_params)
        if not self.context:
            raise RuntimeError(f"llama.cpp could not make a context for {gguf_path}")
        self.batch = llama_cpp.llama_batch_init(context_params.n_batch, 0, 1)
        self.capacity = context_params.n_batch

    def _sampler(self, seed: int):
        api = self.api
        chain = api.llama_sampler_chain_init(api.llama_sampler_chain_default_params())
        api.llama_sampler_chain_add(chain, api.llama_sampler_init_temp(TEMPERATURE))
        api.llama_sampler_chain_add(chain, api.llama_sampler_init_dist(seed))
        return chain

    def _add(self, token: int, position: int, sequence: int, wants_logits: bool) -> int:
        index = self.batch.n_tokens
        if index >= self.capacity:
            raise RuntimeError("llama.cpp batch full: raise n_batch")
        self.batch.token[index] = token
        self.batch.pos[index] = position
        self.batch.n_seq_id[index] = 1
        self.batch.seq_id[index][0] = sequence
        self.batch.logits[index] = wants_logits
        self.batch.n_tokens = index + 1
        return index

    def generate(self, prompts: list[list[int]], max_tokens: int) -> int:
        """Decode every prompt as its own sequence, all in each step's one batch; returns tokens generated.

        A sequence stops at an end-of-generation token (counted, as `completion_tokens` counts it)
        or after `max_tokens`.
        """
        api = self.api
        api.llama_memory_clear(api.llama_get_memory(self.context), True)
        samplers = [self._sampler(SEED + index) for index in range(len(prompts))]
        try:
            self.batch.n_tokens = 0
            logits_at: list[int] = []
            for sequence, tokens in enumerate(prompts):
                for position, token in enumerate(tokens):
                    index = self._add(token, position, sequence, position == len(tokens) - 1)
                logits_at.append(index)
            if api.llama_decode(self.context, self.batch) != 0:
                raise RuntimeError("llama_decode failed on the prompts")
            positions = [len(tokens) for tokens in prompts]
            generated = [0] * len(prompts)
            live = list(range(len(prompts)))
            while live:
                self.batch.n_tokens = 0
                still = []
                for sequence in live:
                    token = api.llama_sampler_sample(samplers[sequence], self.context, logits_at[sequence])
                    generated[sequence] += 1
                    if api.llama_vocab_is_eog(self.vocab, token) or generated[sequence] >= max_tokens:
                        continue
                    logits_at[sequence] = self._add(token, positions[sequence], sequence, True)
                    positions[sequence] += 1
                    still.append(sequence)
                live = still
                if live and api.llama_decode(self.context, self.batch) != 0:
                    raise RuntimeError("llama_decode failed while generating")
            return sum(generated)
        finally:
            for sampler in samplers:
                api.llama_sampler_free(sampler)

    def close(self) -> None:
        api = self.api
        api.llama_batch_free(self.batch)
        api.llama_free(self.context)
        api.llama_model_free(self.model)


def convert_to_gguf(convert_script: Path, model_dir: Path, outtype: str, target_dir: Path) -> Path:
    """Our float32 model directory as a GGUF file of `outtype` (f32 or bf16), by llama.cpp's converter."""
    target = target_dir / f"{model_dir.name}-{outtype}.gguf"
    if not target.is_file():
        target_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(convert_script.parent / "gguf-py")}
        subprocess.run(
            [sys.executable, str(convert_script), str(model_dir), "--outtype", outtype, "--outfile", str(target)],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
    return target


def prompt_token_ids(tokenizer: Any, count: int) -> list[list[int]]:
    """The case's prompts as our backend sends them: the chat template, no extra special tokens."""
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": QUESTIONS[index % len(QUESTIONS)]}], tokenize=False, add_generation_prompt=True
        )
        for index in range(count)
    ]
    return [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]


def ours_tokens(backend: Any, conversations: list, params: SamplingParams) -> int:
    """One batched call of our backend; the tokens it generated."""
    return sum(completion.completion_tokens for drawn in backend.chat(conversations, params) for completion in drawn)


def sequential_tokens(peer: LlamaCppModel, prompts: list[list[int]], max_tokens: int) -> int:
    """llama.cpp decoding the prompts one after another, each alone; the tokens generated."""
    return sum(peer.generate([prompt], max_tokens) for prompt in prompts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of " + ",".join(CASES))
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--ours-dtypes", default="auto,float32", help="our backend's dtypes (auto, float32, bfloat16)")
    parser.add_argument(
        "--convert",
        type=Path,
        default=None,
        help="llama.cpp's convert_hf_to_gguf.py: also run F32 and BF16 GGUF files of our weights",
    )
    parser.add_argument(
        "--gguf-dir", type=Path, default=REPO_ROOT / "var" / "gguf", help="where converted GGUF files go"
    )
    parser.add_argument("--model-cache-dir", type=Path, default=default_model_cache_dir())
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()
    try:
        import llama_cpp
    except ImportError:
        sys.exit("llama-cpp-python is not installed: pip install -r bench/requirements-llama-cpp.txt (bench only)")

    import torch

    from pipelines.llm.factory import build_backend

    model_dir = ensure_embedded_model(args.model_cache_dir)
    threads = torch.get_num_threads()
    cases = [name for name in args.cases.split(",") if name]
    largest = max(CASES[name] for name in cases)
    ggufs = {"q4_1 (bundled)": embedded_gguf_path()}
    if args.convert:
        for outtype in ("f32", "bf16"):
            ggufs[f"{outtype} (our weights)"] = convert_to_gguf(args.convert, model_dir, outtype, args.gguf_dir)

    ours = {}
    dtype_choices = {}
    for dtype in [d for d in args.ours_dtypes.split(",") if d]:
        backend = build_backend(
            {"kind": "transformers", "source": "embedded", "dtype": dtype}, model_cache_dir=args.model_cache_dir
        )
        actual = str(next(backend.model.parameters()).dtype).removeprefix("torch.")
        key = f"ours_{dtype}" if dtype == actual else f"ours_{dtype}_{actual}"
        ours[key] = backend
        dtype_choices[key] = backend.dtype_choice.as_dict() if backend.dtype_choice else None
        backend.chat([[{"role": "user", "content": "Hi"}]], SamplingParams(n=2, max_tokens=4, seed=0))  # warm-up
    tokenizer = next(iter(ours.values())).tokenizer
    prompts_by_case = {name: prompt_token_ids(tokenizer, CASES[name]) for name in cases}
    max_positions = max(len(t) for p in prompts_by_case.values() for t in p) + args.max_tokens + 8
    peers = {
        name: LlamaCppModel(path, threads=threads, max_sequences=largest, max_positions=max_positions)
        for name, path in ggufs.items()
    }
    for peer in peers.values():
        peer.generate(prompts_by_case[cases[0]][:1], 4)  # warm-up

    load_before = os.getloadavg()
    results = []
    for name in cases:
        prompts = prompts_by_case[name]
        conversations = [
            [{"role": "user", "content": QUESTIONS[index % len(QUESTIONS)]}] for index in range(CASES[name])
        ]
        params = SamplingParams(n=1, temperature=TEMPERATURE, top_p=1.0, max_tokens=args.max_tokens, seed=SEED)
        runners: dict[str, Callable[[], int]] = {}
        for key, backend in ours.items():
            runners[key] = partial(ours_tokens, backend, conversations, params)
        for peer_name, peer in peers.items():
            label = peer_name.split(" ")[0]
            runners[f"llama_cpp_{label}_parallel"] = partial(peer.generate, prompts, args.max_tokens)
            if len(prompts) > 1:
                runners[f"llama_cpp_{label}_sequential"] = partial(sequential_tokens, peer, prompts, args.max_tokens)
        measured = best_of(runners, args.repeats)
        fastest_peer = max(
            (value["tokens_per_s"], key) for key, value in measured.items() if key.startswith("llama_cpp")
        )
        result: dict[str, Any] = {
            "case": name,
            "sequences": len(prompts),
            "prompt_tokens": sum(map(len, prompts)),
            **measured,
        }
        result["fastest_llama_cpp"] = fastest_peer[1]
        for key in ours:
            result[f"{key}_vs_fastest_llama_cpp"] = round(measured[key]["tokens_per_s"] / fastest_peer[0], 2)
        results.append(result)
        print(json.dumps(result), file=sys.stderr, flush=True)

    report = {
        "benchmark": "bench/llama_cpp_peer.py",
        "machine": {
            "cpu": _cpu_name(),
            "cores": os.cpu_count(),
            "cpu_bfloat16_flags": cpu_bfloat16_flags(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "llama_cpp_python": llama_cpp.__version__,
            "llama_cpp_system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip(),
            "threads": threads,
            "load_average_1_5_15_before": [round(value, 2) for value in load_before],
            "load_average_1_5_15_after": [round(value, 2) for value in os.getloadavg()],
        },
        "model": model_dir.name,
        "gguf_files": {name: path.name for name, path in ggufs.items()},
        "ours_dtype_choices": dtype_choices,
        "max_tokens": args.max_tokens,
        "temperature": TEMPERATURE,
        "top_p": 1.0,
        "repeats": args.repeats,
        "results": results,
    }
    for peer in peers.values():
        peer.close()
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
