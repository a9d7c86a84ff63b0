"""SOT: single-object tracking by feature cross-correlation (OTB layout, success AUC / precision)."""
