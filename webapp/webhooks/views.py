"""Webhook pages: the list with the register form, a hook's delivery log, and delete."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from webapp.accounts.permissions import research_required
from webapp.core.forms import add_validation_error

from . import selectors, services
from .forms import WebhookForm


@require_http_methods(["GET", "POST"])
@research_required
def webhook_list(request: HttpRequest) -> HttpResponse:
    """GET: the user's hooks and the form. POST: register one and show its secret, this once."""
    form = WebhookForm(request.POST or None)
    created = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                created = services.webhook_create(owner=request.user, **form.cleaned_data)
            except ValidationError as error:
                add_validation_error(form, error)
        if created is None:
            status = 400
        else:
            form = WebhookForm()
    context = {"webhooks": selectors.webhooks_visible_to(user=request.user), "form": form, "created": created}
    return render(request, "webhooks/webhook_list.html", context, status=status)


@require_GET
@research_required
def webhook_detail(request: HttpRequest, webhook_id: int) -> HttpResponse:
    webhook = selectors.webhook_get(webhook_id=webhook_id, user=request.user)
    context = {"webhook": webhook, "deliveries": selectors.delivery_log(webhook=webhook)}
    return render(request, "webhooks/webhook_detail.html", context)


@require_POST
@research_required
def webhook_delete(request: HttpRequest, webhook_id: int) -> HttpResponse:
    webhook = selectors.webhook_get(webhook_id=webhook_id, user=request.user)
    services.webhook_delete(webhook=webhook, user=request.user)
    messages.success(request, f"Deleted the webhook to {webhook.url} and its delivery log.")
    return redirect("webhooks:list")
