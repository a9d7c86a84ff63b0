"""Argument types and the one-line usage error shared by the commands in evals/.

Bad arguments exit with code 2 and one line naming the argument and what was expected
(docs/ARCHITECTURE.md, "Command line").
"""

from __future__ import annotations

import argparse


class UsageError(ValueError):
    """Bad argument or input: reported in one line, exit code 2."""


class ArgParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        raise UsageError(message)


def parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW such as 128x64, got {text!r}") from None
    if h < 8 or w < 8:
        raise argparse.ArgumentTypeError(f"input size must be at least 8x8, got {text!r}")
    return h, w


def parse_crop(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y,W,H such as 0,0,320,240, got {text!r}") from None
    return x, y, w, h


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value
