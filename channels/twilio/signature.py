"""Twilio's webhook signature: the URL Twilio called and ``X-Twilio-Signature`` over it.

* ``public_url`` rebuilds the URL Twilio called (the one it signed) behind a proxy.
* ``verify_signature`` checks ``X-Twilio-Signature`` with the SDK's ``RequestValidator``.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from twilio.request_validator import RequestValidator, get_signature_algorithm

SIGNATURE_HEADER = "X-Twilio-Signature"
SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"


class HeaderLookup(Protocol):
    """Anything with ``get(name)``: a dict, Werkzeug's ``Headers``..."""

    def get(self, key: str, /) -> str | None: ...


def _first(value: str | None) -> str:
    return (value or "").split(",")[0].strip()


def public_url(
    *,
    scheme: str,
    host: str,
    path: str,
    query_string: str = "",
    headers: HeaderLookup | None = None,
    public_base_url: str | None = None,
    trust_forwarded_headers: bool = False,
) -> str:
    """The URL Twilio called, which is what it signed.

    ``path`` is the request path as received (with any script root), ``query_string`` the
    raw query without ``?``. ``PUBLIC_BASE_URL`` wins over forwarded headers; forwarded
    headers are used only when trusted; otherwise the URL the server saw is used.
    """
    query = f"?{query_string}" if query_string else ""
    if public_base_url:
        base = urlsplit(public_base_url.strip())
        prefix = base.path.rstrip("/")
        full_path = path if prefix and path.startswith(prefix + "/") else prefix + path
        return urlunsplit((base.scheme, base.netloc, full_path, "", "")) + query
    if trust_forwarded_headers and headers is not None:
        proto = _first(headers.get("X-Forwarded-Proto")) or scheme
        fwd_host = _first(headers.get("X-Forwarded-Host")) or host
        port = _first(headers.get("X-Forwarded-Port"))
        default_port = "443" if proto == "https" else "80"
        netloc_host, _, netloc_port = fwd_host.rpartition(":")
        if not netloc_host or "]" in netloc_port:  # no port in the host (or bare IPv6)
            netloc_host, netloc_port = fwd_host, ""
        if port and not netloc_port:
            netloc_port = port
        netloc = netloc_host
        if netloc_port not in ("", default_port):
            netloc = f"{netloc_host}:{netloc_port}"
        prefix = _first(headers.get("X-Forwarded-Prefix")).rstrip("/")
        return f"{proto}://{netloc}{prefix}{path}{query}"
    return f"{scheme}://{host}{path}{query}"


def verify_signature(
    auth_token: str,
    url: str,
    params: Mapping[str, Any],
    signature: str | None,
    signature_settings: str | None = None,
) -> bool:
    """True when ``signature`` is Twilio's signature of ``url`` + ``params``.

    ``params`` may be a plain dict or a multi-dict (Flask's ``request.form``); every field
    that arrived counts, including ones we do not know.
    """
    if not auth_token or not signature:
        return False
    validator = RequestValidator(auth_token)
    algorithm = get_signature_algorithm(signature_settings)
    if "bodySHA256=" not in url:
        # The common case first: one HMAC over the URL exactly as rebuilt.
        try:
            expected = validator.compute_signature(url, params, algorithm)
        except ValueError:  # an algorithm this SDK does not know
            return False
        if hmac.compare_digest(expected.encode(), signature.encode()):
            return True
    # validate() also tries the URL with and without the default port, as Twilio's own
    # signing has not always been consistent about it.
    return bool(validator.validate(url, params, signature, algorithm=algorithm))


def compute_signature(auth_token: str, url: str, params: Mapping[str, Any]) -> str:
    """The ``X-Twilio-Signature`` Twilio would send (for tests, the fake and the bench)."""
    return str(RequestValidator(auth_token).compute_signature(url, params))
