"""Step cs (synthetic comparisons): (better configuration's response, worse one's) by rubric rank, then filters.

For every prompt, every pair of configurations (better, worse) in rubric order is a candidate. Each
named filter gives each candidate a verdict (pass, fail, off, or skip: see `_verdict`). The filters
act in the original's order:

1. the response rules and the length rule (the original's `get_comparison` skips a "BAD" response
   and a pair failing `check_length`);
2. the pairing rule: each configuration is chosen at most once per prompt, against the best-ranked
   worse configuration whose pair passed step 1;
3. "identical": a pair whose chosen and rejected texts are equal is dropped *after* pairing, as the
   original's reward-model loader drops it, so the chosen configuration's slot stays used and it
   does not pair with the next worse configuration instead.

`comparisons-all.jsonl` holds every candidate with its verdicts (for annotators to check each
filter); `comparisons.jsonl` the kept ones (the reward model's data).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pipelines.almost.config import FILTERS, RESPONSE_RULES, AlmostConfig, ComparisonConfig
from pipelines.almost.filters import length_bound, pair_failures, response_failures
from pipelines.common.progress import Progress
from pipelines.common.store import RunStore
from pipelines.errors import InvalidInputError

ALL_FILE = "cs/comparisons-all.jsonl"
KEPT_FILE = "cs/comparisons.jsonl"
COUNTS_FILE = "cs/counts.json"
PAIRING_RULE = "one_pair_per_chosen"
AFTER_PAIRING = ("identical",)
"""Filters the original applies to the pairs it has already chosen (its reward-model loader)."""
BEFORE_PAIRING = tuple(name for name in FILTERS if name not in AFTER_PAIRING)
"""Filters that decide which pairs may take a chosen configuration's slot."""


def compare_prompt(
    prompt_id: str, prompt: str, responses: list[tuple[str, str]], config: ComparisonConfig
) -> list[dict[str, Any]]:
    """Candidate pairs of one prompt with verdicts; `responses` = (configuration, response), best first."""
    failures = [response_failures(text, config) for _, text in responses]
    enabled_response_rules = {name for name in RESPONSE_RULES if config.enabled(name)}
    usable_lengths = [
        len(text) for (_, text), broken in zip(responses, failures, strict=True) if not broken & enabled_response_rules
    ]
    bound = length_bound(usable_lengths, config)
    rows: list[dict[str, Any]] = []
    for better in range(len(responses)):
        for worse in range(better + 1, len(responses)):
            (chosen_config, chosen), (rejected_config, rejected) = responses[better], responses[worse]
            broken = failures[better] | failures[worse]
            # The length rule compares usable responses only (the original never pairs a "BAD" one):
            # for a pair already removed by a response rule it is not evaluated ("skip").
            usable_pair = not broken & enabled_response_rules
            broken |= pair_failures(chosen, rejected, bound) if usable_pair else pair_failures(chosen, rejected, -1.0)
            verdicts = {name: _verdict(name, broken, config, usable_pair) for name in FILTERS}
            failed = [name for name in FILTERS if verdicts[name] == "fail"]
            rows.append(
                {
                    "prompt_id": prompt_id,
                    "prompt": prompt,
                    "chosen": chosen,
                    "rejected": rejected,
                    "chosen_config": chosen_config,
                    "rejected_config": rejected_config,
                    "chosen_rank": better,
                    "rejected_rank": worse,
                    "verdicts": verdicts,
                    "failed_filters": failed,
                    "kept": False,
                    "dropped_by": "",
                }
            )
    _apply_pairing(rows, one_pair_per_chosen=config.one_pair_per_chosen)
    return rows


def _apply_pairing(rows: list[dict[str, Any]], *, one_pair_per_chosen: bool) -> None:
    """Set `kept` and `dropped_by` of one prompt's rows (in (better, worse) rank order) in the original's order."""
    slot_taken: set[int] = set()
    for row in rows:
        failed = row["failed_filters"]
        if any(name in BEFORE_PAIRING for name in failed):
            row["dropped_by"] = "filters"
            continue
        if one_pair_per_chosen:
            if row["chosen_rank"] in slot_taken:
                row["dropped_by"] = PAIRING_RULE
                continue
            slot_taken.add(row["chosen_rank"])
        if failed:  # an after-pairing filter: the pair took its slot, then is dropped
            row["dropped_by"] = "filters"
            continue
        row["kept"] = True


def _verdict(name: str, broken: set[str], config: ComparisonConfig, usable_pair: bool) -> str:
    """pass | fail | off (switched off) | skip (the length rule on a pair a response rule already removed)."""
    if not config.enabled(name):
        return "off"
    if name == "length" and not usable_pair:
        return "skip"
    return "fail" if name in broken else "pass"


def count_pairs(rows: list[dict[str, Any]], config: ComparisonConfig) -> dict[str, Any]:
    """Pairs before and after each step, in the order they act: the filters before pairing, the pairing
    rule, then the filters after pairing. `failed` is a filter's failures among all candidates."""
    steps: list[dict[str, Any]] = []
    remaining = len(rows)
    for position, name in enumerate(BEFORE_PAIRING):
        failed_here = sum(1 for row in rows if row["verdicts"][name] == "fail")
        if not config.enabled(name):
            steps.append({"filter": name, "enabled": False, "failed": 0, "before": remaining, "after": remaining})
            continue
        earlier = BEFORE_PAIRING[: position + 1]
        after = sum(1 for row in rows if not any(row["verdicts"][n] == "fail" for n in earlier))
        steps.append({"filter": name, "enabled": True, "failed": failed_here, "before": remaining, "after": after})
        remaining = after
    by_pairing = sum(1 for row in rows if row["dropped_by"] == PAIRING_RULE)
    steps.append(
        {
            "filter": PAIRING_RULE,
            "enabled": config.one_pair_per_chosen,
            "failed": by_pairing,
            "before": remaining,
            "after": remaining - by_pairing,
        }
    )
    remaining -= by_pairing
    holders = [
        row for row in rows if row["kept"] or (row["dropped_by"] == "filters" and not _failed_before_pairing(row))
    ]
    for name in AFTER_PAIRING:
        failed_here = sum(1 for row in rows if row["verdicts"][name] == "fail")
        after = sum(1 for row in holders if row["verdicts"][name] != "fail")
        steps.append(
            {
                "filter": name,
                "enabled": config.enabled(name),
                "failed": failed_here if config.enabled(name) else 0,
                "before": remaining,
                "after": after,
            }
        )
        holders = [row for row in holders if row["verdicts"][name] != "fail"]
        remaining = after
    kept = [row for row in rows if row["kept"]]
    return {
        "candidates": len(rows),
        "filters": steps,
        PAIRING_RULE: {"enabled": config.one_pair_per_chosen, "dropped": by_pairing},
        "kept": len(kept),
        "prompts_with_pairs": len({row["prompt_id"] for row in kept}),
        "kept_by_configuration_pair": dict(
            Counter(f"{row['chosen_config']} > {row['rejected_config']}" for row in kept).most_common()
        ),
    }


def _failed_before_pairing(row: dict[str, Any]) -> bool:
    return any(name in BEFORE_PAIRING for name in row["failed_filters"])


def build_comparisons(
    config: AlmostConfig,
    prompts: list[dict[str, Any]],
    responses: dict[str, list[dict[str, Any]]],
    store: RunStore,
    progress: Progress,
) -> dict[str, Any]:
    """Write both comparison files and return the counts; a finished step is read back, not redone."""
    if store.exists(COUNTS_FILE):
        return store.read_json(COUNTS_FILE)
    missing = [c.name for c in config.configurations if c.name not in responses]
    if missing:
        raise InvalidInputError(
            f"comparisons need responses of every rubric configuration; missing: {', '.join(missing)}"
        )
    by_configuration = {name: {row["prompt_id"]: row["response"] for row in rows} for name, rows in responses.items()}
    progress.stage("cs · comparisons", total=len(prompts))
    all_rows: list[dict[str, Any]] = []
    for prompt in prompts:
        answered = [
            (c.name, by_configuration[c.name][prompt["prompt_id"]])
            for c in config.configurations
            if prompt["prompt_id"] in by_configuration[c.name]
        ]
        all_rows.extend(compare_prompt(prompt["prompt_id"], prompt["prompt"], answered, config.comparisons))
        progress.advance(1)
    counts = count_pairs(all_rows, config.comparisons)
    store.write_jsonl(all_rows, ALL_FILE)
    store.write_jsonl((row for row in all_rows if row["kept"]), KEPT_FILE)
    store.write_json(counts, COUNTS_FILE)
    return counts
