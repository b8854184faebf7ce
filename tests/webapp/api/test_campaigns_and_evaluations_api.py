"""Annotation campaigns and evaluations over the API: the pages' forms and services, the pages' figures;
an annotator's token reaches only their own assignments, never a verdict or the synthetic label."""

from __future__ import annotations

import json

import pytest

from tests.webapp.annotation.conftest import judge_next, preference_rows
from webapp.annotation.models import Campaign
from webapp.evaluation.models import Evaluation
from webapp.library.models import Artifact
from webapp.registry.models import ModelEntry
from webapp.runs.models import PipelineRun

pytestmark = pytest.mark.django_db


def _post(client, path: str, body: dict):
    return client.post(path, body, content_type="application/json")


def test_a_campaign_is_created_with_the_forms_defaults_and_the_services_rules(
    researcher_api, write_artifact, rubric, make_user
):
    artifact = write_artifact(preference_rows(10))
    first, second = make_user("annotator"), make_user("annotator")
    body = {
        "name": "spot check",
        "artifact": artifact.pk,
        "rubric": rubric.pk,
        "assignees": [first.pk, second.pk],
        "sample_size": 4,
    }
    created = _post(researcher_api, "/api/v1/campaigns", body)
    assert created.status_code == 201, created.content
    campaign = Campaign.objects.get()
    assert (
        created.json()["items"] == 4
        and campaign.overlap == 2
        and campaign.flags == ["factual error", "harmful", "off-topic"]
    )
    listed = researcher_api.get("/api/v1/campaigns").json()["items"]
    assert [(entry["id"], entry["items"], len(entry["assignees"])) for entry in listed] == [(campaign.pk, 4, 2)]
    too_much = _post(researcher_api, "/api/v1/campaigns", {**body, "name": "x", "overlap": 3})
    assert too_much.status_code == 422 and "needs at least 3 annotators" in json.dumps(too_much.json())
    assert Campaign.objects.count() == 1


def test_statistics_export_and_write_back_give_the_pages_figures(researcher_api, make_campaign, make_user):
    first, second = make_user("annotator"), make_user("annotator")
    campaign = make_campaign(assignees=[first, second])
    for annotator in (first, second):
        while judge_next(campaign, annotator, "a"):
            pass
    statistics = researcher_api.get(f"/api/v1/campaigns/{campaign.pk}/statistics").json()
    assert statistics["items"] == 6 and statistics["judgments_given"] == 12
    assert statistics["synthetic"]["agree"] == 6
    export = researcher_api.get(f"/api/v1/campaigns/{campaign.pk}/export?format=jsonl")
    rows = [json.loads(line) for line in b"".join(export.streaming_content).decode().splitlines()]
    assert len(rows) == 12 and {row["verdict"] for row in rows} == {"a"}
    written = _post(researcher_api, f"/api/v1/campaigns/{campaign.pk}/write-back", {"rule": "drop_disagreements"})
    assert written.status_code == 201 and written.json()["row_count"] == 6
    assert _post(researcher_api, f"/api/v1/campaigns/{campaign.pk}/write-back", {"rule": "bogus"}).status_code == 422


def test_an_annotator_token_sees_only_its_own_assignments(token_client, make_campaign, make_user):
    annotator = token_client("annotator")
    other = make_user("annotator")
    mine = make_campaign(assignees=[annotator.user, other])
    make_campaign(assignees=[other])
    judge_next(mine, other, "b")
    assignments = annotator.get("/api/v1/assignments").json()
    assert [entry["campaign"] for entry in assignments] == [mine.pk]
    assert assignments[0]["judged"] == 0 and "verdict" not in json.dumps(assignments)
    for path in (
        f"/api/v1/campaigns/{mine.pk}",
        f"/api/v1/campaigns/{mine.pk}/statistics",
        f"/api/v1/campaigns/{mine.pk}/export",
    ):
        assert annotator.get(path).status_code == 403


def _answers(tmp_path, name: str) -> Artifact:
    from webapp.runs.services import artifact_register

    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"p{i}", "response": f"{name} {i}"}) + "\n" for i in range(3)))
    return artifact_register(run=None, name=name, kind=Artifact.Kind.GENERATIONS, jsonl_path=path)


def test_an_evaluation_is_created_through_the_form_and_queues_its_run(researcher_api, tmp_path):
    judge = ModelEntry.objects.create(name="judge", source=ModelEntry.Source.LOCAL, path="/models/judge")
    new, base = _answers(tmp_path, "new"), _answers(tmp_path, "base")
    fields = {"candidate_artifacts": [new.pk], "baseline_artifact": base.pk, "judge": judge.pk, "judge_method": "text"}
    created = _post(
        researcher_api, "/api/v1/evaluations", {"name": "new vs base", "fields": fields, "prompts": ["p0", "p1"]}
    )
    assert created.status_code == 201, created.content
    evaluation = Evaluation.objects.get()
    assert created.json()["run"] == evaluation.run_id and PipelineRun.objects.get().kind == "evaluation"
    assert evaluation.imported_prompts == ["p0", "p1"]
    no_prompts = _post(researcher_api, "/api/v1/evaluations", {"fields": fields})
    assert no_prompts.status_code == 422 and no_prompts.json()["errors"][0]["field"] == "prompt_set"
    no_baseline = _post(
        researcher_api, "/api/v1/evaluations", {"fields": {**fields, "baseline_artifact": None}, "prompts": ["p"]}
    )
    assert no_baseline.status_code == 422
    assert Evaluation.objects.count() == 1


def test_results_and_the_leaderboard_are_read_back(researcher_api, tmp_path):
    judge = ModelEntry.objects.create(name="judge", source=ModelEntry.Source.LOCAL, path="/models/judge")
    new, base = _answers(tmp_path, "new"), _answers(tmp_path, "base")
    fields = {"candidate_artifacts": [new.pk], "baseline_artifact": base.pk, "judge": judge.pk, "judge_method": "text"}
    evaluation_id = _post(researcher_api, "/api/v1/evaluations", {"fields": fields, "prompts": ["p0"]}).json()["id"]
    results = {"candidates": {"new": {"win_rate": 0.6, "interval": [0.4, 0.8]}}}
    Evaluation.objects.filter(pk=evaluation_id).update(results=results, status=Evaluation.Status.SUCCEEDED)
    assert researcher_api.get(f"/api/v1/evaluations/{evaluation_id}").json()["results"] == results
    assert researcher_api.get("/api/v1/evaluations").json()["count"] == 1
    board = researcher_api.get("/api/v1/leaderboard").json()
    assert board["rows"] == [] and board["comparisons"] == 0
