"""Video object detection with lava-dl's trained YOLO detectors: boxes per network, scored against
the float network's."""
