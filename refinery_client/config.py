"""Where the CLI finds the site and the token: REFINERY_URL / REFINERY_TOKEN, else the file `refinery login` wrote.

The file is JSON at $REFINERY_CONFIG, else $XDG_CONFIG_HOME/refinery/config.json (~/.config/...),
created with mode 0600 (the token is a password) in a 0700 directory.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import LOGIN_HINT, ConfigurationMissing


@dataclass(frozen=True)
class Settings:
    url: str
    token: str


def config_path() -> Path:
    if os.environ.get("REFINERY_CONFIG"):
        return Path(os.environ["REFINERY_CONFIG"])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "refinery" / "config.json"


def config_write(*, url: str, token: str) -> Path:
    """Save the URL and token for later commands, readable by this user only."""
    path = config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an older file keeps its mode on O_CREAT: tighten it
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump({"url": url.rstrip("/"), "token": token}, handle, indent=2)
        handle.write("\n")
    return path


def settings_resolve(*, url: str | None = None, token: str | None = None) -> Settings:
    """Options first, then the environment, then the config file; ConfigurationMissing says how to log in."""
    saved: dict[str, str] = {}
    path = config_path()
    if path.exists():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ConfigurationMissing(f"{path} is not a readable config file ({error}). {LOGIN_HINT}") from None
    url = url or os.environ.get("REFINERY_URL") or saved.get("url")
    token = token or os.environ.get("REFINERY_TOKEN") or saved.get("token")
    missing = [name for name, value in (("URL", url), ("token", token)) if not value]
    if missing:
        raise ConfigurationMissing(
            f"No {' and no '.join(missing)} given: set REFINERY_URL and REFINERY_TOKEN, or log in once. {LOGIN_HINT}"
        )
    return Settings(url=str(url), token=str(token))
