"""Run warnings: what a user must be told that does not stop a run (frames that did not settle, a
calibration made at another input size, a sequence without detections).

They are ordinary Python warnings of the category :class:`RunWarning`, so library users see them
as any other warning; the CLI prints each on one line and records it in report.json.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class RunWarning(UserWarning):
    """Something about a run's input or result that its figures depend on."""


def warn(message: str) -> None:
    warnings.warn(message, RunWarning, stacklevel=2)


@contextmanager
def collected(echo: Callable[[str], None] | None = None) -> Iterator[list[str]]:
    """The messages of the :class:`RunWarning`\\s raised inside, filled as they come (each also
    passed to ``echo``); other warnings are shown as usual."""
    messages: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("always", RunWarning)
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, RunWarning):
                messages.append(str(message))
                if echo is not None:
                    echo(str(message))
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield messages
