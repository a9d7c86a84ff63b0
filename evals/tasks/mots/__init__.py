"""MOTS: multi-object tracking and segmentation (MOTS20 txt with RLE masks, sMOTSA)."""
