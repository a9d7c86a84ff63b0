"""MOT: UniTrack's MOT head on the converted backbone, MOTChallenge data, motmetrics and HOTA."""
