"""The one exception type a user can cause; the CLI turns it into one line and exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """An error in the user's input (config, data, checkpoint, command line): not a bug."""


class LinkedKeysError(UserError):
    """Values that are each allowed alone but not together (``keys`` names them), so a search space
    that searches one of them must be checked over combinations rather than point by point."""

    def __init__(self, message: str, keys: tuple[str, ...]) -> None:
        super().__init__(message)
        self.keys = keys

    def __reduce__(self) -> tuple[type, tuple[str, tuple[str, ...]]]:
        return type(self), (str(self), self.keys)  # Ray pickles a trial's exception to the driver


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A ' (did you mean 'x'?)' suffix when a close candidate exists, else ''."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def write_error(path: object, err: OSError) -> UserError:
    """A failed write (full disk, read-only folder, no permission) as one line naming the path."""
    lines = str(err).strip().splitlines()  # pyarrow's OSError has a message but no strerror
    why = err.strerror or (lines[0] if lines else type(err).__name__)
    return UserError(f"cannot write {path}: {why}")
