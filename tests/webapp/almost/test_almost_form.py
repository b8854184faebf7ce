"""ALMoST runs from the site: the rubric editor, the cost estimate, and every refusal made before anything is queued."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from pipelines.almost.comparisons import compare_prompt, count_pairs
from pipelines.almost.config import ComparisonConfig, reward_batch
from pipelines.training.config import RewardConfig
from webapp.almost import run_page, services
from webapp.almost.services import ConfigurationChoice
from webapp.library.models import FewShotExample, FewShotSet, SeedPrompt, SeedPromptSet
from webapp.registry.models import ModelEntry
from webapp.runs.models import PipelineRun

from ..training.tokenizer_models import tokenizer_model

pytestmark = pytest.mark.django_db

INSTRUCTION = "### Instruction: Please generate initial query to start conversation with bot."


def _demonstrations(name: str, dialogues: list[str], kind: str = FewShotSet.Kind.DEMONSTRATION) -> FewShotSet:
    few_shot_set = FewShotSet.objects.create(
        name=name, kind=kind, preamble="Dialogues with an AI assistant.", example_count=len(dialogues)
    )
    for position, dialogue in enumerate(dialogues):
        FewShotExample.objects.create(few_shot_set=few_shot_set, position=position, context=dialogue)
    return few_shot_set


@pytest.fixture
def seeds() -> SeedPromptSet:
    prompt_set = SeedPromptSet.objects.create(name="seeds", instruction=INSTRUCTION, prompt_count=2)
    for position, text in enumerate(["How do I boil an egg?", "What is a tuple?"]):
        SeedPrompt.objects.create(prompt_set=prompt_set, position=position, text=text)
    return prompt_set


@pytest.fixture
def hhh() -> FewShotSet:
    return _demonstrations("HHH demonstration prompt", [f"Human: q{i}?\n\nAssistant: a{i}." for i in range(4)])


@pytest.fixture
def faithful() -> FewShotSet:
    long_dialogue = "Human: Explain it.\n\nAssistant: " + "A careful, detailed and well-formatted answer. " * 8
    return _demonstrations("Faithful demonstration prompt", [long_dialogue] * 3)


@pytest.fixture
def small() -> ModelEntry:
    return ModelEntry.objects.create(
        name="Small-135M", source=ModelEntry.Source.LOCAL, path="/m/s", parameter_count=135_000_000
    )


@pytest.fixture
def large() -> ModelEntry:
    return ModelEntry.objects.create(
        name="Large-1.7B", source=ModelEntry.Source.LOCAL, path="/m/l", parameter_count=1_700_000_000
    )


def _build(seeds, configurations, reward_model, **options):
    return services.almost_config_build(
        seed_prompt_set=seeds,
        configurations=configurations,
        reward_model=reward_model,
        preset="tiny-cpu-demo",
        **options,
    )


def test_a_rubric_becomes_named_configurations_in_order_with_the_originals_token_budgets(
    seeds, hhh, faithful, small, large
):
    config = _build(
        seeds,
        [
            ConfigurationChoice(large, 3, faithful),
            ConfigurationChoice(small, 3, hhh),
            ConfigurationChoice(small, 0, None),
        ],
        small,
        num_generation=20,
        filters={"dont_know": False},
    )
    rubric = config["almost"]["configurations"]
    names = [f"{c['model']}-{c['prompt'] or 'none'}-{c['shots']}shot" for c in rubric]
    assert names == ["large-17b-faithful-3shot", "small-135m-hhh-3shot", "small-135m-none-0shot"]
    assert [c["max_tokens"] for c in rubric] == [768, 384, 384]
    assert config["model_ids"] == {"large-17b": large.pk, "small-135m": small.pk}
    assert config["demonstration_set_ids"] == {"faithful": faithful.pk, "hhh": hhh.pk}
    assert config["almost"]["comparisons"]["filters"]["dont_know"] is False
    assert config["almost"]["prompt_generation"]["temperature"] == 1.2  # the paper's defaults stay
    estimate = services.almost_cost_estimate(config)
    assert estimate["responses"] == 60 and estimate["pairs_max"] == 40 and estimate["rmsp_samples"] == 80


def test_the_rules_of_thumb_order_larger_model_then_more_shots_then_richer_demonstrations(hhh, faithful, small, large):
    choices = [
        ConfigurationChoice(small, 1, hhh),
        ConfigurationChoice(small, 3, hhh),
        ConfigurationChoice(small, 3, faithful),
        ConfigurationChoice(large, 1, hhh),
    ]
    ordered = services.rubric_default_order(choices)
    assert [services.choice_name(c) for c in ordered] == [
        "large-17b-hhh-1shot",
        "small-135m-faithful-3shot",
        "small-135m-hhh-3shot",
        "small-135m-hhh-1shot",
    ]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("one_configuration", "at least two configurations"),
        ("too_many_shots", "5 shots, but “HHH demonstration prompt” holds only 4 dialogues"),
        ("shots_without_set", "3 shots need a demonstration set"),
        ("qa_set", "is a QA set"),
        ("same_configuration_twice", "are the same configuration"),
        ("reward_model_is_a_reward_model", "is a reward model"),
        ("empty_seed_set", "has no prompts"),
    ],
)
def test_refusals_name_the_problem_and_queue_nothing(case, message, seeds, hhh, small):
    reward_model = small
    rubric = [ConfigurationChoice(small, 3, hhh), ConfigurationChoice(small, 1, hhh)]
    if case == "one_configuration":
        rubric = rubric[:1]
    elif case == "too_many_shots":
        rubric[0] = ConfigurationChoice(small, 5, hhh)
    elif case == "shots_without_set":
        rubric[0] = ConfigurationChoice(small, 3, None)
    elif case == "qa_set":
        rubric[0] = ConfigurationChoice(small, 1, _demonstrations("QA", ["q"], kind=FewShotSet.Kind.QA))
    elif case == "same_configuration_twice":
        rubric[1] = ConfigurationChoice(small, 3, hhh)
    elif case == "reward_model_is_a_reward_model":
        reward_model = ModelEntry.objects.create(
            name="rm", source=ModelEntry.Source.RUN, path="/r", task=ModelEntry.Task.REWARD
        )
    elif case == "empty_seed_set":
        seeds = SeedPromptSet.objects.create(name="empty")
    with pytest.raises(ValidationError) as caught:
        _build(seeds, rubric, reward_model)
    assert message in " ".join(caught.value.messages)
    assert PipelineRun.objects.count() == 0


def _post(seeds, small, rows, **extra):
    data = {
        "seed_prompt_set": seeds.pk,
        "num_generation": "5",
        "in_context": "2",
        "reward_model": small.pk,
        "preset": "tiny-cpu-demo",
        "rmsp_enabled": "on",
        "constrained_output": "on",  # a browser posts a ticked checkbox; absent would mean unticked
        "rmsp_n": "2",
        "name": "demo",
        "rubric-TOTAL_FORMS": str(len(rows)),
        "rubric-INITIAL_FORMS": "0",
        "rubric-MIN_NUM_FORMS": "0",
        "rubric-MAX_NUM_FORMS": "32",
        **{f"filter_{name}": "on" for name in ("empty", "too_short", "identical")},
        **extra,
    }
    for index, row in enumerate(rows):
        for field, value in row.items():
            data[f"rubric-{index}-{field}"] = value
    return data


def test_the_form_queues_an_almost_run_with_its_config(researcher_client, seeds, hhh, small):
    rows = [
        {"model": small.pk, "shots": "3", "demonstration_set": hhh.pk},
        {"model": small.pk, "shots": "1", "demonstration_set": hhh.pk},
    ]
    response = researcher_client.post("/almost/new/", _post(seeds, small, rows, action="start"))
    assert response.status_code == 302, response.content.decode()[:3000]
    run = PipelineRun.objects.get()
    assert run.kind == "almost" and run.queue_name == "gpu" and run.name == "demo"
    assert run.config["almost"]["comparisons"]["filters"]["dont_know"] is False  # unticked box
    assert run.config["almost"]["rmsp"]["n"] == 2
    assert run.config["almost"]["reward"]["eval_fraction"] == 0.1  # blank: the default


def test_the_held_out_fraction_reaches_the_reward_config_and_a_bad_one_is_refused(researcher_client, seeds, hhh, small):
    rows = [
        {"model": small.pk, "shots": "3", "demonstration_set": hhh.pk},
        {"model": small.pk, "shots": "1", "demonstration_set": hhh.pk},
    ]
    response = researcher_client.post(
        "/almost/new/", _post(seeds, small, rows, action="start", reward_eval_fraction="0.3")
    )
    assert response.status_code == 302
    assert PipelineRun.objects.get().config["almost"]["reward"]["eval_fraction"] == 0.3
    refused = researcher_client.post(
        "/almost/new/", _post(seeds, small, rows, action="start", reward_eval_fraction="0.95")
    )
    assert refused.status_code == 400 and "less than or equal to 0.9" in refused.content.decode()
    assert PipelineRun.objects.count() == 1


def test_the_reward_models_text_format_follows_its_tokenizer_and_a_missing_chat_template_is_refused(
    researcher_client, tmp_path, embedded_model_dir, seeds, hhh, small
):
    base = tokenizer_model(embedded_model_dir, tmp_path / "base", "Base-135M", chat_template=False)
    instruct = tokenizer_model(embedded_model_dir, tmp_path / "instruct", "Instruct-135M", chat_template=True)
    rows = [
        {"model": small.pk, "shots": "3", "demonstration_set": hhh.pk},
        {"model": small.pk, "shots": "1", "demonstration_set": hhh.pk},
    ]
    page = researcher_client.get("/almost/new/").content.decode()
    assert 'name="reward_prompt_format"' in page and "Assistant: reply&lt;eos&gt;" in page

    refused = researcher_client.post(
        "/almost/new/",
        {**_post(seeds, small, rows, action="start"), "reward_model": base.pk, "reward_prompt_format": "chat_template"},
    )
    assert refused.status_code == 400 and PipelineRun.objects.count() == 0
    message = refused.context["form"].errors["reward_prompt_format"][0]
    assert "Base-135M's tokenizer has no chat template" in message and "raw_assistant" in message

    estimate = researcher_client.post(
        "/almost/new/estimate/", {**_post(seeds, small, rows, action="estimate"), "reward_model": base.pk}
    ).content.decode()
    row = estimate[estimate.index('data-key="reward-format"') :].split("</tr>")[0]
    assert "raw: prompt\\n\\nAssistant: reply&lt;eos&gt; (the paper&#x27;s)" in row
    for model, expected in ((base, "raw_assistant"), (instruct, "chat_template")):
        response = researcher_client.post(
            "/almost/new/", {**_post(seeds, small, rows, action="start"), "reward_model": model.pk}
        )
        assert response.status_code == 302, response.content.decode()[:3000]
        run = PipelineRun.objects.order_by("-pk").first()
        assert run.config["almost"]["reward"]["training"]["prompt_format"] == expected
    explicit = researcher_client.post(
        "/almost/new/",
        {
            **_post(seeds, small, rows, action="start"),
            "reward_model": instruct.pk,
            "reward_prompt_format": "raw_assistant",
        },
    )
    assert explicit.status_code == 302
    assert PipelineRun.objects.order_by("-pk").first().config["almost"]["reward"]["training"]["prompt_format"] == (
        "raw_assistant"
    )


def test_a_refused_form_says_why_and_queues_nothing(researcher_client, seeds, hhh, small):
    rows = [
        {"model": small.pk, "shots": "9", "demonstration_set": hhh.pk},
        {"model": small.pk, "shots": "1", "demonstration_set": hhh.pk},
    ]
    response = researcher_client.post("/almost/new/", _post(seeds, small, rows, action="start"))
    assert response.status_code == 400
    assert "holds only 4 dialogues" in response.content.decode()
    assert PipelineRun.objects.count() == 0


def test_the_editor_moves_sorts_adds_and_removes_configurations_without_queueing(
    researcher_client, seeds, hhh, small, large
):
    rows = [
        {"model": small.pk, "shots": "1", "demonstration_set": hhh.pk},
        {"model": large.pk, "shots": "3", "demonstration_set": hhh.pk},
    ]

    def models_in_order(response) -> list[int]:
        rubric = response.context["rubric"]
        return [int(form.initial["model"]) for form in rubric.forms]

    moved = researcher_client.post("/almost/new/", _post(seeds, small, rows, action="up-1"))
    assert moved.status_code == 200 and models_in_order(moved) == [large.pk, small.pk]
    sorted_ = researcher_client.post("/almost/new/", _post(seeds, small, rows, action="sort"))
    assert models_in_order(sorted_) == [large.pk, small.pk]
    added = researcher_client.post("/almost/new/", _post(seeds, small, rows, action="add"))
    assert len(added.context["rubric"].forms) == 3
    removed = researcher_client.post("/almost/new/", _post(seeds, small, rows, action="remove-0"))
    assert models_in_order(removed) == [large.pk]
    assert PipelineRun.objects.count() == 0


def test_the_estimate_shows_the_cost_or_the_problems(researcher_client, seeds, hhh, small):
    rows = [
        {"model": small.pk, "shots": "3", "demonstration_set": hhh.pk},
        {"model": small.pk, "shots": "1", "demonstration_set": hhh.pk},
    ]
    page = researcher_client.post("/almost/new/estimate/", _post(seeds, small, rows)).content.decode()
    assert 'data-key="responses"' in page and "Responses (prompts × configurations)" in page
    page = researcher_client.post("/almost/new/estimate/", _post(seeds, small, rows[:1])).content.decode()
    assert "at least two configurations" in page
    assert PipelineRun.objects.count() == 0


def test_the_estimate_spells_out_the_reward_models_batch_and_marks_the_held_out_share_as_ours(
    researcher_client, seeds, hhh, small
):
    rows = [
        {"model": small.pk, "shots": "3", "demonstration_set": hhh.pk},
        {"model": small.pk, "shots": "1", "demonstration_set": hhh.pk},
    ]
    page = researcher_client.post("/almost/new/estimate/", _post(seeds, small, rows, preset="")).content.decode()
    batch = page[page.index('data-key="reward-batch"') :]
    assert batch.split("</td>")[0].endswith("4 per device x 32 accumulation x 1 device = 128")  # the paper's 128
    assert "Reward-model held out (ours)" in page
    page = researcher_client.post("/almost/new/estimate/", _post(seeds, small, rows)).content.decode()
    assert "2 per device x 1 accumulation x 1 device = 2" in page
    assert "(paper: 4 per device x 8 accumulation x 4 devices = 128)" in page
    form = researcher_client.get("/almost/new/").content.decode()
    assert "Reward-model held-out fraction (ours)" in form
    assert "none: the paper&#x27;s reward-model settings (4 per device x 32 accumulation x 1 device = 128 pairs" in form


def test_the_new_page_offers_a_default_rubric_and_annotators_are_refused(
    researcher_client, client, annotator, seeds, hhh, small
):
    page = researcher_client.get("/almost/new/")
    assert page.status_code == 200
    assert len(page.context["rubric"].forms) == 2 and "Order by the rules of thumb" in page.content.decode()
    client.force_login(annotator)
    assert client.get("/almost/new/").status_code == 403


SAME = "Slicing with items[::-1] makes a reversed copy and keeps the original list as it was."
ANSWER = "Use items[::-1] to get a reversed copy of the list."


def test_the_run_section_shows_counts_accuracy_and_scores(researcher):
    run = PipelineRun.objects.create(
        kind="almost",
        config={
            "almost": {
                "configurations": [
                    {"model": "m", "prompt": "hhh", "shots": 3},
                    {"model": "m", "prompt": "hhh", "shots": 1},
                ]
            }
        },
        summary={
            "prompt_generation": {"prompts": 3, "requested": 4, "candidates": 9, "rejected": {"exact": 6}},
            "comparisons": count_pairs(
                compare_prompt("p0", "q", [("a", SAME), ("b", SAME), ("c", ANSWER)], ComparisonConfig()),
                ComparisonConfig(),
            ),
            "reward_training": {
                "held_out_accuracy": 0.75,
                "steps": 2,
                "train_pairs": 1,
                "held_out_pairs": 1,
                "batch": reward_batch(RewardConfig()),
            },
            "self_play": {
                "configuration": "m-hhh-3shot",
                "n": 2,
                "demonstrations": 3,
                "scores": {
                    "count": 3,
                    "mean": 0.1,
                    "median": 0.1,
                    "min": 0.0,
                    "max": 0.2,
                    "histogram": [{"low": 0.0, "high": 0.1, "count": 1}, {"low": 0.1, "high": 0.2, "count": 2}],
                },
                "all_sample_scores": {"mean": 0.05},
            },
        },
    )
    context = run_page.context(run)["almost"]
    assert context["rubric"] == ["m-hhh-3shot", "m-hhh-1shot"]
    assert [bin_["percent"] for bin_ in context["histogram"]] == [50, 100]
    from django.template.loader import render_to_string

    html = render_to_string(run_page.TEMPLATE, {"almost": context})
    assert "0.750" in html and "3 of 4" in html and "m-hhh-3shot" in html
    # The table lists the steps in the order they act: the pairing rule comes before "identical".
    table = html[html.index('id="almost-filter-counts"') :]
    assert table.index("one pair per chosen configuration") < table.index("<td>identical</td>")
    assert 'id="almost-rm-batch">4 per device x 32 accumulation x 1 device = 128<' in html
    assert "Pairs: train / held out" in html and "(ours)" in html and "all (full fine-tuning, as the paper)" in html


def test_a_run_without_rmsp_says_it_was_switched_off_rather_than_unfinished(researcher):
    from django.template.loader import render_to_string

    run = PipelineRun.objects.create(
        kind="almost",
        config={"almost": {"configurations": [], "rmsp": {"enabled": False}}},
        summary={"reward_training": {"held_out_accuracy": 0.5, "steps": 2, "train_pairs": 1, "held_out_pairs": 1}},
    )
    html = render_to_string(run_page.TEMPLATE, run_page.context(run))
    assert "Switched off for this run." in html


def test_a_run_finished_before_the_summary_keys_were_renamed_still_shows_its_page(researcher_client):
    """Old runs' summaries hold pg/rg/cs/rm/rmsp: their steps show as not finished, the page does not fail."""
    run = PipelineRun.objects.create(
        kind="almost",
        config={"almost": {"configurations": [{"model": "m", "prompt": "hhh", "shots": 1}]}},
        summary={
            "pg": {"prompts": 3},
            "rg": {"configurations": []},
            "cs": {"kept": 2},
            "rm": {"held_out_accuracy": 0.5},
            "rmsp": {"demonstrations": 1},
            "reward_model": "m → ALMoST reward model #1",
        },
        status=PipelineRun.Status.SUCCEEDED,
    )
    response = researcher_client.get(run.get_absolute_url())
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="almost-section"' in html and "m-hhh-1shot" in html and "Not trained yet." in html


def test_the_estimate_warns_when_short_responses_meet_the_final_punctuation_filter(
    researcher_client, seeds, hhh, small
):
    rows = [
        {"model": small.pk, "shots": "3", "demonstration_set": hhh.pk},
        {"model": small.pk, "shots": "1", "demonstration_set": hhh.pk},
    ]
    capped = _post(seeds, small, rows, response_max_tokens="12", filter_no_final_punctuation="on")
    page = researcher_client.post("/almost/new/estimate/", capped).content.decode()
    assert "Responses capped short: small-135m-hhh-3shot (12 tokens), small-135m-hhh-1shot (12 tokens)" in page
    assert "no_final_punctuation filter removes every pair" in page and "too_short filter&#x27;s 50 characters" in page
    assert "Ready to queue, but read the warnings above first." in page
    without_filter = _post(seeds, small, rows, response_max_tokens="12")  # no_final_punctuation and too_short off
    without_filter.pop("filter_too_short")
    quiet = researcher_client.post("/almost/new/estimate/", without_filter).content.decode()
    assert "Responses capped short" not in quiet and "too_short" not in quiet and "Ready to queue." in quiet
    roomy = _post(seeds, small, rows, filter_no_final_punctuation="on")  # the original's 384 tokens
    assert "Responses capped short" not in researcher_client.post("/almost/new/estimate/", roomy).content.decode()


def test_the_almost_form_keeps_its_settings_under_advanced_with_the_presets_values(researcher_client, seeds):
    from pipelines.training.presets import training_preset
    from webapp.almost.forms import AlmostRunForm

    form = AlmostRunForm(initial={"preset": "tiny-cpu-demo"})
    advanced = {field.name for field in form.advanced()}
    assert {"prompt_max_tokens", "response_max_tokens", "reward_max_steps", "reward_eval_fraction"} <= advanced
    assert not any(name.startswith("filter_") for name in advanced)  # the filters keep their own section
    steps = training_preset("tiny-cpu-demo").apply(RewardConfig()).training.max_steps
    assert form.fields["reward_max_steps"].widget.attrs["placeholder"] == str(steps)
    page = researcher_client.get("/almost/new/").content.decode()
    assert '<details class="advanced" data-advanced>' in page and f">seeds — {seeds.prompt_count} prompts<" in page


def test_the_advanced_section_stays_open_through_a_rubric_edit_when_it_holds_a_change(
    researcher_client, seeds, hhh, small
):
    rows = [
        {"model": small.pk, "shots": "3", "demonstration_set": hhh.pk},
        {"model": small.pk, "shots": "1", "demonstration_set": hhh.pk},
    ]
    moved = researcher_client.post(
        "/almost/new/", _post(seeds, small, rows, response_max_tokens="200", action="down-0")
    )
    assert '<details class="advanced" data-advanced open>' in moved.content.decode()
    plain = researcher_client.post(
        "/almost/new/", _post(seeds, small, rows, rmsp_n="4", action="down-0")
    )  # the initial
    assert '<details class="advanced" data-advanced>' in plain.content.decode()
    assert PipelineRun.objects.count() == 0


def test_the_policy_stages_reach_the_config_and_rl_without_sft_is_refused_on_its_box(
    researcher_client, seeds, hhh, small
):
    rows = [
        {"model": small.pk, "shots": "3", "demonstration_set": hhh.pk},
        {"model": small.pk, "shots": "1", "demonstration_set": hhh.pk},
    ]
    refused = researcher_client.post("/almost/new/", _post(seeds, small, rows, action="start", policy_rl="on"))
    assert refused.status_code == 400 and "needs policy.sft_enabled" in refused.content.decode()
    assert not PipelineRun.objects.exists()

    response = researcher_client.post(
        "/almost/new/",
        _post(seeds, small, rows, action="start", policy_sft="on", policy_rl="on", rl_algorithm="rloo",
              rl_preset="cpu-demo", rl_max_steps="3", rl_held_out_prompts="2"),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    run = PipelineRun.objects.get()
    policy = run.config["almost"]["policy"]
    assert (policy["sft_enabled"], policy["rl_enabled"]) == (True, True)
    rl = policy["rl"]
    assert (rl["algorithm"], rl["training"]["max_steps"], rl["held_out_prompts"]) == ("rloo", 3, 2)
    assert rl["max_new_tokens"] == 32 and rl["training"]["device"] == "cpu"  # the cpu-demo preset underneath
    assert policy["sft"]["training"]["max_steps"] == 20  # the run's training preset (tiny-cpu-demo) trains SFT too
    assert rl["training"]["prompt_format"] == policy["sft"]["training"]["prompt_format"]
    assert run.config["rl_preset"] == "cpu-demo"
