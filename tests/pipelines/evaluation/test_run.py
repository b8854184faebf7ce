"""A whole evaluation on the tiny random model: answers through the cache, judging, resume, human-judging pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.common.progress import RecordingProgress
from pipelines.common.store import RunStore
from pipelines.errors import InvalidInputError, RunCancelled
from pipelines.evaluation import Contestant, EvaluationConfig, EvaluationInputs, JudgeConfig, run_evaluation
from pipelines.evaluation.human import annotation_pairs
from pipelines.evaluation.inspect import evaluation_results
from pipelines.llm.types import SamplingParams

PROMPTS = ["What is 2 + 2?", "Name a colour.", "Say hello.", "Count to three."]


class OneModelAtATime:
    """A `BackendLoader` that keeps one model loaded (as a worker does) and records the role of each load."""

    def __init__(self) -> None:
        self.loaded: list[str] = []
        self.current: dict[str, object] = {}

    def load(self, spec: dict, *, fresh: bool = False):  # type: ignore[no-untyped-def]
        from pipelines.llm.transformers_backend import TransformersBackend

        key = json.dumps(spec, sort_keys=True)
        if key not in self.current:
            self.release_all()
            self.current[key] = TransformersBackend(spec["path"], device="cpu")
            self.loaded.append(spec["role"])
        return self.current[key]

    def release_all(self) -> None:
        for backend in self.current.values():
            backend.close()
        self.current.clear()

    def model_directory(self, spec: dict) -> Path:
        return Path(spec["path"])


@pytest.fixture
def backend_loader():
    loader = OneModelAtATime()
    yield loader
    loader.release_all()


def _inputs(cache: Path) -> EvaluationInputs:
    return EvaluationInputs(answer_cache_dir=cache)


def _store(root: Path, prompts: list[str]) -> RunStore:
    store = RunStore(root)
    store.write_jsonl(({"prompt_id": f"p{i}", "prompt": p} for i, p in enumerate(prompts)), "prompts.jsonl")
    return store


def _config(
    tiny_model_dir: Path, *, baseline_temperature: float = 0.0, retries: int = 1, method: str = "text"
) -> EvaluationConfig:
    def model(contestant_id: str, label: str, temperature: float) -> Contestant:
        return Contestant(
            contestant_id,
            label,
            kind="model",
            backend_spec={"kind": "transformers", "source": "local", "path": str(tiny_model_dir), "role": "answers"},
            sampling=SamplingParams(temperature=temperature, max_tokens=6, seed=1),
            leaderboard_key=f"tiny@{temperature}",
        )

    return EvaluationConfig(
        candidates=(model("c0", "tiny T=1.0", 1.0),),
        baseline=model("baseline", f"tiny T={baseline_temperature}", baseline_temperature),
        judge_spec={"kind": "transformers", "source": "local", "path": str(tiny_model_dir), "role": "judge"},
        judge=JudgeConfig(sampling=SamplingParams(temperature=0.0, max_tokens=3), retries=retries, method=method),
        answer_batch_size=2,
        judge_batch_size=4,
        bootstrap_rounds=100,
        lc_bootstrap_rounds=5,
    )


def test_tiny_model_evaluation_accounts_for_every_judgment_whether_parsed_or_not(
    tmp_path, tiny_model_dir, backend_loader
):
    store = _store(tmp_path / "run", PROMPTS)
    result = run_evaluation(
        _config(tiny_model_dir), _inputs(tmp_path / "cache"), backend_loader, store, RecordingProgress()
    )
    statistics = evaluation_results(store)["candidates"]["c0"]
    rows = list(store.read_jsonl("rows/c0.jsonl"))
    assert len(rows) == len(PROMPTS) and result.summary["answers_generated"] == 2 * len(PROMPTS)
    unparsed = sum(row["unparsed_orders"] for row in rows)
    assert statistics["parse_failures"] == unparsed
    assert statistics["judgments"] == 2 * len(PROMPTS)
    assert statistics["judged_prompts"] + statistics["unjudged_prompts"] == len(PROMPTS)
    assert statistics["judge_calls"] >= 2 * len(PROMPTS) + unparsed, "every unparsed reply was retried"
    assert all(row["candidate_chars"] == len(row["candidate_answer"]) for row in rows)
    (comparisons_output,) = result.artifacts
    assert (comparisons_output.name, comparisons_output.kind) == ("comparisons", "judgments")
    comparisons = [json.loads(line) for line in comparisons_output.jsonl_path.read_text().splitlines()]
    assert result.summary["tiny T=1.0: judge method"] == "text"
    assert result.summary["tiny T=1.0: parse failures"] == f"{unparsed} of {2 * len(PROMPTS)}"
    assert [row["prompt_id"] for row in comparisons] == [f"p{i}" for i in range(len(PROMPTS))]

    pairs = list(annotation_pairs(rows))
    assert set(pairs[0]) >= {"prompt", "response_a", "response_b", "model_a", "model_b", "judge_verdict"}
    assert pairs[0]["response_a"] == rows[0]["candidate_answer"] and pairs[0]["model_b"] == "tiny T=0.0"


def test_the_logprob_judge_reads_every_verdict_even_from_a_random_model(tmp_path, tiny_model_dir, backend_loader):
    store = _store(tmp_path / "run", PROMPTS)
    config = _config(tiny_model_dir, method="logprob")
    run_evaluation(config, _inputs(tmp_path / "cache"), backend_loader, store, RecordingProgress())
    statistics = evaluation_results(store)["candidates"]["c0"]
    rows = list(store.read_jsonl("rows/c0.jsonl"))
    assert statistics["judge_method"] == "logprob"
    assert statistics["parse_failures"] == 0 and statistics["judged_prompts"] == len(PROMPTS)
    assert statistics["single_order_prompts"] == 0
    for row in rows:
        for order in ("candidate_first", "baseline_first"):
            probabilities = row[f"verdict_probabilities_{order}"]
            assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
            assert 0 < row[f"preference_{order}"] < 1, "a probability, not a 0/1 verdict"
    judgments = [json.loads(line) for line in (store.root / "judgments/c0/batch-000000.jsonl").read_text().splitlines()]
    assert all(j["method"] == "logprob" and j["attempts"] == 1 and 0 < j["verdict_mass"] <= 1 for j in judgments)


def test_a_second_evaluation_reuses_cached_answers_and_answers_only_new_prompts(
    tmp_path, tiny_model_dir, backend_loader
):
    cache = tmp_path / "cache"
    first = run_evaluation(
        _config(tiny_model_dir),
        _inputs(cache),
        backend_loader,
        _store(tmp_path / "one", PROMPTS[:3]),
        RecordingProgress(),
    )
    assert first.summary["answers_generated"] == 6
    backend_loader.loaded.clear()
    second_store = _store(tmp_path / "two", PROMPTS)
    second = run_evaluation(_config(tiny_model_dir), _inputs(cache), backend_loader, second_store, RecordingProgress())
    assert (second.summary["answers_generated"], second.summary["answers_reused"]) == (2, 6), (
        "only the new prompt is answered, by both"
    )
    answers = list(second_store.read_jsonl("answers/c0.jsonl"))
    assert [row["from_cache"] for row in answers] == [True, True, True, False]
    first_answers = {row["prompt"]: row["answer"] for row in RunStore(tmp_path / "one").read_jsonl("answers/c0.jsonl")}
    assert all(first_answers[row["prompt"]] == row["answer"] for row in answers[:3])

    # A different decoding config is a different cache entry.
    third = run_evaluation(
        _config(tiny_model_dir, baseline_temperature=0.5),
        _inputs(cache),
        backend_loader,
        _store(tmp_path / "three", PROMPTS),
        RecordingProgress(),
    )
    assert (third.summary["answers_generated"], third.summary["answers_reused"]) == (4, 4)


def test_a_cancelled_evaluation_resumes_without_redoing_finished_judge_batches(
    tmp_path, tiny_model_dir, backend_loader
):
    store = _store(tmp_path / "run", PROMPTS)
    config = _config(tiny_model_dir, retries=0)
    # 8 answers (two contestants x 4 prompts), then the first judge batch of 4; cancel before the second.
    with pytest.raises(RunCancelled):
        run_evaluation(config, _inputs(tmp_path / "cache"), backend_loader, store, RecordingProgress(cancel_after=4))
    assert store.exists("judgments/c0/batch-000000.jsonl") and not store.exists("judgments/c0/batch-000001.jsonl")
    first_batch = store.path("judgments/c0/batch-000000.jsonl").read_text()
    result = run_evaluation(config, _inputs(tmp_path / "cache"), backend_loader, store, RecordingProgress())
    assert result.summary["judgments_made_this_attempt"] == 4 and result.summary["answers_generated"] == 0
    assert store.path("judgments/c0/batch-000000.jsonl").read_text() == first_batch
    assert store.exists("results.json")


def test_an_answers_file_missing_a_prompt_is_refused_naming_the_file_and_prompt(
    tmp_path, tiny_model_dir, backend_loader
):
    answers = tmp_path / "aft.jsonl"
    answers.write_text(json.dumps({"query": [{"role": "user", "content": PROMPTS[0]}], "response": "4"}) + "\n")
    config = _config(tiny_model_dir)
    config = EvaluationConfig.from_dict(
        {
            **config.to_dict(),
            "candidates": [Contestant("c0", "aft", kind="answers", answers_path=str(answers)).to_dict()],
        }
    )
    with pytest.raises(InvalidInputError, match=r"aft\.jsonl.*1 of 2 prompts have no answer.*Name a colour"):
        run_evaluation(
            config,
            _inputs(tmp_path / "cache"),
            backend_loader,
            _store(tmp_path / "run", PROMPTS[:2]),
            RecordingProgress(),
        )
