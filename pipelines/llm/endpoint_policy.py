"""Which OpenAI-compatible endpoints a worker may call, and which environment variables may be sent as their key.

A registered endpoint makes a worker send requests (and, with `api_key_env`, a bearer token read
from the worker's environment) to a URL a researcher typed. Unchecked, that lets a researcher have a
worker send `SECRET_KEY` or `DATABASE_URL` to a server of their choice, or reach addresses only the
worker can reach (a cloud metadata service, internal hosts). So:

- an API key variable must be on the operator's allowlist: a name starting with a fixed prefix
  (`REFINERY_ENDPOINT_KEY_` by default) or one of the names listed explicitly;
- the URL must be http(s), and every address its host resolves to must pass the address policy:
  link-local (169.254.0.0/16, fe80::/10), cloud metadata addresses, unspecified, multicast and
  reserved addresses are always refused; loopback and private ranges only where the operator
  allows them (a local `vllm serve` in the demo and the tests).

The web process checks at registration (a form error) and the worker checks again right before it
connects (`check_endpoint` in the backend factory, `check_endpoint_url` before every request),
so an entry edited in the admin or a DNS record changed after registration cannot get around it.
The process-wide policy is set by Django's registry app from settings (`configure`); a process
without Django (a benchmark script) reads the same environment variables the settings read.
Pure Python: no Django import here.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from pipelines.errors import InvalidConfigError

DEFAULT_API_KEY_PREFIX = "REFINERY_ENDPOINT_KEY_"

# Cloud metadata services outside the link-local range (which is refused as a whole):
# AWS over IPv6, Alibaba Cloud, Oracle Cloud's legacy address.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address) for address in ("fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
METADATA_HOSTNAMES = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data"})
# Carrier-grade NAT space: not global, not "private" to Python's ipaddress, used for internal networks.
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")


class EndpointRefusedError(InvalidConfigError):
    """The endpoint's URL or key variable is outside the operator's policy; nothing was sent."""


@dataclass(frozen=True)
class EndpointPolicy:
    """The operator's rules for endpoints; the defaults refuse everything but public addresses."""

    allow_loopback: bool = False
    allow_private: bool = False
    api_key_prefix: str = DEFAULT_API_KEY_PREFIX
    api_key_variables: frozenset[str] = frozenset()

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> EndpointPolicy:
        """The policy from the variables Django's settings also read (docs/operators.md)."""
        environ = dict(os.environ if environ is None else environ)
        return cls(
            allow_loopback=_flag(environ.get("REFINERY_ENDPOINT_ALLOW_LOOPBACK", "")),
            allow_private=_flag(environ.get("REFINERY_ENDPOINT_ALLOW_PRIVATE", "")),
            api_key_prefix=environ.get("REFINERY_ENDPOINT_KEY_PREFIX", DEFAULT_API_KEY_PREFIX),
            api_key_variables=frozenset(
                name.strip() for name in environ.get("REFINERY_ENDPOINT_KEY_VARIABLES", "").split(",") if name.strip()
            ),
        )


_active_policy: EndpointPolicy | None = None


def configure(policy: EndpointPolicy) -> None:
    """Make `policy` the one this process enforces (called by Django's registry app from settings)."""
    global _active_policy
    _active_policy = policy


def active_policy() -> EndpointPolicy:
    return _active_policy if _active_policy is not None else EndpointPolicy.from_environment()


def check_api_key_variable(variable: str, policy: EndpointPolicy | None = None) -> None:
    """Refuse a key variable the operator did not allow (it could name any secret of the worker)."""
    if not variable:
        return
    policy = policy or active_policy()
    if not variable.replace("_", "").isalnum() or not variable.isascii():
        raise EndpointRefusedError(
            f"api_key_env {variable!r}: give the name of an environment variable (letters, digits, _), not the key itself"
        )
    prefix = policy.api_key_prefix
    if variable in policy.api_key_variables or (prefix and variable.startswith(prefix) and len(variable) > len(prefix)):
        return
    allowed = f"names starting with {prefix}" if prefix else "no prefix"
    listed = f"; or one of {', '.join(sorted(policy.api_key_variables))}" if policy.api_key_variables else ""
    raise EndpointRefusedError(
        f"api_key_env {variable}: endpoint keys must come from variables the operator set aside for them "
        f"({allowed}{listed}), so no other secret of the worker can be sent to a server"
    )


def check_endpoint_url(base_url: str, policy: EndpointPolicy | None = None) -> list[str]:
    """Refuse a URL whose host is, or resolves to, an address the policy forbids; returns the addresses checked."""
    policy = policy or active_policy()
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https"):
        raise EndpointRefusedError(f"base_url {base_url!r} must start with http:// or https://")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise EndpointRefusedError(f"base_url {base_url!r} names no host")
    if host in METADATA_HOSTNAMES:
        raise EndpointRefusedError(f"base_url {base_url!r}: {host} is a cloud metadata service; never allowed")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise EndpointRefusedError(f"base_url {base_url!r} has an invalid port") from None
    try:
        addresses = sorted(set(_resolve(host, port)))
    except OSError as error:
        raise EndpointRefusedError(f"base_url {base_url!r}: host {host} does not resolve here ({error})") from None
    if not addresses:
        raise EndpointRefusedError(f"base_url {base_url!r}: host {host} resolves to no address")
    for address in addresses:
        problem = address_problem(address, policy)
        if problem:
            shown = host if host == address else f"{host} resolves to {address}, which"
            raise EndpointRefusedError(f"base_url {base_url!r}: {shown} is {problem}")
    return addresses


def check_endpoint(base_url: str, api_key_env: str = "", policy: EndpointPolicy | None = None) -> None:
    """Both checks, the key variable first (it needs no network)."""
    policy = policy or active_policy()
    check_api_key_variable(api_key_env, policy)
    check_endpoint_url(base_url, policy)


def address_problem(address: str, policy: EndpointPolicy) -> str:
    """Why the policy refuses this IP address ("" when it allows it)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address; never allowed"
    if ip.is_link_local:
        return "link-local (where cloud metadata services live); never allowed"
    if ip.is_unspecified or ip.is_multicast:
        return "not a host address; never allowed"
    if ip.is_loopback:
        return (
            ""
            if policy.allow_loopback
            else ("loopback; not allowed by this site's endpoint policy (REFINERY_ENDPOINT_ALLOW_LOOPBACK)")
        )
    if ip.is_private or (isinstance(ip, ipaddress.IPv4Address) and ip in SHARED_ADDRESS_SPACE):
        return (
            ""
            if policy.allow_private
            else ("a private address; not allowed by this site's endpoint policy (REFINERY_ENDPOINT_ALLOW_PRIVATE)")
        )
    if not ip.is_global or ip.is_reserved:
        return "a reserved address; never allowed"
    return ""


def _resolve(host: str, port: int) -> list[str]:
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")
