"""The `refinery` command against the live test server: login, errors a user can act on, and the run commands."""

from __future__ import annotations

import json
import stat

import pytest

from refinery_client.cli import parse_assignments
from tests.fixtures.generate_runs import prompt_set_of, small_generate_config
from webapp.runs import services
from webapp.runs.models import PipelineRun


def test_set_values_are_json_when_they_parse_and_text_otherwise():
    assert parse_assignments(["n=3", "temperature=0.5", "seed=null", "system_prompt=be brief", "flags=[1, 2]"]) == {
        "n": 3,
        "temperature": 0.5,
        "seed": None,
        "system_prompt": "be brief",
        "flags": [1, 2],
    }


def test_login_checks_the_token_and_saves_it_for_this_user_only(api_site, refinery, client_config):
    result = refinery("login", "--url", api_site.url, "--token", api_site.token)
    assert result.status == 0, result.stderr
    assert stat.S_IMODE(client_config.stat().st_mode) == 0o600
    assert json.loads(client_config.read_text()) == {"url": api_site.url, "token": api_site.token}
    assert refinery("runs", "list").status == 0


def test_a_wrong_token_is_refused_at_login_with_how_to_log_in(api_site, refinery, client_config):
    result = refinery("login", "--url", api_site.url, "--token", "rfy_not-a-real-token")
    assert result.status == 3
    assert "refinery login --url URL --token TOKEN" in result.stderr and "HTTP 401" in result.stderr
    assert not client_config.exists()


def test_without_a_login_every_command_says_how_to_log_in(refinery):
    result = refinery("runs", "list")
    assert result.status == 3 and "REFINERY_URL" in result.stderr and "refinery login" in result.stderr


def test_environment_variables_stand_in_for_the_login(api_site, refinery, monkeypatch):
    monkeypatch.setenv("REFINERY_URL", api_site.url)
    monkeypatch.setenv("REFINERY_TOKEN", api_site.token)
    assert refinery("runs", "kinds").status == 0


def test_a_refused_field_is_printed_by_name_and_nothing_is_queued(api_site, refinery):
    prompt_set = prompt_set_of(2, "two prompts")
    result = refinery(
        "--url", api_site.url, "--token", api_site.token,
        "runs", "create", "generate", "--set", f"prompt_set={prompt_set.pk}", "--set", "n=0", "--set", "max_tokens=4",
    )  # fmt: skip
    assert result.status == 2
    assert "\n  n: " in result.stderr and "HTTP 422" in result.stderr
    assert not PipelineRun.objects.exists()
    typo = refinery(
        "--url", api_site.url, "--token", api_site.token,
        "runs", "create", "generate", "--set", f"prompt_set={prompt_set.pk}", "--set", "max_token=4",
    )  # fmt: skip
    assert typo.status == 2 and "\n  max_token: generate runs have no field max_token" in typo.stderr
    assert not PipelineRun.objects.exists()
    malformed = refinery("--url", api_site.url, "--token", api_site.token, "runs", "create", "generate", "--set", "n")
    assert malformed.status == 2 and "FIELD=VALUE" in malformed.stderr


def test_runs_list_filters_show_cancel_and_log(api_site, refinery):
    config = small_generate_config(prompt_set_of(2, "two"))
    queued = services.run_create(user=api_site.user, kind="generate", config=config, name="waiting one")
    failed = services.run_create(user=api_site.user, kind="generate", config=config, name="broken one")
    services.run_mark_started(run=failed, worker_name="test")
    services.run_mark_failed(run_id=failed.pk, error="model weights missing")
    site = ("--url", api_site.url, "--token", api_site.token)

    listed = refinery(*site, "runs", "list", "--status", "queued", "--kind", "generate", "--json")
    assert [run["id"] for run in json.loads(listed.stdout)["items"]] == [queued.pk]
    assert refinery(*site, "runs", "list", "--kind", "spin", "--json").stdout.count('"id"') == 0

    shown = refinery(*site, "runs", "show", str(failed.pk))
    assert shown.status == 0 and "status:   failed" in shown.stdout and "model weights missing" in shown.stdout

    cancelled = refinery(*site, "runs", "cancel", str(queued.pk), "--json")
    assert json.loads(cancelled.stdout)["status"] == "cancelled"
    again = refinery(*site, "runs", "cancel", str(queued.pk))
    assert again.status == 4 and "HTTP 409" in again.stderr and "cancelled" in again.stderr

    assert refinery(*site, "runs", "log", str(failed.pk)).status == 0
    missing = refinery(*site, "runs", "show", "999999")
    assert missing.status == 4 and "HTTP 404" in missing.stderr


@pytest.mark.parametrize("ending", ["failed", "cancelled"])
def test_waiting_on_a_run_that_did_not_succeed_exits_1_with_its_error(api_site, refinery, ending):
    run = services.run_create(
        user=api_site.user, kind="generate", config=small_generate_config(prompt_set_of(1, "one"))
    )
    services.run_mark_started(run=run, worker_name="test")
    if ending == "failed":
        services.run_mark_failed(run_id=run.pk, error="CUDA out of memory")
    else:
        services.run_mark_cancelled(run_id=run.pk)
    result = refinery("--url", api_site.url, "--token", api_site.token, "runs", "wait", str(run.pk))
    assert result.status == 1
    assert f"run {run.pk} ended {ending}" in result.stderr
    assert ("CUDA out of memory" in result.stderr) == (ending == "failed")


def test_read_commands_list_and_show_the_library_and_models(api_site, refinery):
    from webapp.registry.services import model_ensure_embedded

    model = model_ensure_embedded()
    prompt_set = prompt_set_of(2, "listed prompts")
    site = ("--url", api_site.url, "--token", api_site.token)
    listed = refinery(*site, "prompt-sets", "list")
    assert listed.status == 0 and f"{prompt_set.pk:>6}  listed prompts" in listed.stdout
    shown = json.loads(refinery(*site, "models", "show", str(model.pk)).stdout)
    assert shown["id"] == model.pk and shown["name"] == model.name
    assert refinery(*site, "models", "lineage", str(model.pk)).status == 0
    assert json.loads(refinery(*site, "corpora", "list", "--json").stdout)["count"] == 0


def test_a_rate_limited_creation_says_when_to_try_again(api_site, refinery, settings):
    from webapp.registry.services import model_ensure_embedded

    settings.REFINERY_API_RUN_CREATE_RATE = "1/hour"
    model_ensure_embedded()  # the form's initial model
    prompt_set = prompt_set_of(1, "one prompt")
    create = ("--url", api_site.url, "--token", api_site.token, "runs", "create", "generate")
    fields = ("--set", f"prompt_set={prompt_set.pk}", "--set", "max_tokens=4")
    assert refinery(*create, *fields).status == 0
    limited = refinery(*create, *fields)
    assert limited.status == 4 and "HTTP 429" in limited.stderr and "Try again in" in limited.stderr
    assert PipelineRun.objects.count() == 1


def test_uploads_create_library_objects_and_a_refused_file_is_named(api_site, refinery, tmp_path):
    from webapp.library.models import SeedPromptSet

    site = ("--url", api_site.url, "--token", api_site.token)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("What is a list?\nWhat is a tuple?\n")
    uploaded = refinery(*site, "prompt-sets", "upload", str(prompts), "--name", "two questions")
    assert uploaded.status == 0, uploaded.stderr
    created = SeedPromptSet.objects.get(name="two questions")
    assert json.loads(uploaded.stdout)["id"] == created.pk
    assert list(created.prompts.order_by("position").values_list("text", flat=True)) == [
        "What is a list?",
        "What is a tuple?",
    ]

    rows = tmp_path / "not-sft.jsonl"
    rows.write_text('{"colour": "blue"}\n')
    refused = refinery(*site, "datasets", "upload", str(rows), "--name", "bad rows", "--set", "purpose=sft")
    assert refused.status == 2 and "HTTP 422" in refused.stderr and "not-sft.jsonl" in refused.stderr
    missing = refinery(*site, "corpora", "upload", str(tmp_path / "absent.jsonl"), "--name", "nothing")
    assert missing.status == 2 and "absent.jsonl: no such file" in missing.stderr


def test_form_fields_may_be_given_as_their_own_options(api_site, refinery):
    from webapp.registry.services import model_ensure_embedded

    model_ensure_embedded()
    prompt_set = prompt_set_of(2, "two")
    site = ("--url", api_site.url, "--token", api_site.token)
    result = refinery(
        *site, "runs", "create", "generate", "--prompt-set", str(prompt_set.pk), "--max-tokens=5", "--n", "2",
        "--name", "by options", "--json",
    )  # fmt: skip
    assert result.status == 0, result.stderr
    run = PipelineRun.objects.get(pk=json.loads(result.stdout)["id"])
    sampling = run.config["generate"]["sampling"]
    assert (sampling["max_tokens"], sampling["n"], run.name) == (5, 2, "by options")
    dangling = refinery(*site, "runs", "create", "generate", "--max-tokens")
    assert dangling.status == 2 and "--max-tokens needs a value" in dangling.stderr
    assert refinery(*site, "runs", "list", "--bogus", "1").status == 2
