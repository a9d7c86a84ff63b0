"""vistream-neuro library: IR, models, quantisation, conversion, streaming driver.

Imports ``neurons`` only; never a backend or evals (DESIGN.md section 3).
"""

__version__ = "0.1.0"
