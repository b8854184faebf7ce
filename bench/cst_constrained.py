"""AugCon's Context-Split-Tree step, constrained against unconstrained, on the demo's documents (issue 22).

Grows the CST of the demo run's documents (the demo corpus is `pydoc_data.topics`, one document per
topic in sorted order, as `load_demo_data` imports it; the demo run takes positions 0-9) with the
bundled SmolLM2-135M and the `tiny-cpu-demo` preset, exactly as `run_augcon`'s first stage does
(`document_groups` of `batch_size` root chunks, `build_trees_together`), once with
`constrained_output` on and once off, and prints one JSON record per case:

- `constrained`, `calls`, `parse_failures`, `retries`, `gave_up` (nodes whose every attempt failed),
  `questions_generated`, `questions_kept` (after the run's ROUGE-L dedup and per-chunk quota, in
  generation order: the scorer, which only reorders, is not trained here), `wall_seconds`;
- grounding: every sub-context's ROUGE-L recall against its parent (`pipelines/augcon/grounding.py`):
  count, mean, median, share under 0.3/0.5/0.7, a histogram in tenths, a few examples per band, and
  `splits_dropped_ungrounded` at the config's `min_split_grounding`.

Usage:
    nice .venv/bin/python bench/cst_constrained.py --documents 10 --out bench/results/cst-constrained-cpu-2core.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.augcon.config import AugConConfig, tiny_cpu_preset  # noqa: E402
from pipelines.augcon.corpus import cst_demonstrations, document_chunks  # noqa: E402
from pipelines.augcon.cst import CallStats, build_trees_together  # noqa: E402
from pipelines.augcon.run import document_groups, rank_chunk  # noqa: E402
from pipelines.common.progress import RecordingProgress  # noqa: E402
from pipelines.llm.embedded import default_model_cache_dir, ensure_embedded_model  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
FEW_SHOT_FILE = REPO_ROOT / "webapp/library/demo/fewshot_qa.jsonl"


def demo_documents(count: int) -> list[dict[str, Any]]:
    """The demo corpus's first `count` documents, as `load_demo_data` and the AugCon worker snapshot them."""
    from pydoc_data.topics import topics

    return [
        {"document_id": f"doc{position:05d}", "title": key, "text": topics[key]}
        for position, key in enumerate(sorted(topics)[:count])
    ]


def run_case(backend: Any, documents: list[dict[str, Any]], config: AugConConfig) -> dict[str, Any]:
    few_shot = [json.loads(line) for line in FEW_SHOT_FILE.read_text().splitlines() if line.strip()]
    demonstrations = cst_demonstrations(few_shot, config.cst_demonstrations)
    chunks_by_document = {document["document_id"]: document_chunks(document, config) for document in documents}
    totals = CallStats()
    nodes: list[dict[str, Any]] = []
    started = time.monotonic()
    for group in document_groups(chunks_by_document, config.batch_size):
        chunks = [chunk for document_id in group for chunk in chunks_by_document[document_id]]
        if not chunks:
            continue
        grown = build_trees_together(backend, chunks, demonstrations, config, RecordingProgress())
        for trees in grown.values():
            totals.add(trees.stats)
            nodes.extend(node.to_dict() for node in trees.nodes)
        print(f"  group of {len(group)} documents: {totals.calls} calls so far", file=sys.stderr, flush=True)
    wall_seconds = time.monotonic() - started
    questions = [node for node in nodes if node["status"] == "question"]
    kept = 0
    for chunks in chunks_by_document.values():
        for chunk in chunks:
            decisions = rank_chunk(
                [node for node in questions if node["chunk_id"] == chunk.chunk_id],
                {},
                threshold=config.rouge_threshold,
                quota=chunk.gen_count,
                tokenizer=config.rouge_tokenizer,
            )
            kept += sum(1 for decision in decisions.values() if decision["kept"])
    statuses: dict[str, int] = {}
    for node in nodes:
        statuses[node["status"]] = statuses.get(node["status"], 0) + 1
    return {
        "constrained": config.constrained_output,
        "documents": len(documents),
        "chunks": sum(len(chunks) for chunks in chunks_by_document.values()),
        "calls": totals.calls,
        "parse_failures": totals.parse_failures,
        "retries": totals.retries,
        "gave_up": totals.gave_up,
        "questions_generated": len(questions),
        "questions_kept": kept,
        "question_quota": sum(chunk.gen_count for chunks in chunks_by_document.values() for chunk in chunks),
        "wall_seconds": round(wall_seconds, 1),
        "completion_tokens": totals.completion_tokens,
        "node_statuses": statuses,
        "min_split_grounding": config.min_split_grounding,
        "splits_dropped_ungrounded": statuses.get("ungrounded", 0),
        "grounding": grounding_figures(nodes),
    }


def grounding_figures(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """The distribution of every sub-context's grounding, with examples to read what each band holds."""
    parents = {node["node_id"]: node for node in nodes}
    children = [node for node in nodes if node["grounding"] is not None]
    values = [node["grounding"] for node in children]
    if not values:
        return {"sub_contexts": 0}
    examples: dict[str, list[dict[str, Any]]] = {}
    for node in children:
        band = f"{min(int(node['grounding'] * 10), 9) / 10:.1f}"
        shown = examples.setdefault(band, [])
        if len(shown) < 2:
            parent = parents.get(node["parent_id"], {}).get("context", "")
            shown.append({"grounding": node["grounding"], "sub_context": node["context"][:200], "parent": parent[:300]})
    histogram = [0] * 10
    for value in values:
        histogram[min(int(value * 10), 9)] += 1
    return {
        "sub_contexts": len(values),
        "mean": round(statistics.fmean(values), 3),
        "median": round(statistics.median(values), 3),
        "share_below": {
            str(limit): round(sum(value < limit for value in values) / len(values), 3) for limit in (0.3, 0.5, 0.7)
        },
        "histogram_tenths": histogram,
        "examples_by_band": dict(sorted(examples.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=10, help="the demo run's first N documents (10)")
    parser.add_argument("--cases", default="constrained,unconstrained", help="which cases, in order")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--note", default="", help="a remark kept in the JSON (why fewer documents, the load)")
    parser.add_argument("--model-cache-dir", type=Path, default=default_model_cache_dir())
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here (rewritten after each case)")
    args = parser.parse_args()

    from pipelines.llm.transformers_backend import TransformersBackend

    model_dir = ensure_embedded_model(args.model_cache_dir)
    backend = TransformersBackend(model_dir, device="cpu", torch_threads=args.threads)
    documents = demo_documents(args.documents)
    base = tiny_cpu_preset(AugConConfig())
    report: dict[str, Any] = {
        "benchmark": "bench/cst_constrained.py " + " ".join(sys.argv[1:]),
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_1_5_15_before": [round(value, 2) for value in os.getloadavg()],
        },
        "model": backend.name,
        "preset": "tiny-cpu-demo",
        "note": args.note,
        "documents": [document["title"] for document in documents],
        "results": [],
    }
    for case in args.cases.split(","):
        config = replace(base, constrained_output=case == "constrained")
        print(f"case {case}", file=sys.stderr, flush=True)
        result = run_case(backend, documents, config)
        report["results"].append(result)
        print(json.dumps(result), file=sys.stderr, flush=True)
        report["machine"]["load_average_1_5_15_after"] = [round(value, 2) for value in os.getloadavg()]
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
