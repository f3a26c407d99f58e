"""``palaute serve``: run the web app (webhooks, /simulator, /healthz)."""

from __future__ import annotations

import errno
import socket
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from flask import Flask


def _gunicorn_application(app: Flask, options: dict[str, Any]) -> Any:
    from gunicorn.app.base import BaseApplication

    # gunicorn has no type information, so BaseApplication is Any to mypy.
    class PalauteGunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return app

    return PalauteGunicorn()


def _services(worker: Any) -> Any:
    from palaute.web import EXTENSION_KEY

    return worker.app.load().extensions[EXTENSION_KEY]


def _post_fork(_server: Any, worker: Any) -> None:
    # The app was built in the master (preload): never share its connection pool.
    _services(worker).db.dispose(close=False)


def _post_worker_init(worker: Any) -> None:
    import gc

    gc.freeze()  # as gunicorn.conf.py: long-lived objects out of full collections
    _services(worker).warm_up_in_background()


def check_port_free(host: str, port: int) -> None:
    """Stop with a clear message when ``host:port`` cannot be listened on, before gunicorn
    starts (it would retry five times and print "Address already in use" each time)."""
    if port == 0:
        return  # any free port
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise click.ClickException(f"cannot listen on {host!r}: {error.strerror}") from error
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # As gunicorn and Werkzeug do: a port left in TIME_WAIT counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise click.ClickException(
                    f"port {port} on {host} is already in use (is palaute already running?). "
                    f"Stop the program that uses it, or pick another port: "
                    f"PORT=8080 make run  (or: palaute serve --port 8080)"
                ) from error
            raise click.ClickException(
                f"cannot listen on {host}:{port}: {error.strerror}. "
                f"Pick another port: PORT=8080 make run  (or: palaute serve --port 8080)"
            ) from error


def simulator_default() -> dict[str, Any]:
    """`palaute serve` (and so `make run`) is for trying palaute on one machine: it serves
    the simulator unless SIMULATOR_ENABLED says otherwise. The Procfile's gunicorn does
    not: there the simulator is off unless SIMULATOR_ENABLED=true."""
    from palaute.config import Settings

    if "simulator_enabled" in Settings().model_fields_set:
        return {}  # set in the environment: as set
    return {"SIMULATOR_ENABLED": True}


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers", default=2, show_default=True, type=click.IntRange(1), help="Gunicorn processes."
)
@click.option(
    "--threads", default=4, show_default=True, type=click.IntRange(1), help="Threads per process."
)
@click.option(
    "--dev",
    is_flag=True,
    help="Use Werkzeug's development server (one process, threaded) instead of gunicorn.",
)
def serve(host: str, port: int, workers: int, threads: int, dev: bool) -> None:
    """Run the web app: webhooks, the /simulator page and /healthz.

    The simulator is on unless SIMULATOR_ENABLED=false (under the Procfile's gunicorn it is
    off unless SIMULATOR_ENABLED=true).

    Runs gunicorn (gthread workers; the app is built once in the master so bad flows or a
    bad DATABASE_URL stop it at once). --dev runs Werkzeug's development server instead.
    In production the Procfile runs gunicorn directly: web: gunicorn "palaute.app:create_app()".
    Run `palaute db upgrade` first.
    """
    from palaute.app import create_app

    check_port_free(host, port)
    app = create_app({"WARM_UP": dev, **simulator_default()})
    where = f"http://{host}:{port}"
    if app.extensions["palaute"].settings.simulator_enabled:
        where += "/simulator"
    else:
        click.echo("the simulator is off (SIMULATOR_ENABLED is false)", err=True)
    if dev:
        click.echo(f"palaute (Werkzeug development server) on {where}", err=True)
        app.run(host=host, port=port, debug=False, use_reloader=False, threaded=True)
        return
    click.echo(f"palaute (gunicorn, {workers} workers x {threads} threads) on {where}", err=True)
    _gunicorn_application(
        app,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "preload_app": True,
            "post_fork": _post_fork,
            "post_worker_init": _post_worker_init,
            "accesslog": "-",
            "errorlog": "-",
            "timeout": 30,
            "graceful_timeout": 10,
        },
    ).run()
