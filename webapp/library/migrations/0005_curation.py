"""Curation: an artifact records its parent, who saved it and what changed; drafts keep edits in progress per user."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('library', '0004_artifact_from_runs'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='artifact',
            name='created_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='artifact',
            name='curation',
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name='artifact',
            name='parent',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='curated_children', to='library.artifact'),
        ),
        migrations.CreateModel(
            name='CurationDraft',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('dropped_rows', models.JSONField(blank=True, default=list, help_text='Sorted indices of rows left out.')),
                ('flagged_rows', models.JSONField(blank=True, default=list, help_text='Sorted indices of rows marked for review.')),
                ('edited_values', models.JSONField(blank=True, default=dict, help_text='New text by row index and column: {"3": {"response": "..."}}.')),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('artifact', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='curation_drafts', to='library.artifact')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='curation_drafts', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('artifact', 'user'), name='curation_draft_per_user')],
            },
        ),
    ]
