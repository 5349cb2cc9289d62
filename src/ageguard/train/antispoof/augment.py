"""Augmentations: synthetic attacks made from live faces, and honest variation of every capture.

All functions work on float32 H x W x 3 arrays in 0..255 and take a ``numpy`` Generator, so a run is
reproducible from its seed. Synthetic attacks model what a camera sees of:

* a screen replay: the screen's gamma and gamut, a raised black level, moiré between the pixel grid
  and the camera's sensor, the pixel grid itself, glare, and the bezel around the screen;
* a print: colour loss and a compressed range (paper white, ink black), halftone dots, paper texture,
  and the paper's edge with whatever is behind it.

Genuine variation (blur, noise, JPEG, lighting, colour temperature, low resolution) is applied to
live and attack images alike, so that a poor but genuine capture is not taken for an attack.
"""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter

F32 = npt.NDArray[np.float32]


def _grid(h: int, w: int) -> tuple[F32, F32]:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return xs, ys


def _to_pil(x: F32) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(x), 0, 255).astype(np.uint8))


def _from_pil(im: Image.Image) -> F32:
    return np.asarray(im, dtype=np.float32)


def gaussian_blur(x: F32, sigma: float) -> F32:
    return _from_pil(_to_pil(x).filter(ImageFilter.GaussianBlur(sigma)))


def jpeg(x: F32, quality: int) -> F32:
    buf = io.BytesIO()
    _to_pil(x).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as im:
        return _from_pil(im.convert("RGB"))


def rescale(x: F32, factor: float) -> F32:
    """Down then up again: the detail of a smaller face."""
    h, w = x.shape[:2]
    small = _to_pil(x).resize((max(8, int(w * factor)), max(8, int(h * factor))), Image.Resampling.BILINEAR)
    return _from_pil(small.resize((w, h), Image.Resampling.BILINEAR))


# ---------------------------------------------------------------- genuine variation


def lighting(x: F32, rng: np.random.Generator) -> F32:
    gain = rng.uniform(0.6, 1.35)
    gamma = rng.uniform(0.75, 1.35)
    tint = rng.uniform(0.9, 1.1, size=3).astype(np.float32)
    y = 255.0 * (np.clip(x * gain * tint, 0, 255) / 255.0) ** gamma
    # A side light: a gentle ramp across the face.
    if rng.random() < 0.3:
        h, w = x.shape[:2]
        xs, ys = _grid(h, w)
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(angle) * (xs / w - 0.5) + np.sin(angle) * (ys / h - 0.5)) * rng.uniform(0.2, 0.6)
        y = y * (1.0 + ramp[..., None])
    return y.astype(np.float32)


def capture(x: F32, rng: np.random.Generator, strength: float = 1.0) -> F32:
    """Camera and transport variation of an honest capture (also applied to attacks)."""
    if rng.random() < 0.5 * strength:
        x = lighting(x, rng)
    if rng.random() < 0.25 * strength:
        x = rescale(x, rng.uniform(0.35, 0.8))
    if rng.random() < 0.25 * strength:
        x = gaussian_blur(x, rng.uniform(0.3, 1.3))
    if rng.random() < 0.3 * strength:
        x = x + rng.normal(0.0, rng.uniform(1.5, 7.0), size=x.shape).astype(np.float32)
    if rng.random() < 0.4 * strength:
        x = jpeg(x, int(rng.integers(35, 96)))
    return np.clip(x, 0, 255).astype(np.float32)


# ---------------------------------------------------------------- attack building blocks


def _grating(h: int, w: int, rng: np.random.Generator, low: float, high: float) -> F32:
    xs, ys = _grid(h, w)
    freq = rng.uniform(low, high)
    angle = rng.uniform(0, np.pi)
    phase = rng.uniform(0, 2 * np.pi)
    return np.sin(2 * np.pi * freq * (np.cos(angle) * xs + np.sin(angle) * ys) + phase).astype(np.float32)


def moire(x: F32, rng: np.random.Generator) -> F32:
    h, w = x.shape[:2]
    pattern = _grating(h, w, rng, 0.02, 0.25)
    if rng.random() < 0.5:
        pattern = pattern * _grating(h, w, rng, 0.02, 0.25)
    amp = rng.uniform(0.03, 0.14)
    colour = rng.uniform(0.5, 1.0, size=3).astype(np.float32)
    return x * (1.0 + amp * pattern[..., None] * colour)


def pixel_grid(x: F32, rng: np.random.Generator) -> F32:
    h, w = x.shape[:2]
    xs, ys = _grid(h, w)
    period = int(rng.integers(2, 5))
    depth = rng.uniform(0.02, 0.1)
    mask = np.ones((h, w), np.float32)
    mask[(ys.astype(int) % period) == 0] -= depth
    mask[(xs.astype(int) % period) == 0] -= depth
    y = x * mask[..., None]
    if rng.random() < 0.5:  # RGB sub-pixel stripes
        stripe = (xs.astype(int) % 3)[..., None] == np.arange(3)[None, None, :]
        y = y * (1.0 + rng.uniform(0.03, 0.12) * (stripe.astype(np.float32) - 1 / 3))
    return y


def screen_tone(x: F32, rng: np.random.Generator) -> F32:
    """A display's gamma, gamut and black level, seen again by a camera."""
    mix = np.eye(3, dtype=np.float32) + rng.normal(0, 0.06, size=(3, 3)).astype(np.float32)
    y = x @ mix.T
    y = 255.0 * (np.clip(y, 0, 255) / 255.0) ** rng.uniform(0.7, 1.4)
    black = rng.uniform(5, 35)
    y = black + y * (rng.uniform(0.75, 1.05) * (255 - black) / 255)
    y = y * np.array([rng.uniform(0.9, 1.0), rng.uniform(0.95, 1.02), rng.uniform(1.0, 1.12)], np.float32)
    return y.astype(np.float32)


def glare(x: F32, rng: np.random.Generator) -> F32:
    h, w = x.shape[:2]
    xs, ys = _grid(h, w)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    sx, sy = rng.uniform(0.08, 0.4) * w, rng.uniform(0.08, 0.4) * h
    blob = np.exp(-(((xs - cx) / sx) ** 2 + ((ys - cy) / sy) ** 2) / 2)
    return x + rng.uniform(40, 160) * blob[..., None]


def print_tone(x: F32, rng: np.random.Generator) -> F32:
    """Ink on paper: less saturation, a compressed range, a paper-coloured white."""
    grey = x.mean(axis=2, keepdims=True)
    y = grey + (x - grey) * rng.uniform(0.45, 0.95)
    low, high = rng.uniform(10, 45), rng.uniform(190, 245)
    y = low + y * (high - low) / 255.0
    paper = np.array([1.0, rng.uniform(0.96, 1.0), rng.uniform(0.85, 0.98)], np.float32)
    return (y * paper).astype(np.float32)


def halftone(x: F32, rng: np.random.Generator) -> F32:
    h, w = x.shape[:2]
    xs, ys = _grid(h, w)
    freq = rng.uniform(0.2, 0.5)
    angle = rng.uniform(0, np.pi / 2)
    u = np.cos(angle) * xs + np.sin(angle) * ys
    v = -np.sin(angle) * xs + np.cos(angle) * ys
    screen = 0.5 + 0.25 * (np.cos(2 * np.pi * freq * u) + np.cos(2 * np.pi * freq * v))
    dots = 255.0 * (x / 255.0 > screen[..., None]).astype(np.float32)
    dots = gaussian_blur(dots, rng.uniform(0.4, 1.0))
    return x * (1 - (a := rng.uniform(0.08, 0.3))) + dots * a


def paper_texture(x: F32, rng: np.random.Generator) -> F32:
    h, w = x.shape[:2]
    coarse = rng.normal(0, 1, size=(h, w, 1)).astype(np.float32)
    coarse = gaussian_blur(np.repeat(coarse * 40 + 128, 3, axis=2), rng.uniform(1.5, 4.0))[..., :1] - 128
    fine = rng.normal(0, rng.uniform(2, 6), size=(h, w, 1)).astype(np.float32)
    return x * (1.0 + coarse / 40.0 * rng.uniform(0.02, 0.06)) + fine


def _background(h: int, w: int, rng: np.random.Generator) -> F32:
    """A plausible room behind the medium: a dull colour with soft low-frequency shading."""
    grey = rng.uniform(20, 230)
    base = (grey + rng.normal(0, 15, size=(1, 1, 3))).astype(np.float32)
    cells = rng.normal(0, 1, size=(max(h // 16, 2), max(w // 16, 2), 1)).astype(np.float32)
    shade = np.repeat(cells, 3, axis=2) * rng.uniform(5, 30) + rng.normal(0, 3, size=cells.shape[:2] + (3,))
    noise = shade.astype(np.float32)
    field = _from_pil(_to_pil(noise + 128).resize((w, h), Image.Resampling.BICUBIC)) - 128
    return np.clip(base + field, 0, 255).astype(np.float32)


def frame_edges(
    x: F32,
    rng: np.random.Generator,
    inner: tuple[float, float, float, float],
    border: tuple[float, float],
    border_grey: tuple[float, float],
) -> F32:
    """The edge of a screen (dark bezel) or a print (paper margin) inside the context crop.

    ``inner`` is the face box in the crop (fractions of its size); the medium's edge is placed
    between it and the crop's border, on one to four sides, with background beyond it. Without
    room around the face (a tight source image), the crop is returned unchanged.
    """
    h, w = x.shape[:2]
    room = (inner[0], inner[1], 1.0 - inner[2], 1.0 - inner[3])  # left, top, right, bottom
    sides = [r > 0.06 and rng.random() < 0.6 for r in room]
    if not any(sides):
        usable = [i for i, r in enumerate(room) if r > 0.06]
        if not usable:
            return x
        sides[usable[int(rng.integers(0, len(usable)))]] = True
    cut = [rng.uniform(0.0, r * 0.9) if side else 0.0 for r, side in zip(room, sides, strict=True)]
    left, top = int(cut[0] * w), int(cut[1] * h)
    right, bottom = w - int(cut[2] * w), h - int(cut[3] * h)
    out = _background(h, w, rng)
    band = int(rng.uniform(*border) * w)
    out[max(top - band, 0) : bottom + band, max(left - band, 0) : right + band] = rng.uniform(*border_grey)
    out[top:bottom, left:right] = x[top:bottom, left:right]
    return out


# ---------------------------------------------------------------- whole attacks


def replay_attack(
    context: F32, face: F32, inner: tuple[float, float, float, float], rng: np.random.Generator
) -> tuple[F32, F32]:
    """A live face turned into a screen replay (context and face crops alike)."""
    out = []
    state = rng.bit_generator.state
    for x in (context, face):
        rng.bit_generator.state = state  # same screen for both crops
        y = screen_tone(x, rng)
        if rng.random() < 0.7:
            y = moire(y, rng)
        if rng.random() < 0.5:
            y = pixel_grid(y, rng)
        if rng.random() < 0.3:
            y = glare(y, rng)
        out.append(y)
    if rng.random() < 0.6:
        out[0] = frame_edges(out[0], rng, inner, (0.01, 0.08), (0, 40))
    return np.clip(out[0], 0, 255), np.clip(out[1], 0, 255)


def print_attack(
    context: F32, face: F32, inner: tuple[float, float, float, float], rng: np.random.Generator
) -> tuple[F32, F32]:
    """A live face turned into a photo print held to the camera."""
    out = []
    state = rng.bit_generator.state
    for x in (context, face):
        rng.bit_generator.state = state
        y = print_tone(x, rng)
        if rng.random() < 0.6:
            y = halftone(y, rng)
        if rng.random() < 0.6:
            y = paper_texture(y, rng)
        if rng.random() < 0.2:
            y = glare(y, rng)
        out.append(y)
    if rng.random() < 0.6:
        out[0] = frame_edges(out[0], rng, inner, (0.0, 0.06), (190, 250))
    return np.clip(out[0], 0, 255), np.clip(out[1], 0, 255)


# ---------------------------------------------------------------- the room's light


def scene_light(
    context: F32, face: F32, inner: tuple[float, float, float, float], rng: np.random.Generator
) -> tuple[F32, F32]:
    """One room's light on both crops of a capture (the same photo, so the same draw): a white balance
    from warm lamp to cool window light, a dim room, or a backlight (a bright window behind the person
    and an under-exposed face). Honest variation: applied to live faces and attacks alike."""
    temp = rng.uniform(-1.0, 1.0)
    wb = np.array([1.0 + 0.22 * temp, 1.0 + rng.uniform(-0.05, 0.05), 1.0 - 0.22 * temp], np.float32)
    kind = rng.random()
    if kind < 0.35:  # backlight: the face darker, what is around it brighter, blown out in places
        face_gain = rng.uniform(0.35, 0.7)
        back_gain = rng.uniform(1.2, 1.9)
        h, w = context.shape[:2]
        xs, ys = _grid(h, w)
        cx, cy = (inner[0] + inner[2]) / 2 * w, (inner[1] + inner[3]) / 2 * h
        rx, ry = max((inner[2] - inner[0]) / 2 * w, 1.0), max((inner[3] - inner[1]) / 2 * h, 1.0)
        dist = np.sqrt(((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2)
        mask = np.clip(1.4 - dist, 0.0, 1.0)[..., None]  # 1 on the face, fading out past its box
        context = context * (face_gain * mask + back_gain * (1.0 - mask))
        face = face * face_gain
    elif kind < 0.6:  # a dim room: low exposure, the sensor's noise and gain lift the blacks
        gain = rng.uniform(0.3, 0.65)
        lift = rng.uniform(0.0, 12.0)
        sigma = rng.uniform(2.0, 8.0)
        context = lift + context * gain + rng.normal(0.0, sigma, size=context.shape).astype(np.float32)
        face = lift + face * gain + rng.normal(0.0, sigma, size=face.shape).astype(np.float32)
    return (
        np.clip(context * wb, 0, 255).astype(np.float32),
        np.clip(face * wb, 0, 255).astype(np.float32),
    )
