"""Command-line support shared by the commands in evals/: argument types and one-line usage errors."""
