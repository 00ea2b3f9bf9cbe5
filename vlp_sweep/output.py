"""What the user sees: our own lines on the terminal, libraries' log lines in a log file.

Ray's core worker logs from C++ straight to file descriptor 2 (the ``_WandbLoggingActor ... max_restarts``
line of every sweep with W&B), W&B and Optuna log through their own handlers, PyTorch warns through
``warnings``. None of it can be silenced one library at a time, so :func:`quiet_fds` points file
descriptors 1 and 2 at a log file for the whole sweep (child processes inherit that too) and keeps a
duplicate of the real stderr for our own lines, reached through :func:`terminal`. With ``--debug`` nothing
is redirected.

:class:`LiveLine` draws progress: one line rewritten in place on a terminal, one whole line per event
otherwise (a log file or a pipe gets no carriage returns and no line breaks inside a word).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

__all__ = ["LiveLine", "live_line", "quiet_fds", "quiet_python", "say", "terminal"]

_terminal: TextIO | None = None
# Libraries whose Python loggers speak to the user unasked (train, report, promote).
NOISY_LOGGERS = ("ray", "wandb", "optuna", "torch", "matplotlib", "urllib3", "filelock", "fsspec")


def terminal() -> TextIO:
    """The stream for our own lines: the real stderr, also while :func:`quiet_fds` is in effect."""
    return _terminal or sys.stderr


@contextlib.contextmanager
def quiet_fds(log_path: str | os.PathLike[str], enabled: bool = True) -> Iterator[None]:
    """Send everything written to file descriptors 1 and 2 (Python, C++ and child processes alike) to
    ``log_path`` (appended) while the block runs; :func:`terminal` keeps writing to the real stderr."""
    global _terminal
    if not enabled or _terminal is not None:
        yield
        return
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    saved = (os.dup(1), os.dup(2))
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    _terminal = os.fdopen(os.dup(saved[1]), "w", buffering=1, encoding="utf-8", errors="replace")
    try:
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, log_fd):
            os.close(fd)
        _terminal.close()
        _terminal = None


@contextlib.contextmanager
def quiet_python(log_path: str | os.PathLike[str], enabled: bool = True) -> Iterator[None]:
    """For commands without Ray (train, report, promote): Python warnings and the log records of
    :data:`NOISY_LOGGERS` go to ``log_path`` instead of the terminal while the block runs."""
    if not enabled:
        yield
        return
    loggers = _noisy_loggers()
    saved = [(lg, lg.propagate, list(lg.handlers)) for lg in loggers]
    handler = _QuietFileHandler(log_path)
    handler.setLevel(logging.WARNING)  # what would have reached the terminal; a library's debug log stays its own
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    with warnings.catch_warnings():
        logging.captureWarnings(True)
        try:
            for lg in loggers:
                lg.handlers = [handler]
                lg.propagate = False
            yield
        finally:
            logging.captureWarnings(False)
            for lg, propagate, handlers in saved:
                lg.handlers, lg.propagate = handlers, propagate
            handler.close()


def _noisy_loggers() -> list[logging.Logger]:
    """The libraries' top loggers, and any logger below them with handlers of its own (PyTorch gives
    ``torch._dynamo`` and friends their own stderr handler, which a parent's handlers would not cover)."""
    loggers = {n: logging.getLogger(n) for n in (*NOISY_LOGGERS, "py.warnings")}
    for name, lg in list(logging.root.manager.loggerDict.items()):
        if isinstance(lg, logging.Logger) and lg.handlers and name.split(".")[0] in NOISY_LOGGERS:
            loggers[name] = lg
    return list(loggers.values())


class _QuietFileHandler(logging.FileHandler):
    """Opens the log only when a record comes; a log that cannot be written (read-only folder, full
    disk) drops the record instead of printing logging's own error report on the terminal."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path, delay=True)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            return
        super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        pass


class LiveLine:
    """Progress output: a live line on a terminal, whole lines elsewhere."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self._live = False

    def _out(self) -> TextIO:
        return self.stream or terminal()

    def _tty(self) -> bool:
        try:
            return self._out().isatty()
        except (ValueError, AttributeError):
            return False

    def update(self, text: str) -> None:
        """The current state: rewritten in place on a terminal (cut to its width), a line elsewhere."""
        out = self._out()
        text = _one_line(text)
        if self._tty():
            width = shutil.get_terminal_size((100, 24)).columns
            out.write("\r" + text[: max(width - 1, 10)] + "\x1b[K")
            self._live = True
        else:
            out.write(text + "\n")
        out.flush()

    def event(self, text: str) -> None:
        """A line to keep (an error, the end): printed whole, above the live line."""
        out = self._out()
        if self._live:
            out.write("\r\x1b[K")
            self._live = False
        out.write(_one_line(text) + "\n")
        out.flush()

    def close(self) -> None:
        if self._live:
            self._out().write("\n")
            self._out().flush()
            self._live = False


_LINE = LiveLine()
_BREAKS = re.compile(r"\s*[\r\n]+\s*")


def _one_line(text: str) -> str:
    """Line breaks (an exception's message) become spaces: a line is one event."""
    return _BREAKS.sub(" ", text.strip())


def live_line() -> LiveLine:
    """The one progress line of this process (the sweep's progress and the driver's messages share it)."""
    return _LINE


def say(text: str) -> None:
    """One whole line to the user on the terminal, above the live progress line if there is one."""
    _LINE.event(text)
