"""ST-BIF neurons: the pure reference step, a SpikingJelly module and a Lava process, plus Loihi's limits.

This package imports no other project package (docs/ARCHITECTURE.md, "Layers").
"""
