"""Library forms: they check the shape of what was submitted; services check the files and the rules."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput

from .models import FewShotSet
from .parsers.corpus import CORPUS_EXTENSIONS
from .parsers.datasets import DATASET_EXTENSIONS
from .parsers.prompts import SEED_PROMPT_EXTENSIONS
from .parsers.reading import MAX_JSON_NESTING, json_nesting_depth


class UploadForm(forms.Form):
    """A named upload: the file is parsed by a service, so the form only checks that one was given."""

    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    file = forms.FileField(allow_empty_file=True)


# One corpus from at most this many files in one upload (each held to the upload size limit).
CORPUS_UPLOAD_MAX_FILES = 20


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file field that takes one or more files and cleans to the list of them, at most `max_files`."""

    def __init__(self, *args: Any, max_files: int, **kwargs: Any) -> None:
        self.max_files = max_files
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        chosen = data if isinstance(data, list | tuple) else [data] if data else []
        if not chosen and self.required:
            raise ValidationError(self.error_messages["required"], code="required")
        if len(chosen) > self.max_files:
            raise ValidationError(
                f"{len(chosen)} files were chosen; upload at most {self.max_files} at once "
                "(or zip the .txt files into one archive).",
                code="too_many_files",
            )
        cleaned = []
        for item in chosen:
            cleaned.append(super().clean(item, initial))
        return cleaned


class CorpusUploadForm(UploadForm):
    file = MultipleFileField(
        max_files=CORPUS_UPLOAD_MAX_FILES,
        label="Files",
        allow_empty_file=True,  # the importer names an empty file itself, with its name
        help_text=(
            f"One or more files (up to {CORPUS_UPLOAD_MAX_FILES}), their documents in one corpus, in the order "
            "chosen: JSONL (one object "
            'a line with a "text" or "article" field, optional "title"), .txt files (one document each), '
            '.zip archives of .txt files, or parquet with a "text" or "article" column. '
            "If any file is refused, nothing is imported."
        ),
        widget=MultipleFileInput(attrs={"accept": ",".join(CORPUS_EXTENSIONS)}),
    )

    drop_duplicates = forms.BooleanField(
        required=False,
        label="Drop duplicate documents",
        help_text="A document whose text is exactly that of an earlier one in the files is counted either way; "
        "ticked, it is also left out.",
    )


class CorpusAppendForm(forms.Form):
    file = forms.FileField(
        allow_empty_file=True,  # the importer names an empty file itself, with its name
        help_text="Another file in any corpus format; its documents go after the last one.",
        widget=forms.ClearableFileInput(attrs={"accept": ",".join(CORPUS_EXTENSIONS)}),
    )
    drop_duplicates = forms.BooleanField(
        required=False,
        label="Drop duplicate documents",
        help_text="Duplicates within this file (same text as an earlier document of it) are counted; ticked, left out.",
    )


class SeedPromptSetUploadForm(UploadForm):
    file = forms.FileField(
        allow_empty_file=True,  # the importer names an empty file itself, with its name
        help_text=(
            'A .txt file with one prompt a line (the first line may be "### Instruction: ..."), '
            'or JSONL with a "prompt" or "text" field.'
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ",".join(SEED_PROMPT_EXTENSIONS)}),
    )


class FewShotSetUploadForm(UploadForm):
    kind = forms.ChoiceField(choices=FewShotSet.Kind.choices, initial=FewShotSet.Kind.QA)
    file = forms.FileField(
        allow_empty_file=True,  # the importer names an empty file itself, with its name
        help_text=(
            'QA: JSONL with "context", "question" and "answer" on every line. Demonstration: a .txt '
            'preamble followed by dialogues, each after a blank line and a "-----" line.'
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".jsonl,.txt"}),
    )
    field_order = ["name", "kind", "description", "file"]


class DatasetUploadForm(forms.Form):
    """A training dataset (SFT or preference pairs) imported as an artifact the trainers can use."""

    name = forms.CharField(max_length=200)
    purpose = forms.ChoiceField(
        choices=[("sft", "SFT (prompt → response)"), ("preference", "Preference pairs (prompt, chosen, rejected)")],
        initial="sft",
    )
    file = forms.FileField(
        allow_empty_file=True,  # the importer names an empty file itself, with its name
        help_text=(
            'JSONL. SFT: "prompt" and "response" (or "messages", or "question" and "answer") on every line. '
            'Preference: "prompt", "chosen" and "rejected" (or SPIN\'s "real" and "generated").'
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ",".join(DATASET_EXTENSIONS)}),
    )


class NestingLimitedJSONField(forms.JSONField):
    """A JSON form field that refuses values nested deeper than `MAX_JSON_NESTING` as a form error.

    Django's own field lets `json.loads` raise RecursionError on a deeply nested value (an HTTP 500),
    and a value a little shallower than the recursion limit would fail later, when saved or shown.
    """

    def to_python(self, value: Any) -> Any:
        try:
            converted = super().to_python(value)
        except RecursionError:
            raise ValidationError(self._too_deep_message(), code="too_deep") from None
        if json_nesting_depth(converted) > MAX_JSON_NESTING:
            raise ValidationError(self._too_deep_message(), code="too_deep")
        return converted

    def bound_data(self, data: Any, initial: Any) -> Any:
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return InvalidJSONInput(data)

    def prepare_value(self, value: Any) -> Any:
        try:
            return super().prepare_value(value)
        except RecursionError:
            return InvalidJSONInput(json.dumps(None))

    def _too_deep_message(self) -> str:
        return (
            f"The JSON is nested more than {MAX_JSON_NESTING} levels deep; "
            "give a flat list of strings or simple objects."
        )


class RubricDetailsForm(forms.Form):
    """A rubric's name and texts: the rubric page edits its configurations with ALMoST's structured editor."""

    name = forms.CharField(max_length=200)
    criteria = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        required=False,
        help_text="What makes one response better than another.",
    )
    guidelines = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}), required=False, help_text="Shown to annotators and LLM judges."
    )


class RubricForm(RubricDetailsForm):
    """A whole rubric, its configurations as JSON: for API clients, which send the list as data."""

    configurations = NestingLimitedJSONField(
        required=False,
        initial=list,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text='A JSON list, best first, of response configurations (strings or objects), e.g. ["large model, 3 shots", "small model, 0 shots"].',
    )
