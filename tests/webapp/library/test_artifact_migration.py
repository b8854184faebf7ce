"""`Artifact` moved from the runs app to the library by state-only migrations: a database migrated
before the move goes forward with its table, rows and foreign keys as they were."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from webapp.library.models import Artifact
from webapp.registry.models import ModelEntry

BEFORE_THE_MOVE = [
    ("library", "0003_import_staging"),
    ("runs", "0005_run_kind_from_registry"),
    ("registry", "0002_lineage_and_task"),
    ("annotation", "0001_initial"),
    ("evaluation", "0001_initial"),
]


@pytest.mark.django_db(transaction=True)
def test_artifact_rows_and_keys_survive_the_move_to_the_library() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_THE_MOVE)
    old = executor.loader.project_state(BEFORE_THE_MOVE).apps
    run = old.get_model("runs", "PipelineRun").objects.create(kind="generate", name="before the move")
    artifact = old.get_model("runs", "Artifact").objects.create(
        run=run, name="generations", kind="generations", jsonl_path="/tmp/g.jsonl", row_count=3
    )
    entry = old.get_model("registry", "ModelEntry").objects.create(name="trained before", trained_on=artifact)
    old_content_type = old.get_model("contenttypes", "ContentType").objects.get_or_create(
        app_label="runs", model="artifact"
    )[0]

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    moved = Artifact.objects.get(pk=artifact.pk)
    assert (moved.name, moved.run_id, moved.row_count) == ("generations", run.pk, 3)
    assert ModelEntry.objects.get(pk=entry.pk).trained_on == moved
    assert Artifact._meta.db_table == "runs_artifact"
    assert ContentType.objects.get(pk=old_content_type.pk).app_label == "library"
