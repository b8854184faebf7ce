"""Login throttling: after too many failed logins for one username from one address, refuse for a while.

Counted in Django's cache (Redis in production, so every web process shares the count; the local
memory cache of one process in development and tests). The window is fixed from the first failure:
`LOGIN_THROTTLE_FAILURES` failures within `LOGIN_THROTTLE_WINDOW_SECONDS` refuse further attempts
until that window ends; a successful login clears the count. Keyed by username and client address
together, so a guesser is stopped without letting anyone lock a user out from everywhere. The
address is REMOTE_ADDR, or the header named by `LOGIN_THROTTLE_CLIENT_IP_HEADER` when the site sits
behind a proxy that sets it (otherwise every client would share the proxy's address).
"""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

logger = logging.getLogger(__name__)


def client_address(request: HttpRequest | None) -> str:
    if request is None:
        return ""
    header = settings.LOGIN_THROTTLE_CLIENT_IP_HEADER
    if header and request.META.get(header):
        # A proxy appends; the first address is the client's as the proxy saw it.
        return request.META[header].split(",")[0].strip()
    return request.META.get("REMOTE_ADDR", "")


def _key(username: str, address: str) -> str:
    digest = hashlib.sha256(f"{username.strip().lower()}\0{address}".encode()).hexdigest()
    return f"login-failures:{digest}"


def login_is_throttled(*, username: str, address: str) -> bool:
    """True when this username has failed too often from this address within the window."""
    try:
        failures = cache.get(_key(username, address), 0)
    except Exception:  # noqa: BLE001 - a cache outage must not stop every login; it is logged
        logger.exception("login throttle: the cache cannot be read; not throttling")
        return False
    return failures >= settings.LOGIN_THROTTLE_FAILURES


def login_failure_record(*, username: str, address: str) -> None:
    key = _key(username, address)
    try:
        # add() starts the window on the first failure; incr() is atomic in Redis and the local cache.
        if not cache.add(key, 1, timeout=settings.LOGIN_THROTTLE_WINDOW_SECONDS):
            cache.incr(key)
    except ValueError:  # the key expired between add() and incr(): this failure starts a new window
        cache.add(key, 1, timeout=settings.LOGIN_THROTTLE_WINDOW_SECONDS)
    except Exception:  # noqa: BLE001
        logger.exception("login throttle: the cache cannot be written; failure not counted")


def login_failures_clear(*, username: str, address: str) -> None:
    try:
        cache.delete(_key(username, address))
    except Exception:  # noqa: BLE001
        logger.exception("login throttle: the cache cannot be written; count not cleared")
