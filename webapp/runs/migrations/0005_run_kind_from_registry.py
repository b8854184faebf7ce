"""Run kinds are declared by each app in the run-kind registry, not as choices on the column."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("runs", "0004_run_submission_key")]

    operations = [
        migrations.AlterField(
            model_name="pipelinerun",
            name="kind",
            field=models.CharField(
                help_text="A kind declared in an app's kinds.py and registered in webapp.runs.registry.",
                max_length=30,
            ),
        ),
    ]
