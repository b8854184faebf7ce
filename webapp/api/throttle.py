"""Rate limits per token on the expensive endpoints (run creation, uploads): 429 with Retry-After.

Built on django-ninja's cache-backed throttle (the same Django cache as the login throttle in
`webapp/accounts/throttle.py`: Redis in production, so every web process shares the count). The
count is kept per token, so two scripts of one user each get their own budget; a browser session
is counted per user. The rate is read from settings on every request, so operators (and tests)
can change it without a restart.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from ninja.throttling import SimpleRateThrottle


class PerTokenRateThrottle(SimpleRateThrottle):
    """At most the rate in `settings.<setting_name>` ("30/hour", "5/min") per token, per `scope`."""

    def __init__(self, scope: str, setting_name: str) -> None:
        self.scope = scope
        self.setting_name = setting_name
        super().__init__(rate=getattr(settings, setting_name))

    def get_cache_key(self, request: HttpRequest) -> str | None:
        token = getattr(request, "api_token", None)
        if token is not None:
            ident = f"token-{token.pk}"
        elif request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            return None
        return self.cache_format % {"scope": f"api-{self.scope}", "ident": ident}

    def allow_request(self, request: HttpRequest) -> bool:
        self.rate = getattr(settings, self.setting_name)
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request)


def run_create_throttle() -> PerTokenRateThrottle:
    return PerTokenRateThrottle("run-create", "REFINERY_API_RUN_CREATE_RATE")


def upload_throttle() -> PerTokenRateThrottle:
    return PerTokenRateThrottle("upload", "REFINERY_API_UPLOAD_RATE")
