"""AugCon's pure parts: the question-and-split parser, answers and verdicts, ROUGE-L dedup, chunk quotas, config, budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.augcon.answers import parse_answer, parse_judgement
from pipelines.augcon.budget import estimate_budget
from pipelines.augcon.config import AugConConfig, tiny_cpu_preset
from pipelines.augcon.corpus import chunk_text, cst_demonstrations, document_chunks, split_demonstration
from pipelines.augcon.cst import parse_cst
from pipelines.augcon.prompts import FULL_VARIANT, NEGATIVE_VARIANTS, cst_prompt
from pipelines.augcon.rouge import greedy_dedup, rouge_l_f
from pipelines.errors import InvalidConfigError

FEW_SHOT = [
    json.loads(line)
    for line in (Path(__file__).resolve().parents[3] / "webapp/library/demo/fewshot_qa.jsonl").read_text().splitlines()
    if line.strip()
]

WELL_FORMED = "What does pass do?\n\nContext 1: pass is a null operation.\n\nContext 2: It is a placeholder."


@pytest.mark.parametrize(
    ("completion", "question", "context_1", "context_2"),
    [
        (WELL_FORMED, "What does pass do?", "pass is a null operation.", "It is a placeholder."),
        # no blank lines, one line each
        ("Why?\nContext 1: a b c\nContext 2: d e f", "Why?", "a b c", "d e f"),
        # the model repeats the Question label, uses bold labels, lower case, a full-width colon
        (
            "Question: What is x?\n**context 1:** first part\n**Context 2**：second part",
            "What is x?",
            "first part",
            "second part",
        ),
        # trailing text after a separator or a new example is cut off
        ("Q here?\nContext 1: one\nContext 2: two\n---\nContext: next example", "Q here?", "one", "two"),
        ("Q here?\nContext 1: one\nContext 2: two\n\nContext: another", "Q here?", "one", "two"),
        # extra spaces inside labels and fields
        ("  Is it?  \n\nContext  1 :   x  y \n\nContext 2 -  z ", "Is it?", "x y", "z"),
    ],
)
def test_the_parser_accepts_well_formed_and_tolerable_outputs(completion, question, context_1, context_2):
    parsed = parse_cst(completion)
    assert parsed.ok, parsed.error
    assert (parsed.question, parsed.context_1, parsed.context_2) == (question, context_1, context_2)


@pytest.mark.parametrize(
    ("completion", "error"),
    [
        ("", "Context 1"),
        ("What is it? It is a thing.", "Context 1"),
        ("What?\nContext 1: only one part", "Context 2"),
        ("What?\nContext 2: b\nContext 1: a", "Context 2"),
        ("\nContext 1: a\nContext 2: b", "empty question"),
        ("What?\nContext 1: \nContext 2: b", "empty sub-context"),
        ("What?\nContext 1: a\nContext 2:   ", "empty sub-context"),
        ("What?\nContext 1: a\nContext 2: b\nContext 3: c", "more than two"),
        ("What? Context1 a Context2 b", "Context 1"),
    ],
)
def test_the_parser_rejects_malformed_outputs_and_says_why(completion, error):
    parsed = parse_cst(completion)
    assert not parsed.ok
    assert error in parsed.error


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("yes", True),
        ("Yes, it matches.", True),
        ("  no.", False),
        ("No — it is wrong", False),
        ("是", True),
        ("否", False),
        ("Maybe", None),
        ("", None),
        ("The answer is yes", None),
    ],
)
def test_the_judges_reply_is_read_by_its_first_word(reply, verdict):
    assert parse_judgement(reply) is verdict


def test_answers_are_read_after_the_last_answer_label_with_the_reasoning_before_it():
    parsed = parse_answer("Reasoning: the context says so.\nAnswer: Nothing happens.")
    assert (parsed.reasoning, parsed.answer) == ("the context says so.", "Nothing happens.")
    assert parse_answer("Just text.").answer == "Just text."
    assert parse_answer("Answer: a\n**Answer:** b").answer == "b"


def test_rouge_l_f_matches_hand_computed_values():
    assert rouge_l_f("what does pass do", "what does pass do") == 1.0
    assert rouge_l_f("a b c d", "e f g") == 0.0
    # LCS("a b c d", "a c d e") = 3: precision 3/4, recall 3/4
    assert rouge_l_f("a b c d", "a c d e") == pytest.approx(0.75)
    # LCS = 2, lengths 2 and 4: P = 2/4, R = 2/2, F = 2/3
    assert rouge_l_f("a b", "a x b y") == pytest.approx(2 / 3)
    assert rouge_l_f("What, IS pass?", "what is pass") == 1.0
    assert rouge_l_f("你好世界", "你好") == pytest.approx(2 * 1.0 * 0.5 / 1.5)


def test_dedup_keeps_no_two_questions_above_the_threshold_and_respects_the_quota():
    ranked = [
        "What does the pass statement do in Python?",
        "What does the pass statement do in Python code?",
        "When is a default parameter value evaluated?",
        "When is the default parameter value evaluated?",
        "Why use the global statement?",
        "What does break do to the else clause?",
        "How is a lambda body limited?",
    ]
    decisions = greedy_dedup(ranked, threshold=0.7, quota=4)
    kept = [question for question, decision in zip(ranked, decisions, strict=True) if decision.kept]
    assert kept == [ranked[0], ranked[2], ranked[4], ranked[5]]
    for index, first in enumerate(kept):
        for second in kept[index + 1 :]:
            assert rouge_l_f(first, second) <= 0.7
    assert decisions[1].duplicate_of == 0 and decisions[1].rouge > 0.7 and "near duplicate" in decisions[1].reason
    assert "quota" in decisions[6].reason
    everything = greedy_dedup(ranked, threshold=1.0, quota=100)
    assert all(decision.kept for decision in everything)


def test_gen_count_is_one_question_per_35_characters_with_15_percent_over_generation():
    config = AugConConfig()
    assert config.gen_count("x" * 500) == 14
    assert config.question_target("x" * 500) == 17  # ceil(14 * 1.15) = ceil(16.1)
    assert config.gen_count("x" * 34) == 0 and config.question_target("x" * 34) == 0
    scaled = AugConConfig(length_scale=3.0)
    assert (scaled.chunk_characters, scaled.leaf_characters, scaled.characters_per_question) == (1500, 60, 105)
    assert scaled.gen_count("x" * 500) == 4


def test_chunks_pack_sentences_up_to_max_length_and_skip_short_paragraphs():
    sentence = "This sentence has exactly forty-four chars. "
    text = "Short line.\n" + sentence * 30 + "\n" + "word " * 200
    chunks = chunk_text(text, max_length=200, min_paragraph_length=100)
    assert chunks and all(len(chunk) <= 200 for chunk in chunks)
    assert not any(chunk.startswith("Short line") for chunk in chunks)
    assert sum(chunk.count("forty-four") for chunk in chunks) == 30  # no sentence lost or repeated
    document = {"document_id": "d1", "text": text}
    config = AugConConfig(max_length=200, max_chunks_per_document=2)
    roots = document_chunks(document, config)
    assert [root.chunk_id for root in roots] == ["d1-c000", "d1-c001"]
    assert all(root.gen_count == len(root.text) // 35 for root in roots)


def test_split_demonstrations_come_from_the_qa_set():
    demonstrations = cst_demonstrations(FEW_SHOT, 3)
    assert len(demonstrations) == 3
    for demonstration, example in zip(demonstrations, FEW_SHOT, strict=False):
        assert demonstration.question == example["question"]
        assert f"{demonstration.context_1} {demonstration.context_2}" == demonstration.context
    assert split_demonstration({"context": "One sentence only", "question": "q", "answer": "a"}) is None
    given = split_demonstration(
        {"context": "A. B.", "question": "q?", "answer": "a", "context_1": "A!", "context_2": "B!"}
    )
    assert (given.context_1, given.context_2) == ("A!", "B!")


def test_the_weaker_prompts_differ_from_the_full_one_as_in_the_paper():
    demonstrations = cst_demonstrations(FEW_SHOT, 3)
    full = cst_prompt("CTX", demonstrations, FULL_VARIANT)
    assert full.endswith("Context: CTX\n\nQuestion: ") and full.count("Context 1:") == 4  # format + 3 demos
    short, one_shot, short_one_shot = (cst_prompt("CTX", demonstrations, variant) for variant in NEGATIVE_VARIANTS)
    assert short.count("Context 1:") == 4 and "divide the entire context" not in short
    assert one_shot.count("Context 1:") == 2 and "divide the entire context" in one_shot
    assert short_one_shot.count("Context 1:") == 2 and "divide the entire context" not in short_one_shot


def test_config_defaults_are_the_papers_and_bad_values_are_refused():
    config = AugConConfig()
    assert (config.max_length, config.min_length, config.character_per_piece) == (500, 20, 35)
    assert (config.over_generation, config.max_attempts, config.question_temperature) == (1.15, 4, 0.85)
    assert (config.rouge_threshold, config.rouge_tokenizer, config.max_bootstrapped_demos) == (0.7, "words", 3)
    # Answers at DSPy's default temperature 0 (the paper's ChainOfThought); 0.2 is the paper's judge's.
    assert (config.answer_temperature, config.judge_temperature) == (0.0, 0.2)
    scorer = config.scorer
    assert (scorer.num_epochs, scorer.per_device_batch_size, scorer.weight_decay, scorer.learning_rate) == (
        4.0,
        4,
        0.01,
        5e-5,
    )
    assert scorer.trainer_overrides == {"warmup_steps": 50} and (scorer.lora.r, scorer.lora.alpha) == (32, 32)
    assert AugConConfig.from_dict(config.to_dict()) == config
    assert AugConConfig.from_dict(tiny_cpu_preset(config).to_dict()) == tiny_cpu_preset(config)
    with pytest.raises(InvalidConfigError, match="min_length"):
        AugConConfig(min_length=600)
    with pytest.raises(InvalidConfigError, match="rouge_threshold"):
        AugConConfig(rouge_threshold=0)
    with pytest.raises(InvalidConfigError, match="unknown AugCon config field"):
        AugConConfig.from_dict({"temperature": 1})
    with pytest.raises(InvalidConfigError, match="learning_rate"):
        AugConConfig.from_dict({"scorer": {"learning_rate": 1.0}})


def test_hard_wrapped_paragraphs_separated_by_blank_lines_are_joined_before_chunking():
    wrapped = "\n".join(["The for statement iterates over the elements of a sequence,"] * 6)
    text = "Title\n*****\n\n" + wrapped + "\n\n" + wrapped + "\n"
    chunks = chunk_text(text, max_length=2000, min_paragraph_length=300)
    assert len(chunks) == 2 and all(chunk.count("for statement") == 6 for chunk in chunks)
    # One paragraph per line (the paper's articles) still splits at every line.
    assert len(chunk_text(wrapped.replace(",", "." + "x" * 300), max_length=2000, min_paragraph_length=300)) == 6


def test_the_demo_corpus_yields_root_chunks_with_the_tiny_preset():
    from pydoc_data.topics import topics

    from pipelines.augcon.config import tiny_cpu_preset

    config = tiny_cpu_preset(AugConConfig())
    assert config.scorer.gradient_checkpointing  # the demo's scorer training peaked at 7.2 GB without it
    documents = [{"document_id": key, "text": topics[key]} for key in sorted(topics)[:10]]
    assert sum(len(document_chunks(document, config)) for document in documents) >= 10


def test_the_budget_counts_calls_from_the_chunks_and_quotas():
    text = ("The while statement repeats a suite while an expression is true. " * 20).strip()
    config = AugConConfig(max_length=300)
    budget = estimate_budget(config, [text, text], FEW_SHOT)
    chunks = chunk_text(text, max_length=300, min_paragraph_length=100)
    assert budget.chunks == 2 * len(chunks)
    assert budget.question_quota == 2 * sum(len(chunk) // 35 for chunk in chunks)
    assert budget.cst_calls_expected == budget.question_target >= budget.question_quota
    assert budget.cst_calls_worst_case == budget.chunks * 10 * 4
    assert budget.negative_calls == 3 * (budget.question_target // 3)
    assert budget.bootstrap_calls == 2 * len(FEW_SHOT) and budget.answer_calls == budget.question_quota
    assert budget.model_calls_expected == (
        budget.question_target + budget.negative_calls + budget.bootstrap_calls + budget.answer_calls
    )
    assert budget.prompt_tokens_expected > 0 and budget.completion_tokens_at_most >= budget.completion_tokens_expected
