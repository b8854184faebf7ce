"""Fixtures for the webhook tests: the annotation app's campaign helpers and a hook factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.fixtures.webhook_receiver import receiver_fixture  # noqa: F401 (the webhook_receiver fixture)
from tests.webapp.annotation.conftest import make_campaign, rubric, write_artifact  # noqa: F401 (fixtures)
from webapp.webhooks import services
from webapp.webhooks.models import Event, Webhook


@pytest.fixture
def allow_private(settings: Any) -> Any:
    """Tests' receivers listen on 127.0.0.1, which the default policy refuses."""
    settings.REFINERY_WEBHOOK_ALLOW_PRIVATE = True
    return settings


@pytest.fixture
def make_webhook(allow_private: Any) -> Callable[..., Webhook]:
    def make(
        owner: Any, url: str = "http://127.0.0.1:9/hook", events: list[str] | None = None, **options: Any
    ) -> Webhook:
        return services.webhook_create(owner=owner, url=url, events=events or list(Event.values), **options)

    return make
