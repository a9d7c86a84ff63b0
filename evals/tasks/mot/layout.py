"""MOTChallenge sequence folders: the sequence type, ``seqinfo.ini``, ``img1/`` and the folder
layout, shared by the MOT, MOTS and PoseTrack readers and writers."""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from evals.data.errors import DataError
from evals.data.files import check_folder_name, write_jpegs
from vistream_neuro.atomic import replace_folder

SEQINFO_KEYS = ("imDir", "frameRate", "seqLength", "imWidth", "imHeight", "imExt")


class MotDataError(DataError):
    """Malformed or incomplete MOTChallenge data; the message names the file (and line)."""


@dataclass
class MotSequence:
    """One sequence: frames ``(T, 3, H, W)`` float32 RGB in [0, 1] and MOTChallenge rows.

    ``gt`` is ``(N, 9)`` (GT_COLUMNS, frames 1-based), ``det`` is ``(M, 7)`` (DET_COLUMNS) or None,
    ``masks`` maps ``(frame, id)`` to the object's visible pixels (synthetic data and MOTS),
    ``keypoints`` maps it to ``(17, 3)`` PoseTrack joints ``x, y, visible`` (pose data).
    """

    name: str
    frames: np.ndarray
    frame_rate: float
    gt: np.ndarray
    det: np.ndarray | None = None
    masks: dict[tuple[int, int], np.ndarray] | None = None
    path: Path | None = None
    keypoints: dict[tuple[int, int], np.ndarray] | None = None


def write_sequence(seq: MotSequence, root: Path, annotations) -> Path:
    """seqinfo.ini and img1/ of ``seq`` in a temporary folder, ``annotations(folder)`` for the rest,
    then the folder renamed to ``root/<name>`` (replacing an existing one)."""
    root = Path(root)
    check_folder_name(root, seq.name, MotDataError)
    n, channels, h, w = seq.frames.shape
    if channels != 3:
        raise MotDataError(f"{root / seq.name}: frames must be (T, 3, H, W), got {seq.frames.shape}")

    def build(tmp: Path) -> None:
        rate = int(seq.frame_rate) if float(seq.frame_rate).is_integer() else seq.frame_rate
        (tmp / "seqinfo.ini").write_text(
            f"[Sequence]\nname={seq.name}\nimDir=img1\nframeRate={rate}\nseqLength={n}\n"
            f"imWidth={w}\nimHeight={h}\nimExt=.jpg\n")
        write_jpegs(tmp / "img1", seq.frames, lambda t: f"{t + 1:06d}.jpg")
        annotations(tmp)

    return replace_folder(root / seq.name, build)


def read_seqinfo(path: Path) -> dict:
    file = path / "seqinfo.ini"
    if not file.is_file():
        raise MotDataError(f"{file}: missing (not a MOTChallenge sequence folder)")
    parser = configparser.ConfigParser()
    try:
        parser.read_string(file.read_text())
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise MotDataError(f"{file}: not a readable ini file ({str(exc).splitlines()[0]})") from None
    if not parser.has_section("Sequence"):
        raise MotDataError(f"{file}: no [Sequence] section")
    section = parser["Sequence"]
    missing = [key for key in SEQINFO_KEYS if key not in section]
    if missing:
        raise MotDataError(f"{file}: missing keys {', '.join(missing)} in [Sequence]")
    info = {"name": section.get("name", path.name), "imDir": section["imDir"], "imExt": section["imExt"]}
    for key, kind in (("frameRate", float), ("seqLength", int), ("imWidth", int), ("imHeight", int)):
        try:
            info[key] = kind(section[key])
        except ValueError:
            raise MotDataError(f"{file}: {key}={section[key]!r} is not a number") from None
        if info[key] <= 0:
            raise MotDataError(f"{file}: {key}={section[key]} must be positive")
    return info


def frame_count(path: Path, length: int, start: int, max_frames: int | None) -> int:
    """How many frames the window ``start, max_frames`` of a ``length``-frame sequence holds."""
    if start < 0 or start >= length or (max_frames is not None and max_frames < 1):
        raise MotDataError(f"{path}: start={start}, max_frames={max_frames} selects no frame of "
                           f"a {length}-frame sequence")
    return length - start if max_frames is None else min(max_frames, length - start)


def read_frames(path: Path, info: dict, start: int, count: int,
                 size: tuple[int, int] | None = None) -> np.ndarray:
    """Frames ``start .. start+count-1`` of the image folder, ``(count, 3, H, W)`` float32 RGB."""
    image_dir = path / info["imDir"]
    if not image_dir.is_dir():
        raise MotDataError(f"{image_dir}: image folder missing (imDir in seqinfo.ini)")
    files = sorted(p for p in image_dir.iterdir() if p.suffix.lower() == info["imExt"].lower())
    if not files:
        raise MotDataError(f"{image_dir}: no {info['imExt']} images")
    if len(files) != info["seqLength"]:
        raise MotDataError(f"{image_dir}: {len(files)} {info['imExt']} images, but seqinfo.ini "
                           f"says seqLength={info['seqLength']}")
    frames = []
    for file in files[start:start + count]:
        image = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if image is None:
            raise MotDataError(f"{file}: not a readable image")
        if image.shape[:2] != (info["imHeight"], info["imWidth"]):
            raise MotDataError(f"{file}: image is {image.shape[1]}x{image.shape[0]} (WxH), seqinfo.ini "
                               f"says {info['imWidth']}x{info['imHeight']}")
        if size is not None:
            image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB).transpose(2, 0, 1))
    return np.stack(frames).astype(np.float32) / 255.0


def sequence_folders(root: Path) -> list[Path]:
    """``root`` itself if it is a sequence folder, else its sequence subfolders (sorted)."""
    root = Path(root)
    if not root.is_dir():
        raise MotDataError(f"{root}: no such dataset folder")
    if (root / "seqinfo.ini").is_file():
        return [root]
    folders = sorted(p for p in root.iterdir()
                     if p.is_dir() and not p.name.startswith(".") and (p / "seqinfo.ini").is_file())
    if not folders:
        raise MotDataError(f"{root}: no sequence folders (subfolders with a seqinfo.ini)")
    return folders
