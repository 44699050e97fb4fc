"""optuna-dashboard served on a study's storage and artifact store.

The dashboard's WSGI app (`optuna_dashboard.wsgi`) runs in the standard library's WSGI server
with one thread per request, so a browser's parallel requests do not queue behind each other.
optuna-dashboard guards its caches with locks for this.
"""

from __future__ import annotations

import logging
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from hpo.config.schema import StudyConfig
from hpo.errors import HpoError
from hpo.study.artifacts import open_artifact_store
from hpo.study.storage import mask_url, open_storage, resolve_storage_url

logger = logging.getLogger(__name__)


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """The standard WSGI server, handling each request in its own thread."""

    daemon_threads = True


class QuietRequestHandler(WSGIRequestHandler):
    """Logs each request at DEBUG through `logging` instead of printing it to stderr."""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the name is fixed by BaseHTTPRequestHandler
        logger.debug("%s %s", self.address_string(), format % args)


def dashboard_url(host: str, port: int, study_id: int | None = None) -> str:
    bracketed = f"[{host}]" if ":" in host else host  # an IPv6 address goes in brackets in a URL
    base = f"http://{bracketed}:{port}/dashboard"
    return f"{base}/studies/{study_id}" if study_id is not None else base


def build_dashboard_app(config: StudyConfig, folder: Path, storage_flag: str | None):
    """Build the dashboard's WSGI app on the study's storage and artifact store; also return the storage URL and study id."""
    import optuna_dashboard

    url = resolve_storage_url(storage_flag, config.study.storage, folder)
    storage = open_storage(url)
    store = open_artifact_store(config.study.artifact_store, folder)
    try:
        study_id = storage.get_study_id_from_name(config.study.name)
    except KeyError:
        study_id = None
    return optuna_dashboard.wsgi(storage, artifact_store=store), url, study_id


def serve_dashboard(config: StudyConfig, folder: Path, storage_flag: str | None, host: str, port: int) -> None:
    """Serve the dashboard until interrupted."""
    app, url, study_id = build_dashboard_app(config, folder, storage_flag)
    try:
        server = make_server(host, port, app, server_class=ThreadingWSGIServer, handler_class=QuietRequestHandler)
    except OSError as error:
        msg = f"Cannot listen on {host}:{port}: {error.strerror or error}; choose another --port or --host."
        raise HpoError(msg) from error

    if study_id is None:
        logger.info("Study '%s' is not in %s yet; it appears once the first worker starts", config.study.name, mask_url(url))
    logger.info(
        "optuna-dashboard for study '%s' (storage %s) at %s; stop with Ctrl+C",
        config.study.name, mask_url(url), dashboard_url(host, port, study_id),
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()
        logger.info("Dashboard stopped")
