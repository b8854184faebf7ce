"""What the client raises: the API's error body (`detail` and per-field `errors`) as exceptions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LOGIN_HINT = "Log in with: refinery login --url URL --token TOKEN (create a token on the site's API tokens page)."


@dataclass(frozen=True)
class FieldError:
    field: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ApiError(Exception):
    """An answer other than 2xx: its status, the API's `detail` and its per-field `errors`."""

    def __init__(
        self, status: int, detail: str, errors: list[FieldError] | None = None, method: str = "", url: str = ""
    ):
        self.status = status
        self.detail = detail
        self.errors = errors or []
        self.method = method
        self.url = url
        super().__init__(self.describe())

    def describe(self) -> str:
        """The message a user reads: the detail, then one line per field error."""
        lines = [f"{self.detail} (HTTP {self.status}{f' from {self.method} {self.url}' if self.url else ''})"]
        lines += [f"  {error}" for error in self.errors if str(error) != self.detail]
        return "\n".join(lines)

    @classmethod
    def from_response(cls, status: int, body: Any, method: str = "", url: str = "") -> ApiError:
        detail = f"HTTP {status}"
        errors: list[FieldError] = []
        if isinstance(body, dict):
            detail = str(body.get("detail") or detail)
            errors = [
                FieldError(field=item.get("field"), message=str(item.get("message", "")))
                for item in body.get("errors") or []
                if isinstance(item, dict)
            ]
        elif isinstance(body, str) and body.strip():
            detail = f"HTTP {status}: {body.strip()[:300]}"
        error_class = {401: AuthenticationFailed, 422: ValidationFailed, 400: ValidationFailed}.get(status, ApiError)
        return error_class(status, detail, errors, method, url)


class AuthenticationFailed(ApiError):
    """401: no token, or a token that is wrong, revoked or expired."""

    def describe(self) -> str:
        return f"{super().describe()}\n{LOGIN_HINT}"


class ValidationFailed(ApiError):
    """400/422: the input was refused; `errors` names each field at fault."""


class RunDidNotSucceed(Exception):
    """A waited-for run ended failed, cancelled or lost; `run` is its last state."""

    def __init__(self, run: dict[str, Any]):
        self.run = run
        error = f": {run['error']}" if run.get("error") else ""
        super().__init__(f"run {run['id']} ended {run['status']}{error}")


class ConfigurationMissing(Exception):
    """No URL or token: neither the environment nor the config file gives one."""
