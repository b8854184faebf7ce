"""Admin pages for the library; documents are searched on their own page, not inlined (corpora can be huge)."""

from django.contrib import admin

from .models import (
    Artifact,
    Corpus,
    CurationDraft,
    Document,
    FewShotExample,
    FewShotSet,
    ImportStatus,
    Rubric,
    SeedPrompt,
    SeedPromptSet,
)


@admin.register(Corpus)
class CorpusAdmin(admin.ModelAdmin):
    list_display = ("name", "document_count", "character_count", "created_by", "created_at")
    search_fields = ("name", "description", "source")
    readonly_fields = ("document_count", "character_count", "created_at", "updated_at")
    raw_id_fields = ("created_by",)


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ("title", "corpus", "position", "source")
    list_filter = ("corpus",)
    search_fields = ("title", "text")
    raw_id_fields = ("corpus",)
    list_select_related = ("corpus",)
    show_full_result_count = False

    def get_queryset(self, request):
        # Rows of an import still under way (staged) appear nowhere until it completes.
        return super().get_queryset(request).filter(corpus__status=ImportStatus.READY)


class SeedPromptInline(admin.TabularInline):
    model = SeedPrompt
    extra = 0
    fields = ("position", "text")
    show_change_link = True


@admin.register(SeedPromptSet)
class SeedPromptSetAdmin(admin.ModelAdmin):
    list_display = ("name", "prompt_count", "created_by", "created_at")
    search_fields = ("name", "description", "instruction")
    readonly_fields = ("prompt_count", "created_at", "updated_at")
    raw_id_fields = ("created_by",)
    inlines = [SeedPromptInline]


@admin.register(SeedPrompt)
class SeedPromptAdmin(admin.ModelAdmin):
    list_display = ("__str__", "prompt_set", "position")
    list_filter = ("prompt_set",)
    search_fields = ("text",)
    raw_id_fields = ("prompt_set",)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(prompt_set__status=ImportStatus.READY)


class FewShotExampleInline(admin.StackedInline):
    model = FewShotExample
    extra = 0
    fields = ("position", "context", "question", "answer")


@admin.register(FewShotSet)
class FewShotSetAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "example_count", "created_by", "created_at")
    list_filter = ("kind",)
    search_fields = ("name", "description", "preamble")
    readonly_fields = ("example_count", "created_at", "updated_at")
    raw_id_fields = ("created_by",)
    inlines = [FewShotExampleInline]


@admin.register(Rubric)
class RubricAdmin(admin.ModelAdmin):
    list_display = ("name", "created_by", "updated_at")
    search_fields = ("name", "criteria", "guidelines")
    raw_id_fields = ("created_by",)


@admin.register(Artifact)
class ArtifactAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "run", "parent", "row_count", "created_at")
    list_filter = ("kind",)
    raw_id_fields = ("run", "parent", "created_by")


@admin.register(CurationDraft)
class CurationDraftAdmin(admin.ModelAdmin):
    """Drafts in progress (webapp/library/curation.py), to see who is curating what."""

    list_display = ("artifact", "user", "updated_at")
    raw_id_fields = ("artifact", "user")
