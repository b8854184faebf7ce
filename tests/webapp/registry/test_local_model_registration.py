"""Registering a local model directory: a malformed `*.safetensors` header is a form error naming the file, never a 500."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from django.urls import reverse

from webapp.registry.models import ModelEntry
from webapp.registry.services import SAFETENSORS_MAX_HEADER_BYTES

pytestmark = pytest.mark.django_db


def _model_directory(tmp_path: Path, weights: bytes) -> Path:
    directory = tmp_path / "model"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (directory / "model.safetensors").write_bytes(weights)
    return directory


def _header(header: object) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw


MALFORMED = {
    "shorter than the length prefix": b"\x01\x02\x03",
    "a header length of 2^63 (MemoryError when trusted)": struct.pack("<Q", 2**63) + b"{}",
    "a header length beyond the format's limit": struct.pack("<Q", SAFETENSORS_MAX_HEADER_BYTES + 1) + b"{}",
    "a header length past the end of the file": struct.pack("<Q", 1000) + b'{"a": 1}',
    "a header that is not JSON": struct.pack("<Q", 4) + b"\xff\xfe\x00x",
    "a header that is a JSON list": _header([1, 2, 3]),
    "a tensor without a shape": _header({"w": {"dtype": "F32", "data_offsets": [0, 4]}}),
    "a shape with a string": _header({"w": {"dtype": "F32", "shape": ["4"], "data_offsets": [0, 16]}}),
    "deeply nested JSON": struct.pack("<Q", 200_000) + b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("weights", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_safetensors_header_is_a_form_error_naming_the_file(researcher_client, tmp_path, weights):
    directory = _model_directory(tmp_path, weights)
    response = researcher_client.post(
        reverse("registry:register-local"),
        {"name": "broken", "path": str(directory), "backend": "transformers", "dtype": "float32"},
    )
    assert response.status_code == 400
    errors = response.context["local_form"].errors["path"]
    assert any(
        str(directory / "model.safetensors") in error and "not a valid safetensors file" in error for error in errors
    ), errors
    assert not ModelEntry.objects.filter(name="broken").exists()


def test_a_well_formed_header_registers_with_its_parameter_count(researcher_client, tmp_path):
    header = {
        "__metadata__": {"format": "pt"},
        "a": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]},
        "b": {"dtype": "F32", "shape": [5], "data_offsets": [48, 68]},
    }
    directory = _model_directory(tmp_path, _header(header) + b"\x00" * 68)
    response = researcher_client.post(
        reverse("registry:register-local"),
        {"name": "fine", "path": str(directory), "backend": "transformers", "dtype": "float32"},
    )
    assert response.status_code == 302
    assert ModelEntry.objects.get(name="fine").parameter_count == 17


def test_a_new_model_runs_in_auto_dtype_unless_the_form_says_otherwise(researcher_client, tmp_path):
    """auto: bfloat16 where the worker's CPU has the kernels and the KL check passes (pipelines/llm/cpu_dtype.py)."""
    page = researcher_client.get(reverse("registry:list"))
    assert b'<option value="auto" selected>' in page.content
    header = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    directory = _model_directory(tmp_path, _header(header) + b"\x00" * 8)
    response = researcher_client.post(
        reverse("registry:register-local"), {"name": "auto", "path": str(directory), "backend": "transformers", "dtype": "auto"}
    )
    assert response.status_code == 302
    assert ModelEntry.objects.get(name="auto").backend_spec()["dtype"] == "auto"


def test_the_bundled_model_is_registered_with_auto_dtype():
    from webapp.registry.services import model_ensure_embedded

    assert model_ensure_embedded().dtype == "auto"
