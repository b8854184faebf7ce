"""Writes to the library: imports of corpora, seed prompts and few-shot sets, and the rubric editor.

Each import is one transaction (a bad record anywhere leaves the database as it was), reads its file
as a stream and inserts rows in batches, so memory stays bounded whatever the file size. Imports take
a path on disk, not an upload, so the same function can run in a web request or an RQ job.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, router, transaction
from django.db.models import Max

from . import parsers
from .models import Corpus, Document, FewShotExample, FewShotSet, Rubric, SeedPrompt, SeedPromptSet
from .parsers import ImportProblem, ProgressCallback

__all__ = [
    "ImportProblem",
    "corpus_append",
    "corpus_import",
    "dataset_import",
    "few_shot_set_import",
    "rubric_create",
    "rubric_update",
    "seed_prompt_set_import",
]

Item = TypeVar("Item")
TITLE_MAX = Document._meta.get_field("title").max_length
SOURCE_MAX = Document._meta.get_field("source").max_length


def _batches(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _forget_logged_queries(model: type) -> None:
    """With DEBUG on, Django keeps the SQL of recent queries, batch values included; drop it per batch."""
    connection = connections[router.db_for_write(model)]
    if connection.queries_logged:
        connection.queries_log.clear()


def _max_upload_bytes() -> int:
    return settings.LIBRARY_MAX_UPLOAD_BYTES


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")


# ---------------------------------------------------------------- corpora


def corpus_import(
    *,
    name: str,
    uploaded_file_path: str | Path,
    original_name: str,
    user: Any,
    description: str = "",
    batch_size: int = 1000,
    progress: ProgressCallback | None = None,
) -> Corpus:
    """Create a corpus from one file (.jsonl, .txt, .zip of .txt, .parquet); nothing is saved if any record is bad."""
    _check_batch_size(batch_size)
    corpus = Corpus(name=name, description=description, source=original_name, created_by=user)
    corpus.full_clean()
    with transaction.atomic():
        corpus.save()
        _corpus_add_documents(
            corpus=corpus,
            path=Path(uploaded_file_path),
            original_name=original_name,
            batch_size=batch_size,
            progress=progress,
            first_position=0,
        )
    return corpus


def corpus_append(
    *,
    corpus: Corpus,
    uploaded_file_path: str | Path,
    original_name: str,
    batch_size: int = 1000,
    progress: ProgressCallback | None = None,
) -> Corpus:
    """Add the documents of one more file after the corpus's last document; all of them or none."""
    _check_batch_size(batch_size)
    with transaction.atomic():
        # Lock the corpus row so two appends cannot pick the same positions.
        locked = Corpus.objects.select_for_update().get(pk=corpus.pk)
        last_position = locked.documents.aggregate(last=Max("position"))["last"]
        first_position = 0 if last_position is None else last_position + 1
        _corpus_add_documents(
            corpus=locked,
            path=Path(uploaded_file_path),
            original_name=original_name,
            batch_size=batch_size,
            progress=progress,
            first_position=first_position,
        )
        sources = [part for part in (locked.source, original_name) if part]
        locked.source = "; ".join(sources)[: Corpus._meta.get_field("source").max_length]
        locked.save(update_fields=["source", "updated_at"])
    corpus.refresh_from_db()
    return corpus


def _corpus_add_documents(
    *,
    corpus: Corpus,
    path: Path,
    original_name: str,
    batch_size: int,
    progress: ProgressCallback | None,
    first_position: int,
) -> None:
    records = parsers.read_corpus(path, file_name=original_name, max_bytes=_max_upload_bytes(), progress=progress)
    position = first_position
    added_documents = 0
    added_characters = 0
    for batch in _batches(records, batch_size):
        documents = []
        for record in batch:
            documents.append(
                Document(
                    corpus=corpus,
                    position=position,
                    title=record.title[:TITLE_MAX],
                    text=record.text,
                    source=record.source[:SOURCE_MAX],
                    meta=record.meta,
                )
            )
            position += 1
            added_characters += len(record.text)
        Document.objects.bulk_create(documents)
        added_documents += len(documents)
        _forget_logged_queries(Document)
    corpus.document_count += added_documents
    corpus.character_count += added_characters
    corpus.save(update_fields=["document_count", "character_count", "updated_at"])


# ---------------------------------------------------------------- seed prompts


def seed_prompt_set_import(
    *,
    name: str,
    uploaded_file_path: str | Path,
    original_name: str,
    user: Any,
    description: str = "",
    batch_size: int = 1000,
    progress: ProgressCallback | None = None,
) -> SeedPromptSet:
    """Create a seed prompt set from .txt (optional `### Instruction:` first line) or .jsonl; all or nothing."""
    _check_batch_size(batch_size)
    prompt_set = SeedPromptSet(name=name, description=description, created_by=user)
    prompt_set.full_clean()
    records = parsers.read_seed_prompts(
        Path(uploaded_file_path), file_name=original_name, max_bytes=_max_upload_bytes(), progress=progress
    )
    with transaction.atomic():
        prompt_set.save()
        position = 0
        for batch in _batches(records, batch_size):
            prompts = []
            for record in batch:
                if isinstance(record, parsers.InstructionRecord):
                    prompt_set.instruction = record.text
                    continue
                prompts.append(SeedPrompt(prompt_set=prompt_set, position=position, text=record.text, meta=record.meta))
                position += 1
            SeedPrompt.objects.bulk_create(prompts)
            _forget_logged_queries(SeedPrompt)
        prompt_set.prompt_count = position
        prompt_set.save(update_fields=["instruction", "prompt_count", "updated_at"])
    return prompt_set


# ---------------------------------------------------------------- few-shot sets


def few_shot_set_import(
    *,
    name: str,
    uploaded_file_path: str | Path,
    original_name: str,
    user: Any,
    kind: str = FewShotSet.Kind.QA,
    description: str = "",
    batch_size: int = 1000,
    progress: ProgressCallback | None = None,
) -> FewShotSet:
    """Create a few-shot set: QA triples from JSONL, or a demonstration prompt (.txt, dialogues split by `-----`)."""
    _check_batch_size(batch_size)
    few_shot_set = FewShotSet(name=name, kind=kind, description=description, created_by=user)
    few_shot_set.full_clean()
    path = Path(uploaded_file_path)
    with transaction.atomic():
        few_shot_set.save()
        if kind == FewShotSet.Kind.DEMONSTRATION:
            prompt = parsers.read_demonstration_prompt(path, file_name=original_name, max_bytes=_max_upload_bytes())
            few_shot_set.preamble = prompt.preamble
            examples: Iterable[FewShotExample] = (
                FewShotExample(
                    few_shot_set=few_shot_set,
                    position=position,
                    context=dialogue.text,
                    meta={"source": dialogue.source},
                )
                for position, dialogue in enumerate(prompt.dialogues)
            )
        else:
            records = parsers.read_qa_examples(
                path, file_name=original_name, max_bytes=_max_upload_bytes(), progress=progress
            )
            examples = (
                FewShotExample(
                    few_shot_set=few_shot_set,
                    position=position,
                    context=record.context,
                    question=record.question,
                    answer=record.answer,
                    meta={**record.meta, "source": record.source},
                )
                for position, record in enumerate(records)
            )
        count = 0
        for batch in _batches(examples, batch_size):
            FewShotExample.objects.bulk_create(batch)
            count += len(batch)
            _forget_logged_queries(FewShotExample)
        few_shot_set.example_count = count
        few_shot_set.save(update_fields=["preamble", "example_count", "updated_at"])
    return few_shot_set


# ---------------------------------------------------------------- rubrics


def _clean_configurations(configurations: Any) -> list[Any]:
    """Response configurations, best first: each a non-empty string or a JSON object."""
    if configurations in (None, ""):
        return []
    if not isinstance(configurations, list):
        raise ValidationError({"configurations": "Give a JSON list, best configuration first."})
    for index, item in enumerate(configurations, start=1):
        if isinstance(item, str) and item.strip():
            continue
        if isinstance(item, dict) and item:
            continue
        raise ValidationError({"configurations": f"Item {index} must be a non-empty string or JSON object."})
    return configurations


def rubric_create(
    *, name: str, user: Any, criteria: str = "", guidelines: str = "", configurations: list[Any] | None = None
) -> Rubric:
    """A new rubric: judging criteria, annotator guidelines, and response configurations in quality order."""
    rubric = Rubric(
        name=name,
        criteria=criteria,
        guidelines=guidelines,
        configurations=_clean_configurations(configurations),
        created_by=user,
    )
    rubric.full_clean()
    rubric.save()
    return rubric


def rubric_update(
    *, rubric: Rubric, name: str, criteria: str = "", guidelines: str = "", configurations: list[Any] | None = None
) -> Rubric:
    """Replace a rubric's name, criteria, guidelines and configurations."""
    rubric.name = name
    rubric.criteria = criteria
    rubric.guidelines = guidelines
    rubric.configurations = _clean_configurations(configurations)
    rubric.full_clean()
    rubric.save()
    return rubric


# ---------------------------------------------------------------- training datasets


def dataset_import(
    *,
    name: str,
    purpose: str,
    uploaded_file_path: str | Path,
    original_name: str,
    batch_size: int = 1000,
    progress: ProgressCallback | None = None,
) -> Any:
    """Import an SFT or preference dataset as an artifact (JSONL + parquet) that training runs can use.

    Rows stream from the upload into the artifact files in batches; a bad row anywhere removes the
    partly written files and raises ImportProblem, so nothing is registered and nothing is left behind.
    """
    import shutil
    import uuid

    import pyarrow as pa
    import pyarrow.parquet as pq

    from webapp.runs.models import Artifact

    _check_batch_size(batch_size)
    kind = Artifact.Kind.SFT if purpose == "sft" else Artifact.Kind.PREFERENCES
    if Artifact.objects.filter(run=None, name=name).exists():
        raise ValidationError({"name": f"A dataset named “{name}” already exists; choose another name."})
    directory = Path(settings.ARTIFACT_ROOT) / "datasets" / uuid.uuid4().hex
    directory.mkdir(parents=True)
    jsonl_path, parquet_path = directory / "data.jsonl", directory / "data.parquet"
    records = parsers.read_training_rows(
        Path(uploaded_file_path), file_name=original_name, purpose=purpose, max_bytes=_max_upload_bytes(), progress=progress
    )
    writer: pq.ParquetWriter | None = None
    row_count = 0
    try:
        with jsonl_path.open("w", encoding="utf-8") as jsonl:
            for batch in _batches(records, batch_size):
                for record in batch:
                    jsonl.write(json.dumps(record, ensure_ascii=False) + "\n")
                try:
                    table = pa.Table.from_pylist(batch, schema=writer.schema if writer else None)
                except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
                    raise ImportProblem(
                        original_name, None, None,
                        f"rows {row_count + 1}-{row_count + len(batch)} change a field's type from earlier rows ({error})",
                    ) from None
                if writer is None:
                    writer = pq.ParquetWriter(parquet_path, table.schema)
                writer.write_table(table)
                row_count += len(batch)
        if writer is not None:
            writer.close()
            writer = None
        with transaction.atomic():
            from webapp.runs.services import artifact_register

            return artifact_register(run=None, name=name, kind=kind, jsonl_path=jsonl_path, parquet_path=parquet_path)
    except BaseException:
        if writer is not None:
            writer.close()
        shutil.rmtree(directory, ignore_errors=True)
        raise
