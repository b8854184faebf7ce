from django.contrib import admin

from .models import ModelEntry


@admin.register(ModelEntry)
class ModelEntryAdmin(admin.ModelAdmin):
    list_display = ("name", "backend", "source", "parent", "produced_by_run", "created_at")
    list_filter = ("backend", "source")
    search_fields = ("name", "path", "base_url")
    raw_id_fields = ("parent", "produced_by_run")
