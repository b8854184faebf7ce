"""Library forms: they check the shape of what was submitted; services check the files and the rules."""

from __future__ import annotations

from django import forms

from . import parsers
from .models import FewShotSet


class UploadForm(forms.Form):
    """A named upload: the file is parsed by a service, so the form only checks that one was given."""

    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    file = forms.FileField(allow_empty_file=True)


class CorpusUploadForm(UploadForm):
    file = forms.FileField(
        allow_empty_file=True,  # the importer names an empty file itself, with its name
        help_text=(
            'JSONL (one object a line with a "text" or "article" field, optional "title"), a .txt file '
            '(one document), a .zip of .txt files, or parquet with a "text" or "article" column.'
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ",".join(parsers.CORPUS_EXTENSIONS)}),
    )


class CorpusAppendForm(forms.Form):
    file = forms.FileField(
        allow_empty_file=True,  # the importer names an empty file itself, with its name
        help_text="Another file in any corpus format; its documents go after the last one.",
        widget=forms.ClearableFileInput(attrs={"accept": ",".join(parsers.CORPUS_EXTENSIONS)}),
    )


class SeedPromptSetUploadForm(UploadForm):
    file = forms.FileField(
        allow_empty_file=True,  # the importer names an empty file itself, with its name
        help_text=(
            'A .txt file with one prompt a line (the first line may be "### Instruction: ..."), '
            'or JSONL with a "prompt" or "text" field.'
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ",".join(parsers.SEED_PROMPT_EXTENSIONS)}),
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
        widget=forms.ClearableFileInput(attrs={"accept": ",".join(parsers.DATASET_EXTENSIONS)}),
    )


class RubricForm(forms.Form):
    name = forms.CharField(max_length=200)
    criteria = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        required=False,
        help_text="What makes one response better than another.",
    )
    guidelines = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}), required=False, help_text="Shown to annotators and LLM judges."
    )
    configurations = forms.JSONField(
        required=False,
        initial=list,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text='A JSON list, best first, of response configurations (strings or objects), e.g. ["large model, 3 shots", "small model, 0 shots"].',
    )
