"""VOS: video object segmentation by label propagation (DAVIS-2017 layout, J&F)."""
