"""Admin pages for webhooks: the secret is never shown (it was shown once, to its owner)."""

from django.contrib import admin

from .models import Webhook, WebhookAttempt, WebhookDelivery


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ("__str__", "owner", "scope", "is_active", "created_at")
    list_filter = ("is_active", "scope")
    exclude = ("secret",)
    raw_id_fields = ("owner",)

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        """Hooks are registered on the webhooks page, which generates the secret and shows it once."""
        return False


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    readonly_fields = ("number", "started_at", "duration_ms", "response_code", "error", "succeeded")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("__str__", "status", "attempt_count", "response_code", "created_at")
    list_filter = ("status", "event")
    raw_id_fields = ("webhook",)
    inlines = [WebhookAttemptInline]
