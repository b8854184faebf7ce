from django.contrib import admin

from .models import Artifact, PipelineRun


@admin.register(PipelineRun)
class PipelineRunAdmin(admin.ModelAdmin):
    list_display = ("pk", "kind", "name", "status", "stage", "progress_done", "progress_total", "created_by", "created_at")
    list_filter = ("kind", "status")
    search_fields = ("name", "rq_job_id", "worker_name")
    readonly_fields = ("created_at", "started_at", "heartbeat_at", "finished_at")


@admin.register(Artifact)
class ArtifactAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "run", "row_count", "created_at")
    list_filter = ("kind",)
