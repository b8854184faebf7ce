"""`Artifact` now lives in the library (`library.0004_artifact_from_runs`); the runs app forgets it.

State only: the table `runs_artifact` stays, owned by the library's model. Runs after every foreign
key to it has been pointed at `library.Artifact`.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0002_campaign_library_artifact"),
        ("evaluation", "0002_comparisons_library_artifact"),
        ("library", "0004_artifact_from_runs"),
        ("registry", "0003_trained_on_library_artifact"),
        ("runs", "0005_run_kind_from_registry"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Artifact")],
            database_operations=[],
        ),
    ]
