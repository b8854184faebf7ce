from django.contrib import admin

from .models import PipelineRun


@admin.register(PipelineRun)
class PipelineRunAdmin(admin.ModelAdmin):
    list_display = ("pk", "kind", "name", "status", "stage", "progress_done", "progress_total", "created_by", "created_at")
    list_filter = ("kind", "status")
    search_fields = ("name", "rq_job_id", "worker_name")
    readonly_fields = ("created_at", "started_at", "heartbeat_at", "finished_at")

