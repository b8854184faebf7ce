"""End to end, per method: each method's CPU demo on the demo data, with the wall time, model calls and tokens of every stage.

Issue 23 ("Speed a user feels") asks for every method's demo in minutes on 2 cores; this says where
the time goes. It runs the pipelines as plain Python calls (no Django, no worker), one method after
another in one process, on the demo library exactly as `load_demo_data` imports it and with the
inputs each worker kind (`workers/kinds/<method>.py`) would snapshot, and the form's demo settings:

- `augcon`: the first `--augcon-documents` (10) documents of the demo corpus (`pydoc_data.topics`,
  sorted, as the corpus import numbers them), the "Python reference QA" few-shot set, the
  `tiny-cpu-demo` preset, the bundled model as generator and scorer base;
- `spin`: the "Python reference QA (SFT)" dataset, `--spin-rows` (8) rows, `--spin-iterations` (2),
  the `tiny-cpu-demo` preset;
- `aft`: the demo seed prompts (`--aft-prompts`, 31: the whole set) through propose-and-aggregate
  with `--aft-proposals` (5) proposals of `--aft-max-tokens` (128) tokens, the form's other defaults;
- `almost`: `--almost-prompts` (20) generated prompts from the demo seeds, the form's first rubric
  (the bundled model with the HHH demonstrations at 3 and at 1 shots), the `tiny-cpu-demo` training
  preset for the reward model, RMSP on, the policy stages off (the form's defaults), every filter
  on but "no_final_punctuation" (the 135M model's answers are mostly cut off at 384 tokens: with it
  on, 0-1 of 20 pairs survived and the run stopped at cs).

Models load through `pipelines.llm.factory` as the worker's loader does (`REFINERY_*` settings of the
environment apply), from a cold cache at the start of each method, so a method's first stage pays
for its load as on a fresh worker; every load is listed with its stage and seconds.

Per stage (the names the run page shows, in the order first entered; `(setup)` is the time before
the first stage) it records:

- `wall_seconds`: time between `Progress.stage` changes (a stage entered again adds up);
- `model_calls`: backend calls (one batched `chat`/`complete` each, however many prompts) that
  ended in it, from `Progress.call_progress` (a call ends when `tokens_done == tokens_budget`);
  `token_budget`: those calls' budgets (sequences x `max_tokens`);
- `prompts`: the prompts those calls carried (prompts / calls: how well the stage batches; a
  method's own summary, e.g. AugCon's `model_calls`, counts prompts);
- `tokens` / `prompt_tokens`: new tokens the model actually generated and prompt tokens it read,
  summed from the calls' completions (a greedy call's n copies counted once);
- `peak_rss_mib_after`: the process's peak RSS when the stage last ended (the stage that raises it
  is the one that needed the memory).

Per method: `wall_seconds`, `peak_rss_mib` (this process's peak so far: methods run in order in one
process, so a later method's figure includes the earlier ones'; run one `--methods` at a time for a
method's own), the model loads, and the scalar figures of its result summary. Also `machine` (CPU,
its vector/matrix flags, cores, torch and its threads, load averages) and `settings`.

`--compare BEFORE.json` adds, per method and per stage found in both, `ratio_to_before` (after /
before) of wall seconds, model calls and tokens. `--tiny` runs the tiny random model at a few items
per method: a smoke check of the harness in about a minute, never a measurement (its JSON says so,
and it writes no file unless `--out` is given).

Usage (alone on a quiet machine: other work skews every figure):
    .venv/bin/python bench/methods.py                                  # all four, writes bench/results/methods-cpu-<N>core.json
    .venv/bin/python bench/methods.py --methods spin,aft --out bench/results/methods-after.json
    .venv/bin/python bench/methods.py --compare bench/results/methods-cpu-2core.json --out bench/results/methods-after.json
    nice .venv/bin/python bench/methods.py --tiny --methods spin,almost   # the harness itself, in about a minute
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.generation import _cpu_name  # noqa: E402
from pipelines.common.result import PipelineResult  # noqa: E402
from pipelines.common.store import RunStore  # noqa: E402
from pipelines.llm.cpu_dtype import cpu_flags  # noqa: E402
from pipelines.llm.embedded import default_model_cache_dir, ensure_embedded_model  # noqa: E402
from pipelines.llm.loader import BackendSpec, spec_name  # noqa: E402
from pipelines.llm.token_progress import report_tokens_to  # noqa: E402
from pipelines.llm.types import Completion, LLMBackend, SamplingParams  # noqa: E402

METHODS = ("augcon", "spin", "aft", "almost")
DEMO_DIR = REPO_ROOT / "webapp/library/demo"
"""The demo library's files (`load_demo_data` imports them; the corpus is `pydoc_data.topics`)."""
EMBEDDED_LABEL = "smollm2-135m-instruct-bundled"
"""The bundled model's label in an ALMoST rubric: the slug of its registry name, as the form makes it."""
SETUP_STAGE = "(setup)"
TINY_WARNING = "--tiny: the tiny random model at a few items, a smoke check of the harness; not a measurement"
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
"""The /proc/cpuinfo flags that decide which kernels torch and oneDNN can use."""


@dataclass(frozen=True)
class Sizes:
    """How much of the demo each method runs: the issue's demo sizes, or a few items with `--tiny`."""

    augcon_documents: int
    spin_rows: int
    spin_iterations: int
    aft_prompts: int
    aft_proposals: int
    aft_max_tokens: int
    almost_prompts: int


DEMO_SIZES = Sizes(10, 8, 2, 31, 5, 128, 20)
TINY_SIZES = Sizes(1, 2, 1, 2, 2, 8, 3)


# -- measuring ------------------------------------------------------------------------------------


@dataclass
class StageFigures:
    name: str
    wall_seconds: float = 0.0
    model_calls: int = 0
    prompts: int = 0
    """Prompts those calls carried: prompts / model_calls is how well the stage batches."""
    tokens: int = 0
    prompt_tokens: int = 0
    token_budget: int = 0
    items: int = 0
    """The stage's `total` when last entered (documents, prompts, steps: whatever it counts)."""
    peak_rss_mib_after: float = 0.0
    """The process's peak RSS when the stage last ended: the stage that raises it is where memory goes."""

    def record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "wall_seconds": round(self.wall_seconds, 2),
            "model_calls": self.model_calls,
            "prompts": self.prompts,
            "tokens": self.tokens,
            "prompt_tokens": self.prompt_tokens,
            "token_budget": self.token_budget,
            "peak_rss_mib_after": round(self.peak_rss_mib_after, 1),
            "items": self.items,
        }


class StageClock:
    """A `pipelines.common.progress.Progress` that times each stage and counts its model calls and tokens.

    The time of a stage runs from its `stage()` call to the next call naming another stage; the
    model figures land in the stage current when a call ends. Cancelling is never asked for.
    """

    def __init__(self, method: str) -> None:
        self.method = method
        self.stages: dict[str, StageFigures] = {SETUP_STAGE: StageFigures(SETUP_STAGE)}
        self.current = SETUP_STAGE
        self.started = self._since = time.perf_counter()
        self.published = 0
        self._call_open = False

    def stage(self, name: str, total: int, done: int = 0) -> None:
        if name != self.current:
            self._close_segment()
            self.current = name
            self.stages.setdefault(name, StageFigures(name))
            print(f"[{self.method} {self.elapsed():7.1f}s] {name} ({total} items)", file=sys.stderr, flush=True)
        self.stages[name].items = total

    def advance(self, count: int = 1) -> None:
        pass

    def log(self, message: str) -> None:
        print(f"[{self.method} {self.elapsed():7.1f}s]   {message}", file=sys.stderr, flush=True)

    def metrics(self, values: dict[str, Any]) -> None:
        pass

    def check_cancelled(self) -> None:
        pass

    def publish(self, result: PipelineResult) -> None:
        self.published += 1

    def call_progress(self, tokens_done: int, tokens_budget: int) -> None:
        # A call whose last batch finishes can report its whole budget twice (the batch's report, then the
        # call's end): a call counts once, at the first report of its budget after one below it.
        if tokens_done < tokens_budget:
            self._call_open = True
        elif self._call_open:
            self._call_open = False
            figures = self.stages[self.current]
            figures.model_calls += 1
            figures.token_budget += tokens_budget

    def completions(self, results: list[list[Completion]], params: SamplingParams) -> None:
        """A generation call's results: new and prompt tokens, each prompt's read once (greedy copies once)."""
        figures = self.stages[self.current]
        figures.prompts += len(results)
        for samples in results:
            decoded = samples[:1] if params.temperature == 0 else samples
            figures.tokens += sum(completion.completion_tokens for completion in decoded)
            figures.prompt_tokens += samples[0].prompt_tokens if samples else 0

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def finish(self) -> list[dict[str, Any]]:
        """Every stage's figures, in the order first entered; the setup only when it took time or calls."""
        self._close_segment()
        setup = self.stages[SETUP_STAGE]
        return [
            figures.record()
            for figures in self.stages.values()
            if figures is not setup or figures.model_calls or figures.wall_seconds >= 0.01
        ]

    def _close_segment(self) -> None:
        now = time.perf_counter()
        self.stages[self.current].wall_seconds += now - self._since
        self.stages[self.current].peak_rss_mib_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self._since = now


class BenchBackends:
    """A `pipelines.llm.loader.BackendLoader` as the worker's (`workers/backends.py`) without the database:
    warm backends from the process's cache, each one's calls reported to the clock, each load listed."""

    def __init__(self, model_cache_dir: Path, clock: StageClock) -> None:
        self.model_cache_dir = model_cache_dir
        self.clock = clock
        self.loads: list[dict[str, Any]] = []

    def load(self, spec: BackendSpec, *, fresh: bool = False) -> LLMBackend:
        import torch

        from pipelines.llm.factory import build_backend, get_backend

        started = time.perf_counter()
        if fresh:
            backend, was_cached = build_backend(spec, model_cache_dir=self.model_cache_dir), False
        else:
            backend, was_cached = get_backend(spec, model_cache_dir=self.model_cache_dir)
        seconds = time.perf_counter() - started
        report_tokens_to(backend, self.clock)
        count_completions(backend, self.clock)
        self.loads.append(
            {
                "model": spec_name(spec),
                "stage": self.clock.current,
                "seconds": round(seconds, 2),
                "reused": was_cached,
                "torch_threads": getattr(backend, "torch_threads", None) or torch.get_num_threads(),
                # What "auto" chose on this CPU (pipelines.llm.cpu_dtype), and why.
                "dtype": str(next(backend.model.parameters()).dtype).removeprefix("torch.")
                if hasattr(backend, "model")
                else None,
                "dtype_reason": backend.dtype_choice.reason if getattr(backend, "dtype_choice", None) else None,
            }
        )
        return backend

    def release_all(self) -> None:
        from pipelines.llm.factory import backend_cache

        backend_cache.clear()

    def model_directory(self, spec: BackendSpec) -> Path:
        from pipelines.llm.factory import model_directory

        return model_directory(spec, self.model_cache_dir)


def count_completions(backend: Any, clock: StageClock) -> None:
    """Have `backend.chat` / `backend.complete` hand their results to `clock` (the one set at its latest load).

    The token-progress hook only knows a call's budget when it ends; the completions know what was
    generated. Wrapped once per backend object, in the instance, so the pipelines see the same backend.
    """
    backend.bench_clock = clock
    if getattr(backend, "bench_counted", False):
        return
    for name in ("chat", "complete"):
        inner = getattr(backend, name)

        def counted(inputs: Sequence[Any], params: SamplingParams, _inner: Callable[..., Any] = inner) -> Any:
            results = _inner(inputs, params)
            backend.bench_clock.completions(results, params)
            return results

        setattr(backend, name, counted)
    backend.bench_counted = True


# -- the methods' demo inputs ---------------------------------------------------------------------


@dataclass
class PreparedMethod:
    """One method's call, as a worker kind's `prepare` gives it, plus the settings it ran with."""

    pipeline: Callable[..., PipelineResult]
    config: Any
    inputs: Any
    settings: dict[str, Any] = field(default_factory=dict)


def demo_documents(count: int) -> list[dict[str, Any]]:
    """The demo corpus's first `count` documents as the AugCon worker snapshots them (`documents.jsonl`)."""
    from pydoc_data.topics import topics

    return [
        {
            "document_id": f"doc{position:05d}",
            "position": position,
            "title": key,
            "source": f"python-reference.jsonl, line {position + 1}",
            "text": topics[key],
        }
        for position, key in enumerate(sorted(topics)[:count])
    ]


def demo_seed_prompts() -> tuple[str, list[str]]:
    """The demo seed prompt set: its instruction line and its prompts, read by the library's own parser."""
    from webapp.library.parsers.prompts import InstructionRecord, read_seed_prompts

    instruction, prompts = "", []
    for record in read_seed_prompts(DEMO_DIR / "seed_prompts.txt", file_name="seed_prompts.txt"):
        if isinstance(record, InstructionRecord):
            instruction = record.text
        else:
            prompts.append(record.text)
    return instruction, prompts


def prepare_augcon(sizes: Sizes, spec: BackendSpec, store: RunStore, tiny: bool) -> PreparedMethod:
    from pipelines.augcon import AugConConfig, AugConInputs, run_augcon
    from pipelines.augcon.config import tiny_cpu_preset
    from pipelines.augcon.corpus import few_shot_row
    from pipelines.augcon.files import DOCUMENTS_FILE, FEW_SHOT_FILE
    from webapp.library.parsers.fewshot import read_qa_examples

    store.write_jsonl(demo_documents(sizes.augcon_documents), DOCUMENTS_FILE)
    examples = read_qa_examples(DEMO_DIR / "fewshot_qa.jsonl", file_name="fewshot_qa.jsonl")
    store.write_jsonl(
        (
            few_shot_row(record.context, record.question, record.answer, {**record.meta, "source": record.source})
            for record in examples
        ),
        FEW_SHOT_FILE,
    )
    config = tiny_cpu_preset(AugConConfig())
    if tiny:
        scorer = replace(config.scorer, max_steps=1, save_steps=1)
        config = replace(
            config,
            max_chunks_per_document=1,
            max_rounds_per_chunk=1,
            max_attempts=1,
            question_max_tokens=16,
            answer_max_tokens=8,
            judge_max_tokens=2,
            negatives_per_variant=2,
            scorer=scorer,
        )
    return PreparedMethod(
        run_augcon,
        config,
        AugConInputs(generator=spec, scorer=spec),
        {"preset": "tiny-cpu-demo", "documents": sizes.augcon_documents, "config": config.to_dict()},
    )


def prepare_spin(sizes: Sizes, spec: BackendSpec, store: RunStore, tiny: bool) -> PreparedMethod:
    from pipelines.spin import SpinConfig
    from pipelines.spin.config import tiny_cpu_preset
    from pipelines.spin.run import SpinInputs, run_spin
    from webapp.library.parsers.datasets import read_training_rows

    # The SFT dataset as `dataset_import` writes it: the rows unchanged, checked against the layouts.
    rows = list(read_training_rows(DEMO_DIR / "fewshot_qa.jsonl", file_name="fewshot_qa.jsonl", purpose="sft"))
    dataset = store.write_jsonl(rows, "dataset", "data.jsonl")
    config = tiny_cpu_preset(SpinConfig())
    config = replace(config, iterations=sizes.spin_iterations, max_prompts=sizes.spin_rows)
    if tiny:
        training = replace(config.training, training=replace(config.training.training, max_steps=1, save_steps=1))
        config = replace(config, training=training, generation=replace(config.generation, max_tokens=8))
    config = SpinConfig.from_dict(config.to_dict())  # through the checks a stored config meets
    return PreparedMethod(
        run_spin,
        config,
        SpinInputs(model=spec, sft_path=dataset),
        {
            "preset": "tiny-cpu-demo",
            "rows": sizes.spin_rows,
            "iterations": sizes.spin_iterations,
            "config": config.to_dict(),
        },
    )


def prepare_aft(sizes: Sizes, spec: BackendSpec, store: RunStore, tiny: bool) -> PreparedMethod:
    from pipelines.aft import AftConfig, AftInputs, run_aft
    from pipelines.common.prompts import numbered_prompts, write_prompts

    _, prompts = demo_seed_prompts()
    write_prompts(store, numbered_prompts(prompts[: sizes.aft_prompts]))
    # The inference form's defaults (webapp/aft/services.py `inference_config_from_fields`).
    sampling = {"temperature": 0.7, "top_p": 0.95, "max_tokens": sizes.aft_max_tokens, "n": sizes.aft_proposals}
    config = AftConfig.from_dict(
        {
            "mode": "aggregate",
            "proposal_params": sampling,
            "aggregation_params": sampling,
            "final_aggregation": True,
            "final_params": {"temperature": 0.0, "max_tokens": sizes.aft_max_tokens, "n": 1},
            "seed": 2024,
            "batch_size": 8,
        }
    )
    return PreparedMethod(
        run_aft,
        config,
        AftInputs(model=spec),
        {
            "prompts": min(sizes.aft_prompts, len(prompts)),
            "proposals": sizes.aft_proposals,
            "max_tokens": sizes.aft_max_tokens,
            "config": config.to_dict(),
        },
    )


def prepare_almost(sizes: Sizes, spec: BackendSpec, store: RunStore, tiny: bool) -> PreparedMethod:
    from pipelines.almost import AlmostConfig, AlmostInputs, DemonstrationPrompt, run_almost
    from pipelines.almost.config import FILTERS
    from pipelines.almost.prompts import INPUTS_FILE
    from pipelines.training.config import RewardConfig
    from pipelines.training.presets import training_preset
    from webapp.library.parsers.fewshot import read_demonstration_prompt

    instruction, seeds = demo_seed_prompts()
    hhh = read_demonstration_prompt(DEMO_DIR / "hhh_prompt.txt", file_name="hhh_prompt.txt")
    texts = AlmostInputs(
        seed_prompts=seeds,
        instruction=instruction,
        demonstrations={
            "hhh": DemonstrationPrompt(preamble=hhh.preamble, dialogues=[dialogue.text for dialogue in hhh.dialogues])
        },
    ).texts()
    store.write_json(texts, INPUTS_FILE)
    inputs = AlmostInputs.from_texts(
        store.read_json(INPUTS_FILE), models={EMBEDDED_LABEL: spec}, reward_model=spec, policy_model=spec
    )
    # As `almost_config_build` makes it from the form's defaults: the first rubric, the tiny-cpu-demo preset.
    reward = training_preset("tiny-cpu-demo").apply(RewardConfig())
    reward_training = {**reward.training.to_dict(), "prompt_format": "chat_template"}
    prompt_generation: dict[str, Any] = {
        "num_generation": sizes.almost_prompts,
        "in_context": 10,
        "constrained_output": True,  # the form's default (a dict without it reads as a config stored before grammars)
    }
    rubric: list[dict[str, Any]] = [
        {"model": EMBEDDED_LABEL, "shots": 3, "prompt": "hhh"},
        {"model": EMBEDDED_LABEL, "shots": 1, "prompt": "hhh"},
    ]
    # The form's filters, less one: SmolLM2-135M rambles, and 18 of 20 pairs had a response cut off at the
    # rubric's 384 tokens, which fails the original's "no final punctuation" rule, so the run stopped at cs
    # with every filter on (the message names the filters; the form lets the user switch them off).
    filters: dict[str, bool] = {"no_final_punctuation": False}
    rmsp: dict[str, Any] = {"n": 4, "enabled": True}
    if tiny:
        reward_training.update(max_steps=1, save_steps=1)
        prompt_generation.update(in_context=2, max_tokens=8, min_chars=0)
        rubric = [{**entry, "max_tokens": 8} for entry in rubric]
        filters = {name: name == "identical" for name in FILTERS}  # noise breaks every response rule
        rmsp["n"] = 2
    config = AlmostConfig.from_dict(
        {
            "configurations": rubric,
            "prompt_generation": prompt_generation,
            "comparisons": {"filters": filters},
            "reward": {**reward.to_dict(), "training": reward_training},
            "rmsp": rmsp,
        }
    )
    return PreparedMethod(
        run_almost,
        config,
        inputs,
        {
            "prompts": sizes.almost_prompts,
            "training_preset": "tiny-cpu-demo",
            "configurations": [configuration.name for configuration in config.configurations],
            "config": config.to_dict(),
        },
    )


PREPARE = {"augcon": prepare_augcon, "spin": prepare_spin, "aft": prepare_aft, "almost": prepare_almost}


# -- running --------------------------------------------------------------------------------------


def run_method(method: str, sizes: Sizes, spec: BackendSpec, model_cache_dir: Path, work_dir: Path, tiny: bool):
    """One method from a cold model cache in a fresh run directory; a failure is recorded, not raised."""
    from pipelines.llm.factory import backend_cache

    backend_cache.clear()
    store = RunStore(work_dir / method)
    prepared = PREPARE[method](sizes, spec, store, tiny)
    clock = StageClock(method)
    backends = BenchBackends(model_cache_dir, clock)
    error = None
    summary: dict[str, Any] = {}
    try:
        result = prepared.pipeline(prepared.config, prepared.inputs, backends, store, clock)
        summary = {key: value for key, value in result.summary.items() if isinstance(value, int | float | str | bool)}
    except Exception as failure:  # noqa: BLE001 - one method's failure must not lose the others' figures
        traceback.print_exc()
        error = f"{type(failure).__name__}: {failure}"
    wall_seconds = clock.elapsed()
    stages = clock.finish()
    record = {
        "method": method,
        "wall_seconds": round(wall_seconds, 2),
        "stages": stages,
        "model_calls": sum(stage["model_calls"] for stage in stages),
        "tokens": sum(stage["tokens"] for stage in stages),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "model_loads": backends.loads,
        "result_summary": summary,
    }
    if error:
        record["error"] = error
    return record, prepared.settings


def compare(methods: list[dict[str, Any]], before_path: Path) -> None:
    """Add `ratio_to_before` (after / before) to each method and stage that the earlier result also has."""
    before = {entry["method"]: entry for entry in json.loads(before_path.read_text())["methods"]}
    for entry in methods:
        earlier = before.get(entry["method"])
        if earlier is None:
            continue
        entry["ratio_to_before"] = ratios(entry, earlier, ("wall_seconds", "model_calls", "tokens"))
        earlier_stages = {stage["name"]: stage for stage in earlier.get("stages", [])}
        for stage in entry["stages"]:
            if stage["name"] in earlier_stages:
                stage["ratio_to_before"] = ratios(
                    stage, earlier_stages[stage["name"]], ("wall_seconds", "model_calls", "tokens")
                )
        names = {stage["name"] for stage in entry["stages"]}
        entry["stages_only_before"] = [stage for stage in earlier.get("stages", []) if stage["name"] not in names]


def ratios(after: dict[str, Any], before: dict[str, Any], keys: Sequence[str]) -> dict[str, float | None]:
    return {key: round(after[key] / before[key], 3) if before.get(key) and key in after else None for key in keys}


def describe_machine() -> dict[str, Any]:
    import torch

    flags = cpu_flags()
    return {
        "cpu": _cpu_name(),
        "cpu_flags": {flag: flag in flags for flag in CPU_FLAGS},
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "torch_threads_default": torch.get_num_threads(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated, in order (all four)")
    parser.add_argument("--tiny", action="store_true", help="the tiny random model at a few items: a smoke check")
    parser.add_argument("--augcon-documents", type=int, help=f"demo documents ({DEMO_SIZES.augcon_documents})")
    parser.add_argument("--spin-rows", type=int, help=f"SFT rows as prompts ({DEMO_SIZES.spin_rows})")
    parser.add_argument("--spin-iterations", type=int, help=f"SPIN iterations ({DEMO_SIZES.spin_iterations})")
    parser.add_argument("--aft-prompts", type=int, help=f"demo seed prompts answered ({DEMO_SIZES.aft_prompts})")
    parser.add_argument("--aft-proposals", type=int, help=f"samples per layer ({DEMO_SIZES.aft_proposals})")
    parser.add_argument("--aft-max-tokens", type=int, help=f"new tokens per sample ({DEMO_SIZES.aft_max_tokens})")
    parser.add_argument("--almost-prompts", type=int, help=f"prompts generated ({DEMO_SIZES.almost_prompts})")
    parser.add_argument("--dtype", default="", help="the model spec's dtype (blank: the registry's, auto)")
    parser.add_argument("--note", default="", help="a remark kept in the JSON (the load, what changed)")
    parser.add_argument("--compare", type=Path, help="an earlier result: adds per-stage after/before ratios")
    parser.add_argument("--model-cache-dir", type=Path, default=default_model_cache_dir())
    parser.add_argument("--work-dir", type=Path, help="run directories here, kept (default: a temporary one)")
    parser.add_argument(
        "--out",
        type=Path,
        help="write the JSON here (default bench/results/methods-cpu-<N>core.json; none with --tiny)",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    methods = [name.strip() for name in args.methods.split(",") if name.strip()]
    unknown = [name for name in methods if name not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    defaults = TINY_SIZES if args.tiny else DEMO_SIZES
    sizes = Sizes(
        **{
            name: getattr(args, name) if getattr(args, name) is not None else getattr(defaults, name)
            for name in Sizes.__dataclass_fields__
        }
    )
    out = args.out or (None if args.tiny else REPO_ROOT / f"bench/results/methods-cpu-{os.cpu_count()}core.json")

    embedded_dir = ensure_embedded_model(args.model_cache_dir)
    if args.tiny:
        from pipelines.llm.embedded import TINY_MODEL_NAME, build_tiny_random_model

        tiny_dir = build_tiny_random_model(args.model_cache_dir / TINY_MODEL_NAME, embedded_dir)
        spec: BackendSpec = {"kind": "transformers", "source": "local", "path": str(tiny_dir), "dtype": args.dtype}
    else:
        spec = {"kind": "transformers", "source": "embedded", "path": "", "dtype": args.dtype}
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="refinery-bench-methods-"))
    work_dir.mkdir(parents=True, exist_ok=True)

    report: dict[str, Any] = {
        "benchmark": "bench/methods.py " + " ".join(sys.argv[1:]),
        "tiny": args.tiny,
        **({"warning": TINY_WARNING} if args.tiny else {}),
        "machine": describe_machine(),
        "settings": {
            "model": spec_name(spec) if not args.tiny else "tiny-random-smollm2 (noise: not a measurement)",
            "model_spec": spec,
            "sizes": vars(sizes),
            "environment": {key: value for key, value in os.environ.items() if key.startswith(("REFINERY_", "OMP_"))},
            "note": args.note,
            "methods": {},
        },
        "methods": [],
    }
    report["machine"]["load_average_1_5_15_before"] = [round(value, 2) for value in os.getloadavg()]
    try:
        for method in methods:
            record, settings = run_method(method, sizes, spec, args.model_cache_dir, work_dir, args.tiny)
            report["methods"].append(record)
            report["settings"]["methods"][method] = settings
            report["machine"]["load_average_1_5_15_after"] = [round(value, 2) for value in os.getloadavg()]
            if args.compare:
                compare(report["methods"], args.compare)
            if out:  # after each method: a long run that dies later keeps what it measured
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(report, indent=2) + "\n")
    finally:
        if args.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
