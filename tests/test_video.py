"""Video input: OpenCV files and frame folders, crops, and one-line errors for bad input."""

import cv2
import numpy as np
import pytest

from evals.data.synthetic import synthetic_video
from evals.run import main
from vistream_neuro.video import VideoError, read_video, write_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    frames = synthetic_video(12, 96, 128, seed=5)
    write_video(path, frames)
    return path, frames


def test_read_back_what_was_written(clip):
    path, frames = clip
    video = read_video(path, start=0, frames=12)
    assert video.shape == frames.shape and video.dtype == np.float32
    assert np.abs(video - frames).mean() < 0.03  # MJPG is lossy
    part = read_video(path, start=3, frames=4, crop=(16, 8, 64, 32), size=(16, 32))
    assert part.shape == (4, 3, 16, 32)
    assert np.array_equal(read_video(path, start=3, frames=None), video[3:])


def test_frame_folder(tmp_path, clip):
    _, frames = clip
    for i, frame in enumerate(frames[:5]):
        cv2.imwrite(str(tmp_path / f"{i:06d}.png"),
                    (frame.transpose(1, 2, 0)[:, :, ::-1] * 255).round().astype(np.uint8))
    video = read_video(tmp_path, start=1, frames=4)
    assert np.abs(video - frames[1:5]).max() <= 0.5 / 255 + 1e-6
    assert np.array_equal(read_video(tmp_path, start=1, frames=None), video)


def test_bad_video_inputs(tmp_path, clip):
    path, _ = clip
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 100)
    cases = [((tmp_path / "missing.mp4",), "no such video"),
             ((tmp_path / "broken.mp4",), "broken.mp4"),
             ((path, 10, 5), "holds 12 frames"),
             ((path, 12, None), "--start 12 asks for frames up to 12, but it holds 12 frames"),
             ((path, 0, 2, (100, 0, 64, 64)), "outside the 128x96"),
             ((tmp_path,), "no image frames")]
    for args, message in cases:
        with pytest.raises(VideoError, match=message):
            read_video(*args)


def test_cli_runs_on_a_video_and_rejects_bad_ones(tmp_path, clip, capsys):
    path, _ = clip
    out = tmp_path / "out"
    assert main(["--backend", "spikingjelly", "--task", "stream", "--video", str(path), "--frames", "4",
                 "--crop", "0,0,96,96", "--input-size", "32x32", "--out", str(out)]) == 0
    assert (out / "report.json").exists()
    capsys.readouterr()
    for args in (["--video", str(tmp_path / "nope.avi")],
                 ["--video", str(path), "--crop", "0,0,500,10"],
                 ["--video", str(path), "--start", "11", "--frames", "5"]):
        assert main(["--backend", "torch", "--task", "stream", *args, "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(path.parent) in err[0] or "nope.avi" in err[0], err
    assert not (tmp_path / "bad" / "report.json").exists()
