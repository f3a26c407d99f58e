"""Twilio's webhook signature: the URL Twilio called and ``X-Twilio-Signature`` over it.

* ``public_url`` gives the URL Twilio called (the one it signed).
* ``verify_signature`` checks ``X-Twilio-Signature`` with the SDK's ``RequestValidator``.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.request_validator import RequestValidator, get_signature_algorithm

SIGNATURE_HEADER = "X-Twilio-Signature"
SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"


def public_url(
    *,
    scheme: str,
    host: str,
    path: str,
    query_string: str = "",
    public_base_url: str | None = None,
) -> str:
    """The URL Twilio called, which is what it signed.

    ``scheme``, ``host`` and ``path`` are the request's as the web layer sees them: behind
    a trusted proxy (``TRUST_FORWARDED_HEADERS``) Werkzeug's ProxyFix has already applied
    the proxy's own ``X-Forwarded-*`` values (the last hop, which the proxy appended; a
    client's spoofed values come first and are ignored). Nothing here reads headers: one
    source of truth. ``path`` is the request path as received (with any script root),
    ``query_string`` the raw query without ``?``. ``PUBLIC_BASE_URL`` wins over both.
    """
    query = f"?{query_string}" if query_string else ""
    if public_base_url:
        base = urlsplit(public_base_url.strip())
        prefix = base.path.rstrip("/")
        full_path = path if prefix and path.startswith(prefix + "/") else prefix + path
        return urlunsplit((base.scheme, base.netloc, full_path, "", "")) + query
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
