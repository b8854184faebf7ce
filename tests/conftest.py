"""Fixtures shared by the whole suite: users per role. Heavier fixtures live in tests/fixtures/."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# Results must not depend on which CPU the suite lands on: "auto" means float32 here, not the
# bfloat16 a host with AVX512-BF16 or AMX would pick (tests/pipelines/llm/test_cpu_dtype.py tests that choice).
os.environ.setdefault("REFINERY_CPU_DTYPE", "float32")

pytest_plugins = ["tests.fixtures.models", "tests.fixtures.services"]


@pytest.fixture
def make_user(django_user_model):
    def make(role: str = "researcher", username: str | None = None, **extra):
        name = username or f"{role}-{django_user_model.objects.count() + 1}"
        return django_user_model.objects.create_user(username=name, password="pw-for-tests-123", role=role, **extra)

    return make


@pytest.fixture
def researcher(make_user):
    return make_user("researcher")


@pytest.fixture
def annotator(make_user):
    return make_user("annotator")


@pytest.fixture
def admin_user(make_user):
    return make_user("admin", is_staff=True, is_superuser=True)


@pytest.fixture
def researcher_client(client, researcher):
    client.force_login(researcher)
    return client
