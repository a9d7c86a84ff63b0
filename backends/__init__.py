"""Backends lower the spiking graph (IR) to a simulator: ``torch``, ``spikingjelly``, ``lava``.

Framework imports stay inside their backend module; :func:`backends.registry.lower` loads them.
"""
