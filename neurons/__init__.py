"""ST-BIF neurons: the pure reference step, a SpikingJelly module and (later) a Lava process.

This package imports no other project package (DESIGN.md section 3).
"""
