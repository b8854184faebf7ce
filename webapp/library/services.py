"""Writes to the library: imports of corpora, seed prompts and few-shot sets, and the rubric editor.

An import reads its file as a stream and commits its rows in batches, each batch its own short
transaction, into a set marked STAGING: the default managers hide staged sets, so nothing of an
import is seen by any page, form or job until its last batch is in and the set is made READY in
one small final write. A bad record anywhere removes the staged set and its rows again, so a
refused file still changes nothing; and no import holds SQLite's single write lock for longer than
one batch, so logins, judgments and worker heartbeats never wait for a whole upload. Imports take
a path on disk, not an upload, so the same function can run in a web request or an RQ job.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connections, models, router, transaction
from django.db.models import F, Max
from django.utils import timezone

from .artifacts import artifact_save, dataset_file_summary
from .models import (
    Artifact,
    Corpus,
    Document,
    FewShotExample,
    FewShotSet,
    ImportedSet,
    ImportStatus,
    Rubric,
    SeedPrompt,
    SeedPromptSet,
)
from .parsers.corpus import DocumentRecord, read_corpus
from .parsers.datasets import read_training_rows
from .parsers.fewshot import read_demonstration_prompt, read_qa_examples
from .parsers.prompts import InstructionRecord, read_seed_prompts
from .parsers.reading import (
    MAX_JSON_NESTING,
    ImportProblem,
    ProgressCallback,
    SourceFile,
    first_nul_field,
    json_nesting_depth,
)

__all__ = [
    "CorpusImportResult",
    "corpus_append",
    "corpus_import",
    "corpus_import_files",
    "dataset_import",
    "few_shot_set_import",
    "rubric_create",
    "rubric_update",
    "seed_prompt_set_import",
    "staged_imports_remove_abandoned",
]

logger = logging.getLogger(__name__)

Item = TypeVar("Item")
TITLE_MAX = Document._meta.get_field("title").max_length
SOURCE_MAX = Document._meta.get_field("source").max_length
# A staged set whose last batch is older than this belongs to an import that died (its process was
# killed); the next import removes it, so it neither holds its name nor its rows for ever.
STAGING_ABANDONED_AFTER = timedelta(minutes=10)
REMOVE_CHUNK_ROWS = 5000
# A batch is also cut when its rows hold this much text, whatever its row count.
BATCH_MAX_CHARACTERS = 8 * 1024 * 1024


def _forget_logged_queries(model: type) -> None:
    """With DEBUG on, Django keeps the SQL of recent queries, batch values included; drop it per batch."""
    connection = connections[router.db_for_write(model)]
    if connection.queries_logged:
        connection.queries_log.clear()


def _max_upload_bytes() -> int:
    return settings.LIBRARY_MAX_UPLOAD_BYTES


def _max_document_bytes() -> int:
    return settings.LIBRARY_MAX_DOCUMENT_BYTES


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")


# ---------------------------------------------------------------- staging


CHILDREN: dict[type[ImportedSet], tuple[type[models.Model], str]] = {
    Corpus: (Document, "corpus"),
    SeedPromptSet: (SeedPrompt, "prompt_set"),
    FewShotSet: (FewShotExample, "few_shot_set"),
}


def _stage(staged: ImportedSet) -> None:
    """Validate and save a new set as STAGING; its name is checked against staged sets too."""
    model = type(staged)
    staged.status = ImportStatus.STAGING
    staged_imports_remove_abandoned()
    staged.full_clean()  # the default manager's unique check sees READY sets only
    if model.all_objects.filter(name=staged.name).exists():
        raise ValidationError(
            {"name": f"An import named “{staged.name}” is in progress; wait for it or choose another name."}
        )
    try:
        with transaction.atomic():
            staged.save()
    except IntegrityError:
        raise ValidationError({"name": f"“{staged.name}” was taken a moment ago; choose another name."}) from None


TEXT_FIELDS = ("text", "context", "question", "answer")


def _row_characters(row: models.Model) -> int:
    return sum(len(getattr(row, name, "") or "") for name in TEXT_FIELDS)


def _record_characters(record: dict[str, Any]) -> int:
    """Roughly how much text a dataset row holds: its top-level strings and chat message contents."""
    total = 0
    for value in record.values():
        if isinstance(value, str):
            total += len(value)
        elif isinstance(value, list):
            total += sum(len(str(message.get("content", ""))) for message in value if isinstance(message, dict))
    return total


def _batches_bounded(
    rows: Iterable[Item], size: int, max_characters: int, characters_of: Callable[[Item], int] = _row_characters
) -> Iterator[list[Item]]:
    """Batches of at most `size` rows that also end once they hold `max_characters` of text, so memory
    stays bounded when every document is near the per-document cap (1,000 of 16 MiB would be 16 GiB)."""
    batch: list[Item] = []
    characters = 0
    for row in rows:
        batch.append(row)
        characters += characters_of(row)
        if len(batch) >= size or characters >= max_characters:
            yield batch
            batch, characters = [], 0
    if batch:
        yield batch


def _insert_batches(staged: ImportedSet, rows: Iterable[models.Model], batch_size: int) -> int:
    """Insert rows in batches, each committed on its own and marking the staged set as alive."""
    child_model = CHILDREN[type(staged)][0]
    count = 0
    # The file is read here, outside any transaction.
    for batch in _batches_bounded(rows, batch_size, BATCH_MAX_CHARACTERS):
        with transaction.atomic():
            child_model.objects.bulk_create(batch)
            type(staged).all_objects.filter(pk=staged.pk).update(updated_at=timezone.now())
        count += len(batch)
        _forget_logged_queries(child_model)
    return count


def _publish(staged: ImportedSet, **fields: Any) -> None:
    """Make a staged set READY with its final counts, in one short write."""
    type(staged).all_objects.filter(pk=staged.pk).update(status=ImportStatus.READY, updated_at=timezone.now(), **fields)
    staged.refresh_from_db()


def _remove_staged(staged: ImportedSet) -> None:
    """Delete a staged set and its rows, a chunk of rows per transaction so no lock is held for long."""
    child_model, parent_field = CHILDREN[type(staged)]
    while True:
        with transaction.atomic():
            ids = list(
                child_model.objects.filter(**{parent_field: staged.pk}).values_list("pk", flat=True)[:REMOVE_CHUNK_ROWS]
            )
            if not ids:
                break
            child_model.objects.filter(pk__in=ids).delete()
    type(staged).all_objects.filter(pk=staged.pk, status=ImportStatus.STAGING).delete()


def _remove_staged_after_failure(staged: ImportedSet) -> None:
    """Undo a refused import; a failure to clean up is logged, never raised over the import's own error."""
    try:
        _remove_staged(staged)
    except Exception:
        logger.exception(
            "could not remove staged %s #%s; it is removed once abandoned", type(staged).__name__, staged.pk
        )


def staged_imports_remove_abandoned(*, older_than: timedelta = STAGING_ABANDONED_AFTER) -> int:
    """Remove staged sets whose import stopped committing batches long ago (its process died); how many."""
    cutoff = timezone.now() - older_than
    removed = 0
    for model in CHILDREN:
        for staged in model.all_objects.filter(status=ImportStatus.STAGING, updated_at__lt=cutoff):
            _remove_staged(staged)
            removed += 1
    return removed


# ---------------------------------------------------------------- corpora


@dataclass(frozen=True)
class CorpusImportResult:
    """What an import or append did: the corpus, the documents added and the duplicates it found.

    A duplicate is a document whose text is exactly that of an earlier document of the same upload;
    duplicates are kept unless the import was asked to drop them, and counted either way.
    """

    corpus: Corpus
    added_documents: int
    duplicate_documents: int
    duplicates_dropped: bool

    def summary(self, original_name: str) -> str:
        """One sentence for the result page."""
        text = f"Added {self.added_documents:,} documents from {original_name} to “{self.corpus}”."
        if self.duplicate_documents:
            plural = "s" if self.duplicate_documents != 1 else ""
            if self.duplicates_dropped:
                text += (
                    f" {self.duplicate_documents:,} duplicate document{plural} (same text as an earlier one) dropped."
                )
            else:
                text += f" {self.duplicate_documents:,} duplicate document{plural} (same text as an earlier one) kept."
        return text


@dataclass
class _DocumentCounts:
    added: int = 0
    characters: int = 0
    duplicates: int = 0


def corpus_import(
    *,
    name: str,
    uploaded_file_path: str | Path,
    original_name: str,
    user: Any,
    description: str = "",
    drop_duplicates: bool = False,
    batch_size: int = 1000,
    progress: ProgressCallback | None = None,
) -> CorpusImportResult:
    """Create a corpus from one file (.jsonl, .txt, .zip of .txt, .parquet); nothing is kept if any record is bad."""
    return corpus_import_files(
        name=name,
        files=[SourceFile(Path(uploaded_file_path), original_name)],
        user=user,
        description=description,
        drop_duplicates=drop_duplicates,
        batch_size=batch_size,
        progress=progress,
    )


def corpus_import_files(
    *,
    name: str,
    files: Sequence[SourceFile],
    user: Any,
    description: str = "",
    drop_duplicates: bool = False,
    batch_size: int = 1000,
    progress: ProgressCallback | None = None,
) -> CorpusImportResult:
    """Create one corpus from several files, their documents in the order the files are given.

    Each file is read under the same limits as a single upload (its size, each document's size, an
    archive's unpacked size). All or nothing: a bad record in any file removes the staged corpus, so
    nothing is created, and the refusal names the file (and line or entry) it is in.
    """
    _check_batch_size(batch_size)
    if not files:
        raise ValueError("corpus_import_files needs at least one file")
    corpus = Corpus(name=name, description=description, source=_joined_names(files), created_by=user)
    _stage(corpus)
    try:
        counts = _corpus_add_documents(
            corpus=corpus, files=files, batch_size=batch_size, progress=progress, drop_duplicates=drop_duplicates
        )
        _publish(corpus, document_count=counts.added, character_count=counts.characters)
    except BaseException:
        _remove_staged_after_failure(corpus)
        raise
    return CorpusImportResult(corpus, counts.added, counts.duplicates, drop_duplicates)


def _joined_names(files: Sequence[SourceFile]) -> str:
    """The files' names for the corpus's `source` and the result message, cut to fit the column."""
    return "; ".join(file.original_name for file in files)[: Corpus._meta.get_field("source").max_length]


def corpus_append(
    *,
    corpus: Corpus,
    uploaded_file_path: str | Path,
    original_name: str,
    drop_duplicates: bool = False,
    batch_size: int = 1000,
    progress: ProgressCallback | None = None,
) -> CorpusImportResult:
    """Add the documents of one more file after the corpus's last document; all of them or none.

    The documents are staged under a hidden corpus of their own, then moved into this one (after its
    last position at that moment) in one statement, so a refused file leaves the corpus as it was.
    """
    _check_batch_size(batch_size)
    staging = Corpus(
        name=f"(appending {original_name} to corpus #{corpus.pk}, {uuid.uuid4().hex[:12]})"[-200:],
        source=original_name,
        created_by=corpus.created_by,
    )
    _stage(staging)
    try:
        counts = _corpus_add_documents(
            corpus=staging,
            files=[SourceFile(Path(uploaded_file_path), original_name)],
            batch_size=batch_size,
            progress=progress,
            drop_duplicates=drop_duplicates,
        )
        with transaction.atomic():
            # Lock the corpus row so two appends cannot pick the same positions.
            locked = Corpus.objects.select_for_update().get(pk=corpus.pk)
            last_position = locked.documents.aggregate(last=Max("position"))["last"]
            first_position = 0 if last_position is None else last_position + 1
            Document.objects.filter(corpus=staging).update(corpus=locked, position=F("position") + first_position)
            sources = [part for part in (locked.source, original_name) if part]
            locked.source = "; ".join(sources)[: Corpus._meta.get_field("source").max_length]
            locked.document_count += counts.added
            locked.character_count += counts.characters
            locked.save(update_fields=["source", "document_count", "character_count", "updated_at"])
            Corpus.all_objects.filter(pk=staging.pk).delete()
    except BaseException:
        _remove_staged_after_failure(staging)
        raise
    corpus.refresh_from_db()
    return CorpusImportResult(corpus, counts.added, counts.duplicates, drop_duplicates)


def _corpus_add_documents(
    *,
    corpus: Corpus,
    files: Sequence[SourceFile],
    batch_size: int,
    progress: ProgressCallback | None,
    drop_duplicates: bool,
) -> _DocumentCounts:
    """Stream the files' documents, one file after another, into the (staged) corpus from position 0.

    A duplicate is one whose text is that of an earlier document of any of the files; counted, maybe dropped.
    """
    counts = _DocumentCounts()
    # 16-byte digests, not texts: about 80 bytes of memory per document, whatever its size.
    seen_digests: set[bytes] = set()

    def records() -> Iterator[DocumentRecord]:
        for source_file in files:
            yield from read_corpus(
                source_file.path,
                file_name=source_file.original_name,
                max_bytes=_max_upload_bytes(),
                max_document_bytes=_max_document_bytes(),
                max_compression_ratio=settings.LIBRARY_MAX_COMPRESSION_RATIO,
                progress=progress,
            )

    def documents() -> Iterator[Document]:
        for record in records():
            digest = hashlib.blake2b(record.text.encode("utf-8"), digest_size=16).digest()
            if digest in seen_digests:
                counts.duplicates += 1
                if drop_duplicates:
                    continue
            seen_digests.add(digest)
            yield Document(
                corpus=corpus,
                position=counts.added,
                title=record.title[:TITLE_MAX],
                text=record.text,
                source=record.source[:SOURCE_MAX],
                meta=record.meta,
            )
            counts.added += 1
            counts.characters += len(record.text)

    _insert_batches(corpus, documents(), batch_size)
    return counts


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
    records = read_seed_prompts(
        Path(uploaded_file_path),
        file_name=original_name,
        max_bytes=_max_upload_bytes(),
        max_document_bytes=_max_document_bytes(),
        progress=progress,
    )
    _stage(prompt_set)

    def prompts() -> Iterator[SeedPrompt]:
        position = 0
        for record in records:
            if isinstance(record, InstructionRecord):
                prompt_set.instruction = record.text
                continue
            yield SeedPrompt(prompt_set=prompt_set, position=position, text=record.text, meta=record.meta)
            position += 1

    try:
        count = _insert_batches(prompt_set, prompts(), batch_size)
        _publish(prompt_set, instruction=prompt_set.instruction, prompt_count=count)
    except BaseException:
        _remove_staged_after_failure(prompt_set)
        raise
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
    path = Path(uploaded_file_path)
    _stage(few_shot_set)
    try:
        if kind == FewShotSet.Kind.DEMONSTRATION:
            prompt = read_demonstration_prompt(
                path, file_name=original_name, max_bytes=_max_upload_bytes(), max_document_bytes=_max_document_bytes()
            )
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
            records = read_qa_examples(
                path,
                file_name=original_name,
                max_bytes=_max_upload_bytes(),
                max_document_bytes=_max_document_bytes(),
                progress=progress,
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
        count = _insert_batches(few_shot_set, examples, batch_size)
        _publish(few_shot_set, preamble=few_shot_set.preamble, example_count=count)
    except BaseException:
        _remove_staged_after_failure(few_shot_set)
        raise
    return few_shot_set


# ---------------------------------------------------------------- rubrics


def _clean_configurations(configurations: Any) -> list[Any]:
    """Response configurations, best first: each a non-empty string or a JSON object."""
    if configurations in (None, ""):
        return []
    if not isinstance(configurations, list):
        raise ValidationError({"configurations": "Give a JSON list, best configuration first."})
    if json_nesting_depth(configurations) > MAX_JSON_NESTING:
        raise ValidationError(
            {"configurations": f"The JSON is nested more than {MAX_JSON_NESTING} levels deep; flatten it."}
        )
    if first_nul_field(configurations)[0]:
        raise ValidationError(
            {"configurations": "A configuration holds a NUL character (\\u0000), which the database cannot store."}
        )
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
) -> Artifact:
    """Import an SFT or preference dataset as an artifact (JSONL + parquet) that training runs can use.

    Rows stream from the upload into the artifact files in batches; a bad row anywhere removes the
    partly written files and raises ImportProblem, so nothing is registered and nothing is left behind.
    """
    import shutil
    import uuid

    import pyarrow as pa
    import pyarrow.parquet as pq

    _check_batch_size(batch_size)
    kind = Artifact.Kind.SFT if purpose == "sft" else Artifact.Kind.PREFERENCES
    if Artifact.objects.filter(run=None, name=name).exists():
        raise ValidationError({"name": f"A dataset named “{name}” already exists; choose another name."})
    directory = Path(settings.ARTIFACT_ROOT) / "datasets" / uuid.uuid4().hex
    directory.mkdir(parents=True)
    jsonl_path, parquet_path = directory / "data.jsonl", directory / "data.parquet"
    records = read_training_rows(
        Path(uploaded_file_path),
        file_name=original_name,
        purpose=purpose,
        max_bytes=_max_upload_bytes(),
        max_document_bytes=_max_document_bytes(),
        progress=progress,
    )
    writer: pq.ParquetWriter | None = None
    row_count = 0
    try:
        with jsonl_path.open("w", encoding="utf-8") as jsonl:
            for batch in _batches_bounded(records, batch_size, BATCH_MAX_CHARACTERS, _record_characters):
                for record in batch:
                    jsonl.write(json.dumps(record, ensure_ascii=False) + "\n")
                try:
                    table = pa.Table.from_pylist(batch, schema=writer.schema if writer else None)
                except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
                    raise ImportProblem(
                        original_name,
                        None,
                        None,
                        f"rows {row_count + 1}-{row_count + len(batch)} change a field's type from earlier rows ({error})",
                    ) from None
                if writer is None:
                    writer = pq.ParquetWriter(parquet_path, table.schema)
                writer.write_table(table)
                row_count += len(batch)
        if writer is not None:
            writer.close()
            writer = None
        summary = dataset_file_summary(jsonl_path)
        with transaction.atomic():
            return artifact_save(
                run=None, name=name, kind=kind, jsonl_path=jsonl_path, parquet_path=parquet_path, summary=summary
            )
    except BaseException:
        if writer is not None:
            writer.close()
        shutil.rmtree(directory, ignore_errors=True)
        raise
