"""Data sources shared by the tasks: the synthetic generator, sample videos, dataset-file helpers, errors."""
