"""Video object segmentation (VOS) data: a synthetic generator and DAVIS-2017 folder IO.

Semi-supervised VOS gives the first frame's object masks and asks for the masks of every later
frame.  The synthetic sequences are the built-in video's bouncing, occluding objects with their
labels (:func:`evals.data.synthetic.bouncing_objects`), so the VOS task runs and is scored without DAVIS;
the reader takes real DAVIS-2017 folders (``JPEGImages/<res>/<seq>/00000.jpg``, palette PNGs
``Annotations/<res>/<seq>/00000.png`` whose pixel values are object ids, ``ImageSets/2017/<split>.txt``),
so synthetic and public data share one code path.  Label maps are ``(T, H, W)`` uint8: 0 background,
1..K objects, 255 void (not scored).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from evals.data.errors import DataError
from evals.data.files import write_jpegs
from evals.data.synthetic import bouncing_objects
from vistream_neuro.atomic import replace_folder, write_atomic
from vistream_neuro.video import VideoError, read_video

VOID = 255
OBJECT_COLOUR = 0.6  # hue share of each synthetic object's look (the rest is texture)
RESOLUTION = "480p"


class VosDataError(DataError):
    """Malformed or incomplete DAVIS data; the message names the file."""


@dataclass
class VosSequence:
    """One sequence: frames ``(T, 3, H, W)`` float32 RGB in [0, 1] and labels ``(T, H, W)`` uint8.

    Frames without an annotation (DAVIS test-dev gives only the first) are void everywhere; ``path``
    is the image folder and ``palette`` the annotations' ``(N, 3)`` uint8 colour map.
    """

    name: str
    frames: np.ndarray
    labels: np.ndarray
    path: Path | None = None
    palette: np.ndarray | None = None

    @property
    def objects(self) -> list[int]:
        """The target ids: those in the first frame's labels, without background and void."""
        return [int(i) for i in np.unique(self.labels[0]) if i not in (0, VOID)]

    @property
    def scored(self) -> bool:
        """Whether a prediction can be scored: three frames or more, later frames annotated."""
        return len(self.labels) >= 3 and bool((self.labels[1:] != VOID).any())


def davis_palette() -> np.ndarray:
    """The DAVIS (PASCAL VOC) colour map, ``(256, 3)`` uint8: bit ``3j + c`` of an index sets bit
    ``7 - j`` of its channel ``c``."""
    index = np.arange(256)
    palette = np.zeros((256, 3), dtype=np.uint8)
    for j in range(8):
        for c in range(3):
            palette[:, c] |= (((index >> (3 * j + c)) & 1) << (7 - j)).astype(np.uint8)
    return palette


def synthetic_vos(
    name: str = "vos-01", frames: int = 40, height: int = 240, width: int = 320, objects: int = 3,
    seed: int = 0,
) -> VosSequence:
    """A seeded DAVIS-like sequence: textured objects that stay in view, bouncing off the borders and
    passing in front of each other (:func:`evals.data.synthetic.bouncing_objects`).  Objects hidden in the
    first frame are not targets (semi-supervised VOS gives the first frame's mask) and stay background.
    """
    if not 2 <= objects < VOID:
        raise ValueError(f"synthetic VOS needs 2 to 254 objects, got {objects}")
    video, drawn = bouncing_objects(frames, height, width, objects, seed=seed, colour=OBJECT_COLOUR)
    labels = np.zeros_like(drawn)
    for new, old in enumerate(k for k in range(1, objects + 1) if (drawn[0] == k).any()):
        labels[drawn == old] = new + 1
    return VosSequence(name, video, labels, None, davis_palette())


def synthetic_vos_dataset(sequences: int = 2, seed: int = 0, **kwargs) -> list[VosSequence]:
    """``vos-01``, ``vos-02``, ...: sequence ``i`` from seed ``seed + i``."""
    return [synthetic_vos(name=f"vos-{i + 1:02d}", seed=seed + i, **kwargs) for i in range(sequences)]


def _palette_image(labels: np.ndarray, palette: np.ndarray | None) -> Image.Image:
    """A 'P' mode image whose pixel values are ``labels``, with ``palette`` (DAVIS's by default)."""
    h, w = labels.shape
    image = Image.frombytes("P", (w, h), np.ascontiguousarray(labels, dtype=np.uint8).tobytes())
    image.putpalette((davis_palette() if palette is None else palette).astype(np.uint8).ravel().tolist())
    return image


def _check_labels(where: Path, labels: np.ndarray, shape: tuple[int, ...] | None = None) -> np.ndarray:
    labels = np.asarray(labels)
    if (labels.ndim != 3 or not np.issubdtype(labels.dtype, np.integer) or labels.size == 0
            or labels.min() < 0 or labels.max() > 255 or (shape is not None and labels.shape != shape)):
        expected = "(T, H, W)" if shape is None else str(shape)
        raise VosDataError(f"{where}: labels must be {expected} integers in 0..255, got {labels.shape} "
                           f"{labels.dtype}")
    return labels.astype(np.uint8)


def write_davis_results(folder: Path, labels: np.ndarray, palette: np.ndarray | None = None) -> None:
    """Predicted label maps ``(T, H, W)`` as DAVIS results: ``folder/00000.png`` ... palette PNGs,
    each written atomically (the PNG bytes go to the temporary file's binary buffer)."""
    folder = Path(folder)
    for t, frame in enumerate(_check_labels(folder, labels)):
        image = _palette_image(frame, palette)
        write_atomic(folder / f"{t:05d}.png", lambda f, image=image: image.save(f.buffer, format="PNG"))


def write_davis(sequences: list[VosSequence], root: Path, split: str = "val") -> Path:
    """Write ``sequences`` under ``root`` in the DAVIS-2017 layout (``480p``), listed in
    ``ImageSets/2017/<split>.txt``; JPEG frames (quality 95), every frame's labels as a palette PNG.

    Each sequence's image and annotation folders are built in temporary folders and then replace any
    of that name; the split file is replaced atomically.
    """
    root = Path(root)
    names = [seq.name for seq in sequences]
    if not names:
        raise VosDataError(f"{root}: no sequences to write")
    for name in names:
        if not name or Path(name).name != name or name.startswith(".") or names.count(name) > 1:
            raise VosDataError(f"{root}: sequence name {name!r} is not a unique plain folder name")
    checked = []
    for seq in sequences:
        n, channels, h, w = seq.frames.shape
        where = root / "Annotations" / RESOLUTION / seq.name
        if channels != 3:
            raise VosDataError(f"{where}: frames must be (T, 3, H, W), got {seq.frames.shape}")
        checked.append((seq, _check_labels(where, seq.labels, (n, h, w))))
    for seq, labels in checked:
        replace_folder(root / "JPEGImages" / RESOLUTION / seq.name,
                       lambda tmp, seq=seq: write_jpegs(tmp, seq.frames, lambda t: f"{t:05d}.jpg"))
        replace_folder(root / "Annotations" / RESOLUTION / seq.name,
                       lambda tmp, seq=seq, labels=labels: _write_pngs(tmp, labels, seq.palette))
    write_atomic(root / "ImageSets" / "2017" / f"{split}.txt", lambda f: f.write("\n".join(names) + "\n"))
    return root


def _write_pngs(folder: Path, labels: np.ndarray, palette: np.ndarray | None) -> None:
    for t, frame in enumerate(labels):
        _palette_image(frame, palette).save(folder / f"{t:05d}.png")


def _read_annotation(file: Path, size: tuple[int, int], first: Path, palette: np.ndarray | None):
    """Labels and palette of one annotation PNG, checked against the image size and first palette."""
    try:
        with Image.open(file) as image:
            image.load()
            mode, colours, labels = image.mode, image.getpalette() or [], np.array(image)
    except (OSError, SyntaxError, ValueError) as exc:
        raise VosDataError(f"{file}: not a readable PNG ({str(exc).splitlines()[0]})") from None
    if mode != "P":
        raise VosDataError(f"{file}: palette mismatch: mode {mode!r}, expected a palette ('P') PNG of ids")
    colours = np.array(colours, dtype=np.uint8).reshape(-1, 3)
    if palette is not None and not np.array_equal(colours, palette):
        raise VosDataError(f"{file}: palette mismatch: its palette differs from that of {first.name}")
    if labels.shape != size:
        raise VosDataError(f"{file}: annotation is {labels.shape[1]}x{labels.shape[0]} (WxH), the images "
                           f"are {size[1]}x{size[0]}")
    return labels, colours


def _read_sequence(root: Path, name: str, resolution: str, start: int, max_frames: int | None):
    """One sequence's window; labels of frames without an annotation are void."""
    image_dir, ann_dir = (root / kind / resolution / name for kind in ("JPEGImages", "Annotations"))
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    if not images:
        raise VosDataError(f"{image_dir}: no .jpg frames")
    if start < 0 or start >= len(images) or (max_frames is not None and max_frames < 1):
        raise VosDataError(f"{image_dir}: start={start}, max_frames={max_frames} selects no frame of a "
                           f"{len(images)}-frame sequence")
    count = len(images) - start if max_frames is None else min(max_frames, len(images) - start)
    try:
        frames = read_video(image_dir, start, count)
    except VideoError as exc:
        raise VosDataError(str(exc)) from None
    first = ann_dir / f"{images[0].stem}.png"
    if not first.is_file():
        raise VosDataError(f"{first}: missing (the first frame's annotation is required)")
    pngs = sorted(ann_dir.glob("*.png"))
    if len(pngs) not in (1, len(images)):
        raise VosDataError(f"{ann_dir}: {len(pngs)} annotation PNGs, expected 1 (first frame) or "
                           f"{len(images)} (one per image)")
    first_only = len(pngs) < len(images)
    if first_only and start > 0:
        raise VosDataError(f"{ann_dir}: only the first frame is annotated, so start must be 0, not {start}")
    size = frames.shape[2:]
    _, palette = _read_annotation(first, size, first, None)
    labels = np.full((count, *size), VOID, dtype=np.uint8)
    for t, image in enumerate(images[:1] if first_only else images[start:start + count]):
        file = ann_dir / f"{image.stem}.png"
        if not file.is_file():
            raise VosDataError(f"{file}: missing (annotations must be named like the images)")
        labels[t] = _read_annotation(file, size, first, palette)[0]
    return VosSequence(name, frames, labels, image_dir, palette)


def read_davis(
    root: Path, sequences: list[str] | None = None, split: str = "val", start: int = 0,
    max_frames: int | None = None, resolution: str = RESOLUTION,
) -> list[VosSequence]:
    """Sequences of a DAVIS-2017 root, frames ``start .. start+max_frames-1`` (0-based) of each.

    ``sequences=None`` reads those listed in ``ImageSets/2017/<split>.txt``, or every folder under
    ``JPEGImages/<resolution>`` without that file.  Annotations of all frames or of the first only.
    """
    root = Path(root)
    image_root = root / "JPEGImages" / resolution
    if not image_root.is_dir():
        raise VosDataError(f"{image_root}: missing (expected a DAVIS-2017 root with {resolution} frames)")
    source = image_root
    if sequences is None:
        split_file = root / "ImageSets" / "2017" / f"{split}.txt"
        if split_file.is_file():
            source, sequences = split_file, split_file.read_text().split()
        else:
            sequences = sorted(p.name for p in image_root.iterdir()
                               if p.is_dir() and not p.name.startswith("."))
    if not sequences:
        raise VosDataError(f"{source}: no sequences")
    for name in sequences:
        if not (image_root / name).is_dir():
            raise VosDataError(f"{source}: sequence {name!r} is absent ({image_root / name} is missing)")
    return [_read_sequence(root, name, resolution, start, max_frames) for name in sequences]
