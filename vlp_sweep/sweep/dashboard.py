"""Serve a sweep's Optuna study with optuna-dashboard (``vlp-sweep dashboard runs/NAME``).

The study lives in ``runs/<name>/optuna.journal`` (journal.py); optuna-dashboard's WSGI app reads it
through Optuna's JournalStorage, re-reading the file on each request, so it works during a sweep as
well as after. The server is Python's threaded wsgiref server (what optuna-dashboard's own
``run_server`` uses), bound here first so that a port in use is one clear error.
"""

from __future__ import annotations

import socketserver
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from vlp_sweep.errors import UserError
from vlp_sweep.sweep.journal import JOURNAL_FILE, open_storage


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # Ctrl-C does not wait for a browser's open connections


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # one line per asset request is noise
        pass


def open_journal(run_dir: str | Path) -> tuple[Any, str]:
    """(JournalStorage, study name) of a sweep folder; a UserError when it is not a sweep or has no study."""
    d = Path(run_dir)
    if not (d / "sweep.json").is_file():
        raise UserError(f"not a sweep folder: {d} ({'no sweep.json' if d.is_dir() else 'no such folder'})")
    from vlp_sweep.sweep.tables.results import read_meta

    name = read_meta(d / "sweep.json").get("name", d.name)
    journal = d / JOURNAL_FILE
    if not journal.is_file():
        raise UserError(f"sweep '{name}' has no Optuna study ({journal} is missing: the sweep has not started "
                        "searching yet, or was made by a vlp-sweep that kept no journal)")
    try:
        storage = open_storage(journal)
        storage.get_all_studies()
    except Exception as e:  # a file Optuna cannot replay
        raise UserError(f"{journal} is not a readable Optuna journal ({type(e).__name__}: {e})") from None
    return storage, name


def bind(app: Any, host: str, port: int) -> WSGIServer:
    """A threaded WSGI server for ``app`` on host:port; a port in use or a bad host is a UserError."""
    try:
        return make_server(host, port, app, server_class=_Server, handler_class=_QuietHandler)
    except OSError as e:
        why = "in use" if e.errno in (98, 48) else (e.strerror or str(e))
        raise UserError(f"cannot serve the dashboard on {host}:{port}: {why} (pick another with --port)") from None


def serve(run_dir: str | Path, host: str, port: int, announce: Any = print) -> None:
    """Serve the sweep's study until Ctrl-C (then close the socket and return)."""
    from optuna_dashboard import wsgi

    storage, name = open_journal(run_dir)
    server = bind(wsgi(storage), host, port)
    url_host = f"[{host}]" if ":" in host else host
    try:
        study_id = storage.get_study_id_from_name(name)
        page = f"http://{url_host}:{server.server_port}/dashboard/studies/{study_id}"
    except KeyError:  # the study is created when the first trial is suggested
        page = f"http://{url_host}:{server.server_port}/dashboard"
    announce(f"optuna-dashboard for sweep '{name}': {page}  (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        announce("dashboard stopped")
    finally:
        server.server_close()
