"""Admin views of campaigns and judgments: read-mostly, for audits (judgments keep their history)."""
from django.contrib import admin

from .models import Assignment, Campaign, Item, Judgment


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "artifact", "rubric", "sample_size", "overlap", "is_open", "created_at")
    list_filter = ("is_open", "pair_format", "sampling")
    filter_horizontal = ("assignees",)


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("campaign", "position", "source_line", "synthetic_label", "group", "a_on_left")
    list_filter = ("campaign",)


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("item", "annotator", "leased_at", "expires_at", "completed_at")
    list_filter = ("item__campaign",)


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    list_display = ("item", "annotator", "choice", "verdict", "seconds_spent", "created_at", "withdrawn_at")
    list_filter = ("item__campaign", "verdict")
    readonly_fields = ("submission_key", "created_at")
