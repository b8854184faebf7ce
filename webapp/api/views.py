"""The personal API tokens page: list, create (the secret is shown once, on this response only), revoke.

Every role may hold tokens (an annotator's reaches only their own assignments); each user sees and
revokes only their own. The new secret is rendered into the response to the POST and never stored
or shown again, so the page is not cached.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from webapp.accounts.permissions import ALL_ROLES, role_required
from webapp.core.forms import add_validation_error

from . import tokens
from .forms import TokenForm
from .models import ApiToken


@never_cache
@require_http_methods(["GET", "POST"])
@role_required(*ALL_ROLES)
def token_list(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            created = tokens.token_create(user=request.user, name=form.cleaned_data["name"])
        except ValidationError as error:
            add_validation_error(form, error)
        else:
            form = TokenForm()
    status = 400 if form.errors else 200
    context = {"form": form, "created": created, "tokens": tokens.token_list(user=request.user)}
    return render(request, "api/tokens.html", context, status=status)


@require_POST
@role_required(*ALL_ROLES)
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    tokens.token_revoke(token=token)
    messages.success(request, f"Revoked “{token.name}”: it no longer authenticates.")
    return redirect("api-tokens")
