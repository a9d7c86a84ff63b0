"""Task harness and CLI (`python -m evals.run`); nothing imports evals."""
