"""Admin pages for evaluations and the answer cache."""
from django.contrib import admin

from .models import CachedAnswer, Evaluation


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = ("__str__", "status", "judge", "prompt_source", "created_by", "created_at")
    list_filter = ("status",)
    search_fields = ("name",)
    raw_id_fields = ("run", "created_by", "comparisons", "prompt_set", "judge", "rubric")
    readonly_fields = ("created_at", "finished_at")


@admin.register(CachedAnswer)
class CachedAnswerAdmin(admin.ModelAdmin):
    list_display = ("__str__", "model", "completion_tokens", "first_evaluation", "created_at")
    search_fields = ("prompt", "answer")
    raw_id_fields = ("model", "first_evaluation")
    show_full_result_count = False
