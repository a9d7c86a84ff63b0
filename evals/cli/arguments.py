"""Argument types and the one-line usage error shared by the commands in evals/.

Bad arguments exit with code 2 and one line naming the argument and what was expected
(docs/ARCHITECTURE.md, "Command line").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vistream_neuro.atomic import FolderReplacement, check_writable
from vistream_neuro.quant import check_bits, check_level


class UsageError(ValueError):
    """Bad argument or input: reported in one line, exit code 2."""


class ArgParser(argparse.ArgumentParser):
    """One-line errors; ``dash_values`` names options whose value may start with ``-`` (a crop
    ``-5,0,10,10`` is then checked by its type, not mistaken for an option)."""

    def __init__(self, *args, dash_values: tuple[str, ...] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.dash_values = dash_values

    def error(self, message: str) -> None:  # one line instead of usage + message
        raise UsageError(message)

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        joined, i = [], 0
        while i < len(args):
            if args[i] in self.dash_values and i + 1 < len(args) and args[i + 1].startswith("-"):
                joined.append(f"{args[i]}={args[i + 1]}")
                i += 2
            else:
                joined.append(args[i])
                i += 1
        return super().parse_known_args(joined, namespace)


MAX_SIDE = 8192  # pixels per side of a network input


def parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW such as 128x64, got {text!r}") from None
    if not (8 <= h <= MAX_SIDE and 8 <= w <= MAX_SIDE):
        raise argparse.ArgumentTypeError(f"input size must be from 8x8 to {MAX_SIDE}x{MAX_SIDE}, "
                                         f"got {text!r}")
    return h, w


def parse_crop(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y,W,H such as 0,0,320,240, got {text!r}") from None
    if x < 0 or y < 0 or w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"expected X,Y >= 0 and W,H >= 1, got {text!r}")
    return x, y, w, h


def act_bits(text: str) -> int:
    try:
        return check_bits(int(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc) if text.strip().lstrip("-").isdigit()
                                         else f"expected an integer, got {text!r}") from None


def level(text: str) -> int:
    """ViStream's ``level`` (its ``MyQuan(level, sym)`` bounds)."""
    try:
        return check_level(int(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc) if text.strip().lstrip("-").isdigit()
                                         else f"expected an integer, got {text!r}") from None


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def positive(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1) (a score threshold)."""
    value = non_negative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text!r}")
    return value


def unit_interval(text: str) -> float:
    """A number in (0, 1] (an IoU threshold)."""
    value = non_negative_float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _unwritable(flag: str, path: Path, exc: OSError) -> UsageError:
    if exc.strerror:
        return UsageError(f"{flag} {path}: cannot write there ({exc.strerror.lower()})")
    return UsageError(f"{flag} {exc}")


def output_folder(path: Path, flag: str = "--out") -> FolderReplacement:
    """The run's output folder, built beside ``path`` and swapped in whole at the end; a place that
    cannot take it is a usage error now, before any computation."""
    try:
        return FolderReplacement(path)
    except OSError as exc:
        raise _unwritable(flag, path, exc) from None


def output_file(path: Path, flag: str = "--out") -> Path:
    """``path`` once a file has been written there and removed (a usage error otherwise)."""
    try:
        check_writable(path)
    except OSError as exc:
        raise _unwritable(flag, path, exc) from None
    return path
