"""The built-in synthetic video: textured objects moving over a textured background, with noise.

Consecutive frames differ a little everywhere (sensor noise) and a lot where objects move, as in
real video.  Seeded, so runs are reproducible.
"""

from __future__ import annotations

import colorsys

import numpy as np


def texture(rng: np.random.Generator, h: int, w: int, octaves: int = 4) -> np.ndarray:
    """Smooth random RGB texture in [0, 1]: sum of upsampled noise at several scales."""
    out = np.zeros((3, h, w))
    for k in range(octaves):
        cells = 2 ** (k + 2)
        coarse = rng.random((3, cells + 1, cells + 1))
        ys, xs = np.linspace(0, cells, h), np.linspace(0, cells, w)
        y0, x0 = np.minimum(ys.astype(int), cells - 1), np.minimum(xs.astype(int), cells - 1)
        fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
        c = coarse
        layer = (c[:, y0][:, :, x0] * (1 - fy) * (1 - fx) + c[:, y0 + 1][:, :, x0] * fy * (1 - fx)
                 + c[:, y0][:, :, x0 + 1] * (1 - fy) * fx + c[:, y0 + 1][:, :, x0 + 1] * fy * fx)
        out += layer / 2**k
    out -= out.min()
    return out / max(out.max(), 1e-12)


def synthetic_video(
    frames: int, height: int = 64, width: int = 64, objects: int = 3, noise: float = 0.01,
    seed: int = 0,
) -> np.ndarray:
    """``(frames, 3, height, width)`` float32 RGB frames in [0, 1], on the 8-bit grid of a camera."""
    return bouncing_objects(frames, height, width, objects, noise, seed)[0]


def bouncing_objects(
    frames: int, height: int = 64, width: int = 64, objects: int = 3, noise: float = 0.01,
    seed: int = 0, colour: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The synthetic video and its label maps ``(frames, height, width)`` uint8: 0 for background,
    ``k`` where object ``k`` is seen (objects drawn in order, so later ones pass in front).

    ``colour`` in [0, 1] blends each object's texture with a hue of its own (evenly spaced), so
    objects differ from each other and from the background as real ones do.
    """
    if frames < 1 or height < 8 or width < 8:
        raise ValueError(f"synthetic video needs frames >= 1 and size >= 8x8, got {frames}, {height}x{width}")
    rng = np.random.default_rng(seed)
    background = texture(rng, height, width)
    sprites = []
    for _ in range(objects):
        oh, ow = rng.integers(height // 6, height // 3 + 1), rng.integers(width // 6, width // 3 + 1)
        yy, xx = np.mgrid[:oh, :ow]
        mask = ((yy - oh / 2) / (oh / 2)) ** 2 + ((xx - ow / 2) / (ow / 2)) ** 2 <= 1.0
        pos = rng.uniform([0, 0], [height - oh, width - ow])
        vel = rng.uniform(-1.5, 1.5, size=2) * max(height, width) / 64
        sprites.append((texture(rng, oh, ow, octaves=2), mask, pos, vel))
    for k, (tex, *_) in enumerate(sprites):
        hue = np.asarray(colorsys.hsv_to_rgb(k / max(objects, 1), 0.9, 0.9))[:, None, None]
        tex *= 1 - colour
        tex += colour * hue
    video = np.empty((frames, 3, height, width), dtype=np.float32)
    labels = np.zeros((frames, height, width), dtype=np.uint8)
    for t in range(frames):
        frame = background.copy()
        for k, (tex, mask, pos, vel) in enumerate(sprites, start=1):
            p = pos + vel * t
            limit = np.array([height - mask.shape[0], width - mask.shape[1]])
            p = np.abs((p + limit) % (2 * limit) - limit)  # bounce off the borders
            y, x = np.round(p).astype(int)
            region = frame[:, y:y + mask.shape[0], x:x + mask.shape[1]]
            region[:, mask] = tex[:, mask]
            labels[t, y:y + mask.shape[0], x:x + mask.shape[1]][mask] = k
        frame += noise * rng.standard_normal(frame.shape)
        video[t] = np.round(np.clip(frame, 0.0, 1.0) * 255) / 255
    return video, labels
