"""Registry entries whose directories hold the real SmolLM2 tokenizer with or without its chat template.

A base model (no chat template) and an instruct model differ in the web process only by their
tokenizer files; the weights are not needed to choose a prompt format, so only those files are copied.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from webapp.registry.models import ModelEntry

TOKENIZER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json")


def tokenizer_model(source_dir: Path, target_dir: Path, name: str, *, chat_template: bool) -> ModelEntry:
    """A local registry entry at `target_dir`: SmolLM2's config and tokenizer, its chat template only if asked."""
    target_dir.mkdir(parents=True)
    for file_name in TOKENIZER_FILES:
        shutil.copy(source_dir / file_name, target_dir / file_name)
    if chat_template:
        shutil.copy(source_dir / "chat_template.jinja", target_dir / "chat_template.jinja")
    return ModelEntry.objects.create(name=name, source=ModelEntry.Source.LOCAL, path=str(target_dir))
