"""`Campaign.artifact` points at `Artifact`, which moved to the library; the column and its key are unchanged."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0001_initial"),
        ("library", "0004_artifact_from_runs"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="campaign",
                    name="artifact",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="annotation_campaigns",
                        to="library.artifact",
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
