"""Backends lower the spiking graph (IR) to a simulator: ``torch``, ``spikingjelly``, ``lava``.

Each declares a :class:`vistream_neuro.backend.Backend` registered as an entry point (see
pyproject.toml), so the library finds it by name; framework imports stay inside its module.
"""
