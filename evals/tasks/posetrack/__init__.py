"""PoseTrack: people and their keypoints tracked (PoseTrack-18 JSON, MOTA and mAP)."""
