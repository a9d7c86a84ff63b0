"""Reports of a run: report.json, CSV tables, plots and the hardware-mapping section."""
