"""What each library upload form saves: one importer per form, shared by the pages and the JSON API.

An importer takes the form's cleaned data, the uploaded files (already on disk, already held to the
size limits by `uploads.upload_import`) and the user, and returns the saved object with the sentence
the page shows. The API returns the object and ignores the sentence.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model

from . import services
from .parsers.reading import SourceFile


def import_corpus(data: dict[str, Any], files: list[SourceFile], user: Any) -> tuple[Model, str]:
    """CorpusUploadForm: one corpus from one or more files, in the order given."""
    result = services.corpus_import_files(
        name=data["name"],
        description=data["description"],
        files=files,
        user=user,
        drop_duplicates=data["drop_duplicates"],
    )
    return result.corpus, result.summary(", ".join(file.original_name for file in files))


def import_seed_prompt_set(data: dict[str, Any], files: list[SourceFile], user: Any) -> tuple[Model, str]:
    """SeedPromptSetUploadForm (one file)."""
    [upload] = files
    prompt_set = services.seed_prompt_set_import(
        name=data["name"],
        description=data["description"],
        uploaded_file_path=upload.path,
        original_name=upload.original_name,
        user=user,
    )
    return prompt_set, f"Imported {upload.original_name} into “{prompt_set}”."


def import_few_shot_set(data: dict[str, Any], files: list[SourceFile], user: Any) -> tuple[Model, str]:
    """FewShotSetUploadForm (one file)."""
    [upload] = files
    few_shot_set = services.few_shot_set_import(
        name=data["name"],
        kind=data["kind"],
        description=data["description"],
        uploaded_file_path=upload.path,
        original_name=upload.original_name,
        user=user,
    )
    return few_shot_set, f"Imported {upload.original_name} into “{few_shot_set}”."


def import_dataset(data: dict[str, Any], files: list[SourceFile], user: Any) -> tuple[Model, str]:
    """DatasetUploadForm (one file)."""
    [upload] = files
    dataset = services.dataset_import(
        name=data["name"], purpose=data["purpose"], uploaded_file_path=upload.path, original_name=upload.original_name
    )
    return dataset, f"Imported {upload.original_name} into “{dataset}”."
