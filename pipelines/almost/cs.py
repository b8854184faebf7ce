"""Step cs: synthetic comparisons, (better configuration's response, worse one's) by rubric rank, then filters.

For every prompt, every pair of configurations (better, worse) in rubric order is a candidate. Each
named filter gives each candidate a verdict (pass, fail, off, or skip: see `_verdict`); a candidate
that passes every switched-on filter survives; then, as the original, each configuration is chosen at most once per prompt,
against the best-ranked worse configuration whose pair survived. The original's loop (skip a
"BAD" response, skip a pair failing the length rule, mark the chosen configuration used) keeps
exactly these pairs. `comparisons-all.jsonl` holds every candidate with its verdicts (for
annotators to check each filter); `comparisons.jsonl` the kept ones (the reward model's data).
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


def compare_prompt(
    prompt_id: str, prompt: str, responses: list[tuple[str, str]], config: ComparisonConfig
) -> list[dict[str, Any]]:
    """Candidate pairs of one prompt with verdicts; `responses` = (configuration, response), best first."""
    failures = [response_failures(text, config) for _, text in responses]
    enabled_response_rules = {name for name in RESPONSE_RULES if config.enabled(name)}
    usable_lengths = [len(text) for (_, text), broken in zip(responses, failures, strict=True) if not broken & enabled_response_rules]
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
                    "kept": not failed,
                    "dropped_by": "filters" if failed else "",
                }
            )
    if config.one_pair_per_chosen:
        chosen_already: set[int] = set()
        for row in rows:  # rows are in (better, worse) rank order
            if not row["kept"]:
                continue
            if row["chosen_rank"] in chosen_already:
                row["kept"], row["dropped_by"] = False, PAIRING_RULE
            else:
                chosen_already.add(row["chosen_rank"])
    return rows


def _verdict(name: str, broken: set[str], config: ComparisonConfig, usable_pair: bool) -> str:
    """pass | fail | off (switched off) | skip (the length rule on a pair a response rule already removed)."""
    if not config.enabled(name):
        return "off"
    if name == "length" and not usable_pair:
        return "skip"
    return "fail" if name in broken else "pass"


def count_pairs(rows: list[dict[str, Any]], config: ComparisonConfig) -> dict[str, Any]:
    """Pairs before and after each filter (in FILTERS order), each filter's own failures, and the pairing rule."""
    remaining = len(rows)
    steps: list[dict[str, Any]] = []
    for name in FILTERS:
        failed_here = sum(1 for row in rows if row["verdicts"][name] == "fail")
        if not config.enabled(name):
            steps.append({"filter": name, "enabled": False, "failed": 0, "before": remaining, "after": remaining})
            continue
        after = sum(1 for row in rows if not any(row["verdicts"][n] == "fail" for n in FILTERS[: FILTERS.index(name) + 1]))
        steps.append({"filter": name, "enabled": True, "failed": failed_here, "before": remaining, "after": after})
        remaining = after
    by_pairing = sum(1 for row in rows if row["dropped_by"] == PAIRING_RULE)
    kept = [row for row in rows if row["kept"]]
    return {
        "candidates": len(rows),
        "filters": steps,
        "after_filters": remaining,
        PAIRING_RULE: {"enabled": config.one_pair_per_chosen, "dropped": by_pairing},
        "kept": len(kept),
        "prompts_with_pairs": len({row["prompt_id"] for row in kept}),
        "kept_by_configuration_pair": dict(
            Counter(f"{row['chosen_config']} > {row['rejected_config']}" for row in kept).most_common()
        ),
    }


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
        raise InvalidInputError(f"comparisons need responses of every rubric configuration; missing: {', '.join(missing)}")
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
