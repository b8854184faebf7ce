"""Step RMSP (reward-model-guided self-play): sample n responses per prompt, keep the one the reward model likes best.

The sampler is a rubric configuration (by default the best one, the paper's "prompted strong"
model). Samples are drawn batch by batch into `rmsp/samples/`, then scored batch by batch into
`rmsp/scored/` (the generator is released before the reward model loads); `rmsp/demonstrations.jsonl`
(prompt, response, score: an SFT dataset) and `rmsp/summary.json` appear at the end.
"""
from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelines.almost.config import AlmostConfig
from pipelines.almost.prompts import RESPONSE_STOPS, AlmostInputs, clean_response, response_prompt_text
from pipelines.common.progress import Progress
from pipelines.common.store import RunStore
from pipelines.llm.loader import BackendLoader
from pipelines.llm.types import SamplingParams

DEMONSTRATIONS_FILE = "rmsp/demonstrations.jsonl"
SUMMARY_FILE = "rmsp/summary.json"
HISTOGRAM_BINS = 10

ScorerFactory = Callable[[Path], Any]
"""Reward model directory -> an object with `score(prompts, responses) -> list[float]` (RewardScorer)."""


def rm_guided_self_play(
    config: AlmostConfig,
    inputs: AlmostInputs,
    prompts: list[dict[str, Any]],
    backends: BackendLoader,
    reward_model_dir: str | Path,
    store: RunStore,
    progress: Progress,
    *,
    scorer_for: ScorerFactory | None = None,
) -> dict[str, Any]:
    """Best-of-n demonstrations and their score distribution; a finished step is read back.

    The sampler's backend is released (`backends.release_all()`) before the reward model loads to score.
    """
    if store.exists(SUMMARY_FILE):
        return store.read_json(SUMMARY_FILE)
    settings = config.rmsp
    configuration = config.configurations[settings.configuration]
    if settings.max_prompts:
        prompts = prompts[: settings.max_prompts]
    batches = [prompts[start : start + settings.batch_size] for start in range(0, len(prompts), settings.batch_size)]

    unsampled = [index for index in range(len(batches)) if not store.exists(_samples_name(index))]
    progress.stage(f"rmsp · sample ({configuration.name}, n={settings.n})", total=len(prompts),
                   done=sum(len(batches[index]) for index in range(len(batches)) if index not in unsampled))
    if unsampled:
        backend = backends.load(inputs.models[configuration.model])
        demonstration = inputs.demonstrations.get(configuration.prompt) if configuration.prompt else None
        for index in unsampled:
            progress.check_cancelled()
            sampling = SamplingParams(
                n=settings.n,
                temperature=settings.temperature,
                top_p=settings.top_p,
                max_tokens=configuration.max_tokens,
                seed=settings.seed + index,
                stop=RESPONSE_STOPS,
            )
            texts = [response_prompt_text(demonstration, configuration.shots, row["prompt"]) for row in batches[index]]
            outputs = backend.complete(texts, sampling)
            rows = [
                {"prompt_id": row["prompt_id"], "prompt": row["prompt"], "samples": [clean_response(c.text) for c in completions]}
                for row, completions in zip(batches[index], outputs, strict=True)
            ]
            store.write_jsonl(rows, _samples_name(index))
            progress.advance(len(rows))
    backends.release_all()

    unscored = [index for index in range(len(batches)) if not store.exists(_scored_name(index))]
    progress.stage("rmsp · score", total=len(prompts),
                   done=sum(len(batches[index]) for index in range(len(batches)) if index not in unscored))
    if unscored:
        scorer = (scorer_for or _default_scorer(config))(Path(reward_model_dir))
        for index in unscored:
            progress.check_cancelled()
            sampled = list(store.read_jsonl(_samples_name(index)))
            store.write_jsonl(_pick_best(sampled, scorer, configuration.name), _scored_name(index))
            progress.advance(len(sampled))

    kept = [row for index in range(len(batches)) for row in store.read_jsonl(_scored_name(index)) if row["response"]]
    store.write_jsonl(kept, DEMONSTRATIONS_FILE)
    summary = {
        "configuration": configuration.name,
        "n": settings.n,
        "prompts": len(prompts),
        "demonstrations": len(kept),
        "prompts_without_a_response": len(prompts) - len(kept),
        "scores": score_distribution([row["score"] for row in kept]),
        "all_sample_scores": score_distribution(
            [candidate["score"] for row in kept for candidate in row["candidates"]]
        ),
    }
    store.write_json(summary, SUMMARY_FILE)
    return summary


def _pick_best(sampled: list[dict[str, Any]], scorer: Any, configuration_name: str) -> list[dict[str, Any]]:
    """Score every non-empty sample of a batch in one call; each prompt keeps its highest-scoring sample."""
    flat = [(row_index, text) for row_index, row in enumerate(sampled) for text in row["samples"] if text.strip()]
    scores = scorer.score([sampled[row_index]["prompt"] for row_index, _ in flat], [text for _, text in flat]) if flat else []
    candidates: dict[int, list[dict[str, Any]]] = {}
    for (row_index, text), score in zip(flat, scores, strict=True):
        candidates.setdefault(row_index, []).append({"response": text, "score": round(float(score), 6)})
    rows = []
    for row_index, row in enumerate(sampled):
        scored = candidates.get(row_index, [])
        best = max(scored, key=lambda candidate: candidate["score"], default=None)
        rows.append(
            {
                "prompt_id": row["prompt_id"],
                "prompt": row["prompt"],
                "response": best["response"] if best else "",
                "score": best["score"] if best else None,
                "configuration": configuration_name,
                "candidates": scored,
            }
        )
    return rows


def score_distribution(scores: list[float]) -> dict[str, Any]:
    """count, mean, std, min, quartiles, max and a histogram of equal-width bins."""
    if not scores:
        return {"count": 0}
    ordered = sorted(scores)
    low, high = ordered[0], ordered[-1]
    width = (high - low) / HISTOGRAM_BINS or 1.0
    counts = [0] * HISTOGRAM_BINS
    for score in ordered:
        counts[min(HISTOGRAM_BINS - 1, int((score - low) / width))] += 1
    quartiles = statistics.quantiles(ordered, n=4) if len(ordered) > 1 else [low, low, low]
    return {
        "count": len(ordered),
        "mean": round(statistics.fmean(ordered), 4),
        "std": round(statistics.pstdev(ordered), 4),
        "min": round(low, 4),
        "q1": round(quartiles[0], 4),
        "median": round(quartiles[1], 4),
        "q3": round(quartiles[2], 4),
        "max": round(high, 4),
        "histogram": [
            {"low": round(low + bin_index * width, 4), "high": round(low + (bin_index + 1) * width, 4), "count": count}
            for bin_index, count in enumerate(counts)
        ],
    }


def _default_scorer(config: AlmostConfig) -> ScorerFactory:
    def load(model_dir: Path) -> Any:
        import torch

        from pipelines.training.reward import RewardScorer

        device = config.reward.training.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        return RewardScorer(
            model_dir, device=device, batch_size=config.rmsp.scorer_batch_size, max_length=config.reward.training.max_length
        )

    return load


def _samples_name(index: int) -> str:
    return f"rmsp/samples/batch-{index:06d}.jsonl"


def _scored_name(index: int) -> str:
    return f"rmsp/scored/batch-{index:06d}.jsonl"
