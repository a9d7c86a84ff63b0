"""The evaluation harness: run configuration, the stream task and the one loop of every tracking task."""
