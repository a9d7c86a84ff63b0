"""CSV tables of a report, written atomically."""

from __future__ import annotations

import csv
from pathlib import Path

from vistream_neuro.atomic import write_atomic


def write_csv(path: Path, rows: list[dict]) -> None:
    """Rows of equal keys as a CSV file with a header, written atomically."""
    def write(f):
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    write_atomic(path, write)
