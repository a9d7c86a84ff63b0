"""The one error type of bad dataset input, shared by every task's loaders.

The CLI turns it into a one-line message and exit code 2; subclasses name the dataset family.
"""


class DataError(ValueError):
    """Missing, malformed or inconsistent dataset files; the message names the file (and line)."""
