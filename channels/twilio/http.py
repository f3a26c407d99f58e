"""The ``twilio`` SDK's HTTP port on one urllib3 pool (see ``TwilioHttp``)."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import certifi
import requests
import urllib3
from twilio.http import HttpClient
from twilio.http.response import Response

log = logging.getLogger(__name__)


class TwilioHttp(HttpClient):
    """The ``twilio`` SDK's HTTP port (``Client(http_client=...)``) on one urllib3 pool.

    The SDK's own client goes through a requests ``Session`` for every call (request
    preparation, hooks, cookies, re-reading proxy settings from the environment): on a
    fast link that is about half the CPU of a send. This one makes the same HTTP request
    (basic auth, form or JSON body, no redirects, no retries, a timeout) and gives the SDK
    the same ``Response``. Transport failures come out as the requests exceptions the SDK's
    client raises, so ``TwilioSender`` classifies them the same way. Each thread's last
    response headers are kept (``Retry-After`` is not carried by the SDK's exceptions).
    Proxy (``HTTPS_PROXY``/``NO_PROXY``) and CA bundle (``REQUESTS_CA_BUNDLE``) settings
    are read from the environment once, when the sender is made.
    """

    def __init__(self, timeout: float | None, base_url: str) -> None:
        super().__init__(logger=log, is_async=False, timeout=timeout)
        self._local = threading.local()
        scheme = urlsplit(base_url).scheme or "https"
        self.proxy = requests.utils.get_environ_proxies(base_url).get(scheme)
        self.ca_bundle = (
            os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE")
            or certifi.where()
        )
        options: dict[str, Any] = {"maxsize": 32, "ca_certs": self.ca_bundle}
        self._pool: urllib3.PoolManager = (
            urllib3.ProxyManager(self.proxy, **options)
            if self.proxy
            else urllib3.PoolManager(**options)
        )

    def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, object] | None = None,
        data: Mapping[str, object] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if timeout is None:
            timeout = self.timeout
        elif timeout <= 0:
            raise ValueError(timeout)
        sent = dict(headers or {})
        if auth is not None:
            basic = urllib3.make_headers(basic_auth=f"{auth[0]}:{auth[1]}")
            sent["Authorization"] = basic["authorization"]
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params, doseq=True)
        body: bytes | None = None
        if data is not None:
            if sent.get("Content-Type") in ("application/json", "application/scim+json"):
                body = json.dumps(data).encode()
            else:
                body = urlencode(data, doseq=True).encode()
                sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        self._local.headers = {}
        try:
            answer = self._pool.request(
                method.upper(),
                url,
                body=body,
                headers=sent,
                redirect=allow_redirects,
                retries=urllib3.Retry(0, read=False, redirect=0),
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
            )
        except urllib3.exceptions.HTTPError as exc:
            raise _as_requests_error(exc) from exc
        received = dict(answer.headers)
        self._local.headers = received
        return Response(answer.status, answer.data.decode("utf-8", "replace"), received)

    def last_header(self, name: str) -> str | None:
        headers: dict[str, str] = getattr(self._local, "headers", {}) or {}
        for key, value in headers.items():
            if key.lower() == name.lower():
                return value
        return None


def _as_requests_error(exc: urllib3.exceptions.HTTPError) -> requests.RequestException:
    """The requests exception the SDK's own client raises for this urllib3 failure."""
    reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
    if isinstance(reason, urllib3.exceptions.ConnectTimeoutError):
        return requests.exceptions.ConnectTimeout(str(reason))
    if isinstance(reason, urllib3.exceptions.ReadTimeoutError):
        return requests.exceptions.ReadTimeout(str(reason))
    if isinstance(reason, urllib3.exceptions.ProxyError):
        return requests.exceptions.ProxyError(str(reason))
    if isinstance(reason, urllib3.exceptions.SSLError):
        return requests.exceptions.SSLError(str(reason))
    if isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ProtocolError):
        return requests.exceptions.ConnectionError(str(reason))
    return requests.exceptions.RequestException(str(reason))
