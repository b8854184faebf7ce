"""`trained_on` points at `Artifact`, which moved to the library; the column and its key are unchanged."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("library", "0004_artifact_from_runs"),
        ("registry", "0002_lineage_and_task"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="modelentry",
                    name="trained_on",
                    field=models.ForeignKey(
                        blank=True,
                        help_text="The dataset this checkpoint was trained on.",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="trained_models",
                        to="library.artifact",
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
