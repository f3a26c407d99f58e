"""What every request goes through, whatever blueprint serves it.

* **Body size.** Each group of endpoints has its own limit (``MAX_CONTENT_LENGTH_WEBHOOKS``
  for ``/webhooks/*``, ``MAX_CONTENT_LENGTH_API`` for ``/api/*``, ``MAX_CONTENT_LENGTH``
  for the simulator and everything else). A body that declares a larger
  ``Content-Length`` is refused with 413 before a byte of it is read; a chunked body
  without one is read up to the limit and refused (413) when it reaches it. Gunicorn
  workers therefore never hold more than the limit of any one request in memory.
* **Broken JSON.** ``json_body.InvalidJson`` becomes 400 ``{"error": reason}``.
* **Headers.** HTML pages get a Content-Security-Policy (only our own scripts, styles
  and API; no framing), ``X-Frame-Options: DENY`` for older browsers, and every response
  ``X-Content-Type-Options: nosniff``.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from palaute.config import Settings
from palaute.web.json_body import InvalidJson

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def body_limit(settings: Settings, path: str) -> tuple[int, str]:
    """The largest body accepted for ``path``, and the name of the setting that says so."""
    if path.startswith("/webhooks/"):
        return settings.max_content_length_webhooks, "MAX_CONTENT_LENGTH_WEBHOOKS"
    if path.startswith("/api/"):
        return settings.max_content_length_api, "MAX_CONTENT_LENGTH_API"
    return settings.max_content_length, "MAX_CONTENT_LENGTH"


def install(app: Flask, settings: Settings) -> None:
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_length

    @app.before_request
    def _limit_body() -> Response | tuple[Response, int] | None:
        limit, _name = body_limit(settings, request.path)
        request.max_content_length = limit
        declared = request.content_length
        if declared is not None and declared > limit:
            return _too_large()
        # A chunked body: Werkzeug stops reading at the limit without saying so, which
        # would hand the view a truncated body. Read it here (cached for the view).
        chunked = declared is None and request.environ.get("wsgi.input_terminated")
        if chunked and len(request.get_data(cache=True)) >= limit:
            return _too_large()
        return None

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large_error(_error: RequestEntityTooLarge) -> tuple[Response, int]:
        return _too_large()

    def _too_large() -> tuple[Response, int]:
        limit, name = body_limit(settings, request.path)
        response = jsonify(
            error=f"the request body is larger than {limit} bytes, the limit here ({name})",
            retryable=False,
        )
        response.headers["Connection"] = "close"  # the unread rest of the body is not wanted
        return response, 413

    @app.errorhandler(InvalidJson)
    def _invalid_json(error: InvalidJson) -> tuple[Response, int]:
        return jsonify(error=str(error), retryable=False), 400

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            response.headers.setdefault("X-Frame-Options", "DENY")
        return response
