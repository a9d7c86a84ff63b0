"""The tracking tasks, one package each with its data (synthetic and the public layout), head and metrics."""
