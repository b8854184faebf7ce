"""`Artifact` moves from the runs app to the library; its table stays `runs_artifact` and is not touched.

State only: the table, its constraint and the foreign keys to it are already in the database. The
content type is renamed so the admin's permissions and history follow the model (on a fresh
database there is none yet, and this does nothing).
"""

import django.db.models.deletion
from django.db import migrations, models


def _content_type_move(apps, schema_editor, *, source: str, target: str) -> None:  # type: ignore[no-untyped-def]
    """Relabel the model's content type, unless the target one exists already (a database migrated
    part way with this code, where post_migrate created it): then the old one is left as it was."""
    content_types = apps.get_model("contenttypes", "ContentType").objects.using(schema_editor.connection.alias)
    if not content_types.filter(app_label=target, model="artifact").exists():
        content_types.filter(app_label=source, model="artifact").update(app_label=target)


def content_type_to_library(apps, schema_editor):  # type: ignore[no-untyped-def]
    _content_type_move(apps, schema_editor, source="runs", target="library")


def content_type_to_runs(apps, schema_editor):  # type: ignore[no-untyped-def]
    _content_type_move(apps, schema_editor, source="library", target="runs")


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("library", "0003_import_staging"),
        ("runs", "0005_run_kind_from_registry"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Artifact",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("name", models.CharField(max_length=200)),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("generations", "Generations"),
                                    ("queries", "Queries"),
                                    ("sft", "SFT dataset"),
                                    ("proposals", "Proposals"),
                                    ("comparisons", "Comparisons"),
                                    ("preferences", "Preferences"),
                                    ("judgments", "Judgments"),
                                    ("scorer_pairs", "Scorer pairs"),
                                    ("aggregations", "Aggregations (proposals, layers, final answers)"),
                                ],
                                max_length=30,
                            ),
                        ),
                        ("jsonl_path", models.CharField(max_length=1000)),
                        ("parquet_path", models.CharField(blank=True, max_length=1000)),
                        ("row_count", models.PositiveIntegerField(default=0)),
                        ("columns", models.JSONField(blank=True, default=list)),
                        ("preview", models.JSONField(blank=True, default=list)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "run",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="artifacts",
                                to="runs.pipelinerun",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "runs_artifact",
                        "ordering": ["-created_at"],
                        "constraints": [models.UniqueConstraint(fields=("run", "name"), name="artifact_name_per_run")],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_type_to_library, content_type_to_runs),
    ]
