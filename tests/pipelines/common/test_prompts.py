"""The prompt snapshot: written once so a resume sees the same prompts; read with named errors."""

from __future__ import annotations

import pytest

from pipelines.common.prompts import PROMPTS_FILE, load_prompts, numbered_prompts, write_prompts
from pipelines.common.store import RunStore
from pipelines.errors import InvalidInputError


def test_the_snapshot_is_written_once_so_a_resume_keeps_the_first_prompts(tmp_path) -> None:
    store = RunStore(tmp_path)
    write_prompts(store, numbered_prompts(["first?", "second?"]))
    write_prompts(store, numbered_prompts(["changed since?"]))
    assert load_prompts(store) == [
        {"prompt_id": "p000000", "prompt": "first?"},
        {"prompt_id": "p000001", "prompt": "second?"},
    ]


def test_only_the_id_and_prompt_go_into_the_snapshot(tmp_path) -> None:
    store = RunStore(tmp_path)
    write_prompts(store, [{"prompt_id": "a", "prompt": "q", "real": "answer"}])
    assert list(store.read_jsonl(PROMPTS_FILE)) == [{"prompt_id": "a", "prompt": "q"}]


def test_a_conversation_ending_with_the_user_is_a_prompt_unless_text_is_required(tmp_path) -> None:
    store = RunStore(tmp_path)
    conversation = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "and?"},
    ]
    write_prompts(store, [{"prompt_id": "a", "prompt": conversation}])
    assert load_prompts(store)[0]["prompt"] == conversation
    with pytest.raises(
        InvalidInputError, match="prompts.jsonl, line 1: needs `prompt_id` and a non-empty text `prompt`"
    ):
        load_prompts(store, allow_conversations=False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"prompt_id": "a", "prompt": "x"}\n{"prompt_id": "a", "prompt": "y"}\n', "line 2: duplicate prompt_id 'a'"),
        ('{"prompt_id": "", "prompt": "x"}\n', "line 1: needs `prompt_id`"),
        ('{"prompt_id": "a", "prompt": [{"role": "assistant", "content": "x"}]}\n', "line 1: needs `prompt_id`"),
        ('{"prompt_id": "a", "prompt": "x"}\n[1]\n', "line 2: expected a JSON object, found list"),
        ("\n\n", "no prompts to answer"),
    ],
)
def test_a_bad_snapshot_names_the_line_and_the_problem(tmp_path, text, message) -> None:
    store = RunStore(tmp_path)
    store.path(PROMPTS_FILE).write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInputError, match=message):
        load_prompts(store)


def test_a_missing_snapshot_is_an_input_error(tmp_path) -> None:
    with pytest.raises(InvalidInputError, match="prompts.jsonl: missing from the run directory"):
        load_prompts(RunStore(tmp_path))
