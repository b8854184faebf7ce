"""`{% submission_key_input %}`: the hidden key that makes a form's repeated POST a no-op (webapp/core/submissions.py)."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

from webapp.core.submissions import SUBMISSION_KEY_FIELD, new_submission_key, submission_key_is_valid

register = template.Library()


@register.simple_tag(takes_context=True)
def submission_key_input(context: template.Context) -> str:
    """A fresh key per rendered form; a form shown again after a refused POST keeps the key it was sent with.

    Nothing was created with a refused POST's key, so keeping it is safe, and it makes the corrected
    resubmit and a double click on it one submission.
    """
    request = context.get("request")
    posted = (
        request.POST.get(SUBMISSION_KEY_FIELD, "").strip() if request is not None and request.method == "POST" else ""
    )
    key = posted if submission_key_is_valid(posted) else new_submission_key()
    return format_html('<input type="hidden" name="{}" value="{}">', SUBMISSION_KEY_FIELD, key)
