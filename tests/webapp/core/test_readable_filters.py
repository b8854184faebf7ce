"""Configs read as indented JSON or YAML in their own key order, and summary keys read as words."""

from __future__ import annotations

import html

import pytest
import yaml
from django.test import Client

from tests.fixtures.generate_runs import prompt_set_of, small_generate_config
from webapp.core.templatetags.readable import key_words, readable_json, readable_yaml
from webapp.runs import services
from webapp.runs.models import PipelineRun


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("questions_kept", "Questions kept"),
        ("sft_rows", "SFT rows"),
        ("model_id", "Model ID"),
        ("win-rate", "Win rate"),
        ("already Words", "Already Words"),
    ],
)
def test_summary_keys_read_as_words(key: str, words: str):
    assert key_words(key) == words


def test_configs_are_indented_and_keep_their_key_order():
    config = {"zeta": 1, "alpha": {"nested_b": [1, 2], "nested_a": "é"}, "middle": None}
    shown_json = readable_json(config)
    assert shown_json.splitlines()[1] == '  "zeta": 1,'
    assert shown_json.index('"zeta"') < shown_json.index('"alpha"') < shown_json.index('"middle"')
    assert shown_json.index('"nested_b"') < shown_json.index('"nested_a"')
    assert '"é"' in shown_json
    shown_yaml = readable_yaml(config)
    assert shown_yaml.splitlines() == [
        "zeta: 1",
        "alpha:",
        "  nested_b:",
        "  - 1",
        "  - 2",
        "  nested_a: é",
        "middle: null",
    ]
    assert yaml.safe_load(shown_yaml) == config


@pytest.mark.django_db
def test_the_run_page_shows_the_config_as_yaml_and_summary_keys_as_words_never_none(
    researcher, researcher_client: Client
):
    config = small_generate_config(prompt_set_of(2, "two"), n=2, max_tokens=8)
    run = services.run_create(user=researcher, kind="generate", config=config)
    PipelineRun.objects.filter(pk=run.pk).update(summary={"questions_kept": 3, "sft_rows": 2, "eval_loss": None})
    page = html.unescape(researcher_client.get(run.get_absolute_url()).content.decode())
    assert "<th>Questions kept</th>" in page
    assert "<th>SFT rows</th>" in page
    assert "questions_kept" not in page
    assert '<th>Eval loss</th><td class="num">—</td>' in page
    assert ">None<" not in page
    shown_config = page.split('<pre id="run-config" class="readable-config">')[1].split("</pre>")[0]
    assert yaml.safe_load(shown_config) == run.config
    assert "\n  " in shown_config  # nested settings are indented, one a line


def test_a_flattened_nested_key_reads_part_by_part_and_keeps_acronyms():
    assert key_words("lengths/rows_cut") == "Lengths: rows cut"
    assert key_words("lengths/sft_rows") == "Lengths: SFT rows"
