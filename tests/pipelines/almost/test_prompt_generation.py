"""Prompt generation (pg): the instruction line is honoured, no prompt repeats a seed or another, rounds resume."""
from __future__ import annotations

from pipelines.almost.config import PromptGenerationConfig
from pipelines.almost.dedup import NoveltyIndex, normalized, rouge_l, words
from pipelines.almost.prompt_generation import generate_prompts
from pipelines.almost.prompts import AlmostInputs, extract_query, prompt_generation_text
from pipelines.common.progress import RecordingProgress
from pipelines.common.store import RunStore

INSTRUCTION = "### Instruction: Please generate initial query to start conversation with bot."
SEEDS = [
    "How do I reverse a list in Python?",
    "What is the difference between a list and a tuple?",
    "Can you suggest a name for a small bakery?",
    "Why is the sky blue during the day?",
    "How many minutes should I boil an egg?",
]


def test_the_few_shot_text_starts_with_the_instruction_and_ends_asking_for_a_query():
    text = prompt_generation_text(INSTRUCTION, SEEDS[:2])
    assert text == f"{INSTRUCTION}\n\nQuery: {SEEDS[0]}\nQuery: {SEEDS[1]}\nQuery:"
    assert prompt_generation_text("", SEEDS[:1]) == f"Query: {SEEDS[0]}\nQuery:"
    assert extract_query(" What is a set?\nQuery: another one") == "What is a set?"
    assert extract_query(" Tell me a joke. query: and more") == "Tell me a joke."


def test_near_duplicates_are_caught_by_rouge_l_and_by_embeddings(embedder):
    assert rouge_l(words("how do I reverse a list"), words("how do I reverse a list")) == 1.0
    index = NoveltyIndex(rouge_l_threshold=0.5, embedding_threshold=0.8, embedder=embedder)
    index.add(SEEDS)
    assert index.rejection("how do i reverse a list in python") == ("exact", 1.0)
    assert index.rejection("How would I reverse a Python list?")[0] == "rouge_l"
    paraphrase = index.rejection("What would be a nice name for my new bakery?")
    assert paraphrase is not None and paraphrase[0] == "embedding"
    assert index.rejection("Which mountains are the tallest in Europe?") is None


def test_pg_honours_the_instruction_keeps_no_duplicates_and_resumes_by_round(tmp_path, backend_pool, tiny_spec, embedder):
    config = PromptGenerationConfig(num_generation=4, in_context=3, max_tokens=12, batch_size=2, min_chars=0, seed=5)
    inputs = AlmostInputs(seed_prompts=SEEDS, instruction=INSTRUCTION)
    store = RunStore(tmp_path)
    prompts = generate_prompts(config, inputs, backend_pool.load(tiny_spec), store, RecordingProgress(), embedder_loader=lambda: embedder)

    seen = backend_pool.load(tiny_spec).prompts
    assert seen and all(text.startswith(f"{INSTRUCTION}\n\nQuery: ") and text.endswith("\nQuery:") for text in seen)
    assert all(text.count("Query:") == 4 for text in seen)  # three in-context examples, then the open slot
    assert len(prompts) == 4
    keys = [normalized(row["prompt"]) for row in prompts]
    assert len(set(keys)) == len(keys) and not set(keys) & {normalized(seed) for seed in SEEDS}
    assert [row["prompt_id"] for row in prompts] == ["g000000", "g000001", "g000002", "g000003"]

    # Lose the final file and the last round: a rerun replays the earlier rounds and redoes only that one.
    rounds = sorted(store.path("pg", "rounds").iterdir())
    rounds[-1].unlink()
    store.path("pg", "prompts.jsonl").unlink()
    calls_before = backend_pool.load(tiny_spec).calls
    again = generate_prompts(config, inputs, backend_pool.load(tiny_spec), store, RecordingProgress(), embedder_loader=lambda: embedder)
    assert again == prompts
    assert backend_pool.load(tiny_spec).calls - calls_before == 1


def test_a_model_that_repeats_itself_never_gets_a_duplicate_through(tmp_path, backend_pool, tiny_spec):
    # One seed shown each time and greedy decoding: every candidate is the same text.
    config = PromptGenerationConfig(
        num_generation=3, in_context=1, temperature=0.0, max_tokens=10, batch_size=2, min_chars=0,
        max_candidates_per_prompt=2, embedding_threshold=None, rouge_l_threshold=None,
    )
    inputs = AlmostInputs(seed_prompts=[SEEDS[0]])
    progress = RecordingProgress()
    prompts = generate_prompts(config, inputs, backend_pool.load(tiny_spec), RunStore(tmp_path), progress)
    assert len(prompts) == 1
    summary = RunStore(tmp_path).read_json("pg/summary.json")
    assert summary["candidates"] == 6 and summary["rejected"] == {"exact": 5}
    assert any("stopped at 1 of 3 prompts" in message for message in progress.messages)
    # Without an instruction line, the text the model continues starts with the first example.
    assert all(text.startswith("Query: ") for text in backend_pool.load(tiny_spec).prompts)
