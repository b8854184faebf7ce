"""Schema-driven fuzzing of the whole API (schemathesis against the live OpenAPI schema).

Every operation gets generated inputs, valid and invalid, through the real WSGI application with a
researcher's token: no input may give a 500, and every response must match the schema (its status
code, content type and body). Objects exist for some ids (a run with its artifact's files, a model,
a campaign's inputs), so generated ids reach both found and missing objects. Bounded: a few
examples an operation, so the whole test stays well under a minute and a half.

Figures: `pytest tests/webapp/api/test_fuzz.py -s` prints the operations and cases it ran.
"""

from __future__ import annotations

import json
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.generate_runs import prompt_set_of, small_generate_config
from webapp.api.api import api
from webapp.api.tokens import token_create
from webapp.library.models import Artifact
from webapp.runs import services

SCHEMA = schemathesis.openapi.from_dict(api.get_openapi_schema(path_params={}))
SCHEMA.app = get_wsgi_application()
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 12
CASES: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def report_figures():
    yield
    print(f"\nfuzzing: {len(CASES)} operations, {sum(CASES.values())} generated cases")


@pytest.fixture
def researcher_secret(make_user, settings, tmp_path):
    """A researcher's token, generous rate limits, and objects for generated ids to find."""
    settings.REFINERY_API_RUN_CREATE_RATE = "100000/hour"
    settings.REFINERY_API_UPLOAD_RATE = "100000/hour"
    settings.LIBRARY_MAX_UPLOAD_BYTES = 64 * 1024
    user = make_user("researcher")
    run = services.run_create(user=user, kind="generate", config=small_generate_config(prompt_set_of(2, "fuzz")))
    rows = [{"prompt": "p", "response": "r"}]
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text(json.dumps(rows[0]) + "\n")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "rows.parquet")
    services.artifact_register(
        run=run, name="rows", kind=Artifact.Kind.SFT, jsonl_path=jsonl, parquet_path=tmp_path / "rows.parquet"
    )
    return token_create(user=user, name="fuzz").secret


@pytest.fixture
def in_test_transaction():
    """The raw WSGI app, like Django's test client, must not close the test's connection after a request."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.mark.django_db
@SCHEMA.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_generated_input_gives_a_500_and_every_response_matches_the_schema(
    case, researcher_secret, in_test_transaction
):
    CASES[case.operation.label] += 1
    case.call_and_validate(headers={"Authorization": f"Bearer {researcher_secret}"}, checks=CHECKS)
