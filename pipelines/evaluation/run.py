"""A win-rate evaluation: answer (or reuse answers), judge both orders, compute the statistics.

Run directory layout (every file appears atomically; a restarted run skips what exists):

    prompts.jsonl                       the prompts, `{"prompt_id", "prompt"}` (the snapshot: pipelines.common.prompts)
    reference_preferences.json          other models' preferences per prompt (instruction difficulty)
    answers/<contestant>.jsonl          each contestant's answer per prompt (model answers come from the cache)
    judgments/<candidate>/batch-*.jsonl finished judge batches (both orders of each prompt)
    rows/<candidate>.jsonl              per-prompt rows: both answers, each order's verdict, lengths
    comparisons.jsonl                   every candidate's rows, the evaluation's dataset
    results.json                        the statistics per candidate; its presence means the run is done

Answers of model contestants live in a shared cache directory keyed by (model, decoding config,
prompt), outside the run, so another evaluation of the same model and decoding reuses them.
"""

from __future__ import annotations

import time
from typing import Any

from pipelines.common.batches import run_in_batches
from pipelines.common.progress import Progress
from pipelines.common.prompts import load_prompts
from pipelines.common.result import ArtifactOutput, PipelineResult
from pipelines.common.store import RunStore
from pipelines.evaluation import stats
from pipelines.evaluation.answers import contestant_answers
from pipelines.evaluation.cache import AnswerCache
from pipelines.evaluation.config import Contestant, EvaluationConfig, EvaluationInputs
from pipelines.evaluation.judge import ORDERS, VERDICT_GRAMMAR, JudgeRequest, judge_batch
from pipelines.evaluation.summary import run_summary
from pipelines.llm.grammar import structured_output_mode
from pipelines.llm.loader import BackendLoader, load_when_needed

REFERENCE_FILE = "reference_preferences.json"
COMPARISONS_FILE = "comparisons.jsonl"
RESULTS_FILE = "results.json"


def run_evaluation(
    config: EvaluationConfig, inputs: EvaluationInputs, backends: BackendLoader, store: RunStore, progress: Progress
) -> PipelineResult:
    """Evaluate every candidate against the baseline; rerunning after a crash or cancel resumes.

    Models are loaded through `backends` only when a stage needs them: a contestant whose answers
    are all cached loads none, and the judge is loaded only if some judge batch is missing. The
    result holds the `comparisons` dataset (every candidate's per-prompt rows) and the run page's
    figures (`pipelines.evaluation.summary`); the full statistics are `results.json` in the run
    directory (`pipelines.evaluation.inspect.evaluation_results`).
    """
    started = time.monotonic()
    prompts = load_prompts(store, allow_conversations=False)
    if inputs.reference_preferences is not None and not store.exists(REFERENCE_FILE):
        store.write_json(dict(inputs.reference_preferences), REFERENCE_FILE)
    references = store.read_json(REFERENCE_FILE) if store.exists(REFERENCE_FILE) else {}
    cache = AnswerCache(inputs.answer_cache_dir)

    generated = reused = 0
    answers: dict[str, list[dict[str, Any]]] = {}
    for contestant in config.contestants:
        answer_file = answers_file(contestant.contestant_id)
        if not store.exists(answer_file):
            rows, made = contestant_answers(contestant, prompts, config, cache, backends, progress)
            store.write_jsonl(rows, answer_file)
            generated += made
            reused += len(rows) - made
        else:
            progress.log(f"answers of {contestant.label} already in the run directory")
        answers[contestant.contestant_id] = list(store.read_jsonl(answer_file))

    judged = 0
    results: dict[str, Any] = {}
    all_rows: list[dict[str, Any]] = []
    for candidate in config.candidates:
        judged += _judge_candidate(config, candidate, prompts, answers, store, progress, backends)
        rows = _per_prompt_rows(config, candidate, prompts, answers, store)
        store.write_jsonl(rows, f"rows/{candidate.contestant_id}.jsonl")
        all_rows.extend(rows)
        progress.stage(f"statistics · {candidate.label}", total=1)
        results[candidate.contestant_id] = candidate_statistics(config, candidate, rows, references)
        progress.metrics(
            {"candidate": candidate.label, "win_rate": results[candidate.contestant_id]["win_rate"]["win_rate"]}
        )
        progress.advance(1)

    comparisons_path = store.write_jsonl(all_rows, COMPARISONS_FILE)
    document = {
        "baseline": {
            "contestant_id": config.baseline.contestant_id,
            "label": config.baseline.label,
            "leaderboard_key": config.baseline.leaderboard_key,
        },
        "prompts": len(prompts),
        "judge_method": config.judge.method,
        "candidates": results,
    }
    store.write_json(document, RESULTS_FILE)
    return PipelineResult(
        artifacts=[ArtifactOutput(name="comparisons", kind="judgments", jsonl_path=comparisons_path)],
        summary=run_summary(
            document,
            answers_generated=generated,
            answers_reused=reused,
            judgments_made=judged,
            seconds=time.monotonic() - started,
        ),
    )


def answers_file(contestant_id: str) -> str:
    """The run directory's file of one contestant's answers, one row per prompt."""
    return f"answers/{contestant_id}.jsonl"


# --- judging -----------------------------------------------------------------------------------


def _judge_candidate(
    config: EvaluationConfig,
    candidate: Contestant,
    prompts: list[dict[str, str]],
    answers: dict[str, list[dict[str, Any]]],
    store: RunStore,
    progress: Progress,
    backends: BackendLoader,
) -> int:
    """Judge every prompt in both orders, batch by batch; returns the judgments made by this call."""
    candidate_answers = {row["prompt_id"]: row["answer"] for row in answers[candidate.contestant_id]}
    baseline_answers = {row["prompt_id"]: row["answer"] for row in answers[config.baseline.contestant_id]}
    requests = [
        JudgeRequest(
            key=row["prompt_id"],
            instruction=row["prompt"],
            candidate_answer=candidate_answers[row["prompt_id"]],
            baseline_answer=baseline_answers[row["prompt_id"]],
            order=order,
        )
        for row in prompts
        for order in ORDERS
    ]
    backend = load_when_needed(backends, config.judge_spec)
    logged: list[bool] = []

    def judge(index: int, batch: list[JudgeRequest]) -> list[dict[str, Any]]:
        if config.judge.method == "text" and not logged:
            grammar = VERDICT_GRAMMAR if config.judge.constrained_output else None
            progress.log(f"judge: structured output: {structured_output_mode(backend(), grammar)}")
            logged.append(True)
        results = judge_batch(config.judge, backend(), batch, seed=config.seed + index)
        failures = sum(1 for result in results if result.verdict is None)
        if failures:
            progress.log(
                f"judge: {failures} of {len(batch)} replies in batch {index} unreadable after {config.judge.retries} retries"
            )
        return [result.to_dict() for result in results]

    batched = run_in_batches(
        requests,
        config.judge_batch_size,
        judge,
        store=store,
        progress=progress,
        stage=f"judge · {candidate.label}",
        batch_name=lambda index: _judge_batch_name(candidate, index),
    )
    return batched.items_generated


def _judge_batch_name(candidate: Contestant, index: int) -> str:
    return f"judgments/{candidate.contestant_id}/batch-{index:06d}.jsonl"


def _per_prompt_rows(
    config: EvaluationConfig,
    candidate: Contestant,
    prompts: list[dict[str, str]],
    answers: dict[str, list[dict[str, Any]]],
    store: RunStore,
) -> list[dict[str, Any]]:
    """One row per prompt: both answers, their lengths, each order's verdict and the prompt's preference."""
    judgments: dict[tuple[str, str], dict[str, Any]] = {}
    batch_count = -(-2 * len(prompts) // config.judge_batch_size)
    for index in range(batch_count):
        for result in store.read_jsonl(_judge_batch_name(candidate, index)):
            judgments[(result["key"], result["order"])] = result
    candidate_answers = {row["prompt_id"]: row for row in answers[candidate.contestant_id]}
    baseline_answers = {row["prompt_id"]: row for row in answers[config.baseline.contestant_id]}
    rows = []
    for prompt in prompts:
        prompt_id = prompt["prompt_id"]
        first, second = judgments[(prompt_id, "candidate_first")], judgments[(prompt_id, "baseline_first")]
        outcomes = [result["outcome"] for result in (first, second) if result["outcome"] is not None]
        order_scores = [_judgment_preference(result) for result in (first, second)]
        scores = [score for score in order_scores if score is not None]
        candidate_answer = candidate_answers[prompt_id]["answer"]
        baseline_answer = baseline_answers[prompt_id]["answer"]
        rows.append(
            {
                "prompt_id": prompt_id,
                "prompt": prompt["prompt"],
                "candidate": candidate.label,
                "candidate_id": candidate.contestant_id,
                "candidate_key": candidate.leaderboard_key,
                "baseline": config.baseline.label,
                "baseline_key": config.baseline.leaderboard_key,
                "candidate_answer": candidate_answer,
                "baseline_answer": baseline_answer,
                "candidate_chars": len(candidate_answer),
                "baseline_chars": len(baseline_answer),
                # Verdicts as the judge gave them (A = first shown) and from the candidate's side.
                "verdict_candidate_first": first["verdict"],
                "verdict_baseline_first": second["verdict"],
                "outcome_candidate_first": first["outcome"],
                "outcome_baseline_first": second["outcome"],
                "judge_replies_candidate_first": first["replies"],
                "judge_replies_baseline_first": second["replies"],
                "judge_attempts": first["attempts"] + second["attempts"],
                "judge_method": first.get("method", "text"),
                # Each order's score for the candidate (1/0.5/0 from text; a probability from log-probs).
                "preference_candidate_first": order_scores[0],
                "preference_baseline_first": order_scores[1],
                "verdict_probabilities_candidate_first": first.get("verdict_probabilities"),
                "verdict_probabilities_baseline_first": second.get("verdict_probabilities"),
                "unparsed_orders": 2 - len(scores),
                "preference": sum(scores) / len(scores) if scores else None,
                # Read in one order only: that order's position bias is not cancelled by the other.
                "single_order": len(scores) == 1,
                "position_disagreement": len(outcomes) == 2 and outcomes[0] != outcomes[1],
            }
        )
    return rows


def _judgment_preference(result: dict[str, Any]) -> float | None:
    """One judgment's score for the candidate: the log-prob judge's probability, else 1/0.5/0 from the outcome."""
    if result.get("candidate_preference") is not None:
        return float(result["candidate_preference"])
    return stats.judgment_score(result["outcome"]) if result["outcome"] is not None else None


# --- statistics --------------------------------------------------------------------------------


def candidate_statistics(
    config: EvaluationConfig, candidate: Contestant, rows: list[dict[str, Any]], references: dict[str, list[float]]
) -> dict[str, Any]:
    """Win rate, LC win rate, lengths and the judge's bookkeeping for one candidate's rows."""
    judged = [row for row in rows if row["preference"] is not None]
    preferences = [row["preference"] for row in judged]
    singles = [
        score
        for row in judged
        for score in (_order_score(row, "candidate_first"), _order_score(row, "baseline_first"))
        if score is not None
    ]
    candidate_lengths = [row["candidate_chars"] for row in judged]
    baseline_lengths = [row["baseline_chars"] for row in judged]
    win_rate = stats.win_rate_summary(
        preferences,
        judgment_scores=singles,
        bootstrap_rounds=config.bootstrap_rounds,
        seed=config.seed,
        confidence=config.confidence,
    )
    difficulty = None
    if references and any(references.get(row["prompt"]) for row in judged):
        difficulty = stats.instruction_difficulty_from_preferences(
            [references.get(row["prompt"], []) for row in judged]
        )
    length_controlled = stats.length_controlled_win_rate(
        preferences,
        candidate_lengths,
        baseline_lengths,
        instruction_difficulty=difficulty,
        bootstrap_rounds=config.lc_bootstrap_rounds,
        seed=config.seed,
        confidence=config.confidence,
    )
    verdicts = [row[f"verdict_{order}"] for row in rows for order in ("candidate_first", "baseline_first")]
    parsed = [verdict for verdict in verdicts if verdict is not None]
    single_order = [row for row in judged if row.get("single_order")]
    both_orders = [row["preference"] for row in judged if not row.get("single_order")]
    return {
        "label": candidate.label,
        "leaderboard_key": candidate.leaderboard_key,
        "judge_method": config.judge.method,
        "win_rate": win_rate.to_dict(),
        # Prompts read in one order only enter with that order's position bias: counted and flagged,
        # and the win rate over the prompts read in both orders is shown beside the headline.
        "single_order_prompts": len(single_order),
        "win_rate_both_orders": stats.win_rate_summary(
            both_orders, bootstrap_rounds=config.bootstrap_rounds, seed=config.seed, confidence=config.confidence
        ).to_dict(),
        "position_bias": stats.position_bias(parsed),
        "length_controlled": length_controlled.to_dict(),
        "lengths": stats.length_summary(candidate_lengths, baseline_lengths),
        "prompts": len(rows),
        "judged_prompts": len(judged),
        "unjudged_prompts": len(rows) - len(judged),
        "judgments": len(verdicts),
        "parse_failures": len(verdicts) - len(parsed),
        "retried_judgments": sum(
            1
            for row in rows
            for key in ("judge_replies_candidate_first", "judge_replies_baseline_first")
            if len(row[key]) > 1
        ),
        "judge_calls": sum(row["judge_attempts"] for row in rows),
        "position_disagreements": sum(1 for row in rows if row["position_disagreement"]),
        "first_position_share": round(sum(1 for v in parsed if v == "A") / len(parsed), 6) if parsed else None,
        "tie_share": round(sum(1 for v in parsed if v == "tie") / len(parsed), 6) if parsed else None,
    }


def _order_score(row: dict[str, Any], order: str) -> float | None:
    """A per-prompt row's score for one order (rows written before per-order scores fall back to the outcome)."""
    if f"preference_{order}" in row:
        return row[f"preference_{order}"]
    outcome = row[f"outcome_{order}"]
    return stats.judgment_score(outcome) if outcome is not None else None
