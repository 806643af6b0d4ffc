"""Your own digit images, prepared the way MNIST's were: greyscale, cropped, 20 px, centred by mass.

MNIST's digits were scanned, cropped to the ink, scaled (anti-aliased, keeping
the aspect ratio) to fit a 20×20 box, and placed in a 28×28 frame so that the
ink's centre of mass sits at the frame's centre. A network trained on MNIST
only reads digits prepared the same way: :func:`preprocess` does each step and
returns every intermediate image (a :class:`Preprocessed`), so a page can show
what happened and why a digit drawn off-centre or at another size is misread
without it.

Any image Pillow reads (a path, the file's bytes, or a NumPy array of shape
(h, w) or (h, w, 1-4 channels)) in any mode: greyscale, colour, palette,
1-bit, 16-bit, 32-bit integer or float, CMYK, YCbCr, HSV, CIELab (read by its
lightness band), with or without transparency. Whether the ink is dark on light
paper or light on dark is read from the border, not from a flag. A pixel that
is NaN or infinite has no brightness, so an image holding one is refused (a
one-line :class:`DataError`) rather than guessed at. Pillow is optional
(``pip install 'nndl[augment]'``) and imported only here, when used.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Union

import numpy as np

from ..errors import DataError

ImageSource = Union[str, os.PathLike, bytes, bytearray, np.ndarray, Any]  # Any: a PIL.Image.Image

MAX_PIXELS = 4096 * 4096  # 16.7 Mpx: larger than any page of digits, and refused before decoding
FRAME_SIDE = 28  # MNIST's images are 28×28 ...
BOX_SIDE = 20  # ... with the digit scaled to fit 20×20 inside
MIN_CONTRAST = 0.1  # the strongest mark must differ from the paper by 10% of black-to-white, or there is no ink
INK_THRESHOLD = 0.3  # the bounding box holds pixels with at least 30% of the strongest mark's ink
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601 luma, as Pillow's convert("L") uses


class Box(NamedTuple):
    """The ink's bounding box in the original image: rows top:bottom, columns left:right (ends excluded)."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left


@dataclass(frozen=True)
class Preprocessed:
    """Every step from an image file to the network's input, each as an array a page can draw.

    ``luminance`` is the original as brightness in [0, 1] (transparency composited
    over paper); ``grey`` is the same image as ink in [0, 1] (1 = the strongest
    mark, 0 = paper) whichever way round the original was; ``box`` the ink's
    bounding box in it and ``cropped`` that part of ``grey``; ``scaled`` the crop
    with its longer side scaled to 20 px; ``framed`` the scaled digit placed at the
    geometric centre of a 28×28 frame; ``input`` the 28×28 float32 image the
    network sees: ``framed`` moved by ``shift`` (rows, columns) so that the
    centre of mass, ``centre_of_mass`` in ``framed``'s coordinates, lands on the
    frame's centre (14, 14) as in MNIST (no move when ``centred_by_mass`` is False).
    """

    luminance: np.ndarray
    background: float
    dark_ink: bool
    grey: np.ndarray
    box: Box
    cropped: np.ndarray
    scaled: np.ndarray
    framed: np.ndarray
    centre_of_mass: tuple[float, float]
    shift: tuple[int, int]
    centred_by_mass: bool
    input: np.ndarray

    @property
    def input_row(self) -> np.ndarray:
        """The network's input as one row of 784 values (MNIST's row order)."""
        return self.input.reshape(-1)

    def __repr__(self) -> str:
        ink = "dark ink on light paper" if self.dark_ink else "light ink on dark paper"
        return (
            f"Preprocessed({self.luminance.shape[1]}×{self.luminance.shape[0]} image, {ink}, "
            f"ink box {self.box.width}×{self.box.height} at ({self.box.left}, {self.box.top}) → "
            f"{self.scaled.shape[1]}×{self.scaled.shape[0]}, shifted {self.shift})"
        )


def pillow() -> Any:
    """Pillow's Image module, or a DataError saying how to install it."""
    try:
        from PIL import Image
    except ImportError:
        raise DataError("reading images needs Pillow: pip install 'nndl[augment]'") from None
    return Image


def describe(source: ImageSource) -> str:
    """How to name ``source`` in a message: its path, or what kind of object it is."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray)):
        return f"the image data ({len(source)} bytes)"
    return "the image"


def check_pixel_count(width: int, height: int, name: str) -> None:
    """Refuse empty images and images larger than :data:`MAX_PIXELS`, before anything is decoded."""
    if width < 1 or height < 1:
        raise DataError(f"{name}: the image is empty ({width}×{height} pixels)")
    if width * height > MAX_PIXELS:
        raise DataError(
            f"{name}: {width}×{height} pixels is too large for a digit (at most {MAX_PIXELS:,} pixels); "
            f"crop or shrink it first"
        )


def open_image(source: ImageSource) -> Any:
    """Open a path, bytes or PIL image and decode it, checking its size from the header first."""
    Image = pillow()
    name = describe(source)
    if isinstance(source, Image.Image):
        check_pixel_count(*source.size, name)
        return source
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    elif isinstance(source, (str, os.PathLike)):
        if not Path(source).is_file():
            raise DataError(f"{name}: no such image file")
    else:
        raise DataError(f"{type(source).__name__} is not an image: give a file path, its bytes or a NumPy array")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own, lower cap follows
            image = Image.open(source)  # reads the header only
        check_pixel_count(*image.size, name)
        image.load()
    except Image.DecompressionBombError as exc:
        raise DataError(f"{name}: too large for a digit ({exc}); crop or shrink it first") from None
    except Image.UnidentifiedImageError:
        raise DataError(f"{name}: not an image file Pillow can read (PNG, JPEG, GIF, BMP, TIFF, WebP, ...)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{name}: damaged image file ({exc})") from None
    from PIL import ImageOps

    return ImageOps.exif_transpose(image)  # photos from phones are stored sideways with a rotation tag


def finite_pixels(values: np.ndarray, name: str) -> np.ndarray:
    """``values``, or a one-line DataError when some are NaN or infinite: such a pixel has no brightness."""
    bad = values.size - int(np.count_nonzero(np.isfinite(values)))
    if bad:
        raise DataError(f"{name}: {bad:,} of its {values.size:,} pixel values are NaN or infinite; give every "
                        f"pixel a finite brightness (e.g. 0 where there is no data)")
    return values


def scaled_by_range(values: np.ndarray, floats: bool) -> np.ndarray:
    """32-bit integer or float pixels (finite) as float32 in [0, 1], the scale read from the values.

    The first of [0, 1] (floats only), [0, 255] and [0, 65535] that holds every
    value is the scale, as for an 8- or 16-bit image saved with wider pixels.
    Values outside all of them (negative, or above 65535) are stretched from
    their minimum (0) to their maximum (1), computed by halves so that float32's
    extremes do not overflow.
    """
    low, high = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if low >= 0:
        for top in ((1.0,) if floats else ()) + (255.0, 65535.0):
            if high <= top:
                return values / np.float32(top)
    half = np.float32(0.5)
    stretched = values * half - np.float32(low) * half  # (v − low) / 2, at most float32's maximum
    stretched /= np.float32((high - low) / 2 or 1.0)
    return np.clip(stretched, 0.0, 1.0, out=stretched)


def pillow_channels(image: Any, name: str) -> np.ndarray:
    """A decoded PIL image as float32 in [0, 1]: luminance (h, w), or luminance and alpha (h, w, 2).

    Colour becomes luminance in Pillow (8 bits a channel), so a 16-Mpx photo
    costs about 64 MB of floats per channel kept, not four times that. CIELab
    (which Pillow converts only to RGB) is read by its L band, the lightness;
    premultiplied alpha (La, RGBa) is undone first. A mode Pillow cannot turn
    into greyscale is a one-line DataError naming it.
    """
    try:
        if image.mode == "LAB":
            image = image.getchannel("L")
        elif image.mode in ("La", "RGBa"):
            image = image.convert(image.mode[:-1] + "A")
        if image.mode.startswith("I;16"):
            return np.asarray(image, dtype=np.float32) / 65535
        if image.mode in ("I", "F"):
            return scaled_by_range(finite_pixels(np.asarray(image, dtype=np.float32), name), image.mode == "F")
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            return np.asarray(image.convert("RGBA").convert("LA"), dtype=np.float32) / 255
        return np.asarray(image.convert("L"), dtype=np.float32) / 255
    except ValueError as exc:  # Pillow's "conversion from X to Y not supported"
        raise DataError(f"{name}: its {image.mode} pixels cannot be read as brightness ({exc})") from None


def array_channels(array: np.ndarray) -> np.ndarray:
    """A NumPy image as float32 luminance (h, w), or luminance and alpha (h, w, 2), in [0, 1].

    uint8 is divided by 255, uint16 by 65535; bool is 0 or 1, and floats are
    taken as given, clipped to [0, 1] (NaN or infinity refused). Three or four
    channels are RGB(A).
    """
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4)):
        raise DataError(f"an array of shape {array.shape} is not an image: expected (h, w) or (h, w, 1-4 channels)")
    check_pixel_count(array.shape[1], array.shape[0], "the image array")
    if array.dtype == np.uint8:
        values = array.astype(np.float32) / 255
    elif array.dtype == np.uint16:
        values = array.astype(np.float32) / 65535
    elif array.dtype == np.bool_:
        values = array.astype(np.float32)
    elif array.dtype.kind == "f":  # clipped before the cast: 1e300 is white, not float32's infinity
        values = np.clip(finite_pixels(array, "the image array"), 0.0, 1.0).astype(np.float32)
    else:
        raise DataError(f"an image array of dtype {array.dtype}: use uint8, uint16, bool or floats in [0, 1]")
    if values.ndim == 2 or values.shape[2] == 1:
        return values.reshape(values.shape[:2])
    if values.shape[2] == 2:
        return values
    luminance = values[..., :3] @ LUMA
    return luminance if values.shape[2] == 3 else np.stack([luminance, values[..., 3]], axis=2)


def flatten_alpha(channels: np.ndarray) -> np.ndarray:
    """Luminance and alpha → luminance, transparent parts becoming paper that contrasts with the drawing.

    A drawing on a transparent sheet has no paper colour of its own; the opaque
    marks are the ink. So the sheet is composited over white when the marks are
    dark, over black when they are light: L = α·L_pixel + (1 − α)·L_paper.
    """
    if channels.ndim == 2:
        return channels
    colour, alpha = channels[..., 0], channels[..., 1]
    if alpha.min() >= 1.0:
        return colour
    weight = alpha.sum()
    marks = float((colour * alpha).sum() / weight) if weight > 0 else 1.0  # mean luminance of the opaque marks
    paper = 1.0 if marks < 0.5 else 0.0
    return alpha * colour + (1.0 - alpha) * paper  # alpha compositing over the paper


def read_luminance(source: ImageSource) -> np.ndarray:
    """Any image as float32 luminance (h, w) in [0, 1], or a one-line DataError saying why not."""
    if isinstance(source, np.ndarray):
        channels = array_channels(source)
    else:
        channels = pillow_channels(open_image(source), describe(source))
    return flatten_alpha(channels).astype(np.float32, copy=False)


def border_median(luminance: np.ndarray) -> float:
    """The paper's brightness: the median of the outermost ring of pixels, where digits rarely reach."""
    ring = np.concatenate([luminance[0], luminance[-1], luminance[1:-1, 0], luminance[1:-1, -1]])
    return float(np.median(ring))


def ink_from_luminance(luminance: np.ndarray) -> tuple[np.ndarray, float, bool]:
    """Return (ink in [0, 1] with 1 for the strongest mark, the paper's brightness, whether ink is dark).

    Ink is how far a pixel is from the paper towards the far end (black on light
    paper, white on dark paper), stretched so the strongest mark is 1, as MNIST's
    pen strokes are. An image with no mark at least :data:`MIN_CONTRAST` away from
    the paper holds no digit.
    """
    if luminance.max() == luminance.min():
        raise DataError("the image is blank (every pixel the same): draw or photograph a digit")
    background = border_median(luminance)
    dark_ink = background >= 0.5
    if dark_ink:
        ink = background - luminance
        ink /= background  # 0 on the paper, 1 for black
    else:
        ink = luminance - background
        ink /= 1.0 - background  # 0 on the paper, 1 for white
    contrast = float(ink.max())
    if contrast * max(background, 1.0 - background) < MIN_CONTRAST:
        raise DataError(
            f"no ink found: no pixel differs from the paper (brightness {background:.2f}) by "
            f"{MIN_CONTRAST:.0%} or more; draw the digit darker (or lighter on dark paper)"
        )
    ink /= contrast
    return np.clip(ink, 0.0, 1.0, out=ink), background, dark_ink  # in place: a page can be 16 Mpx


def ink_box(ink: np.ndarray, threshold: float = INK_THRESHOLD) -> Box:
    """The bounding box of the pixels holding at least ``threshold`` ink."""
    rows = np.flatnonzero((ink >= threshold).any(axis=1))
    cols = np.flatnonzero((ink >= threshold).any(axis=0))
    return Box(int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)


def scale_to_box(cropped: np.ndarray, side: int = BOX_SIDE) -> np.ndarray:
    """Scale so the longer side is ``side`` pixels, keeping the aspect ratio, anti-aliased (Lanczos)."""
    Image = pillow()
    height, width = cropped.shape
    factor = side / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    scaled = Image.fromarray(cropped.astype(np.float32), mode="F").resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(scaled, dtype=np.float32), 0.0, 1.0)  # Lanczos rings slightly past 0 and 1


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(row, column) of the ink's centre of mass: Σ position · ink / Σ ink."""
    total = image.sum()
    rows, cols = np.indices(image.shape)
    return float((rows * image).sum() / total), float((cols * image).sum() / total)


def place(image: np.ndarray, top: int, left: int, side: int = FRAME_SIDE) -> np.ndarray:
    """``image`` pasted into an empty side×side frame with its top-left pixel at (top, left)."""
    frame = np.zeros((side, side), dtype=np.float32)
    frame[top : top + image.shape[0], left : left + image.shape[1]] = image
    return frame


def centring_shift(scaled: np.ndarray, com: tuple[float, float], offset: tuple[int, int],
                   side: int = FRAME_SIDE) -> tuple[int, int]:
    """The whole-pixel move putting the centre of mass ``com`` at the frame's centre, as MNIST did.

    The move is the rounded offset of the centre of mass from the frame's centre,
    limited so no ink leaves the frame. MNIST's centre is side / 2 = 14 in pixel
    indices (its test digits' centres of mass average 13.99, 14.00).
    """
    middle = side / 2
    moves = []
    for axis in (0, 1):
        move = math.floor(middle - com[axis] + 0.5)
        lowest, highest = -offset[axis], side - scaled.shape[axis] - offset[axis]
        moves.append(int(min(max(move, lowest), highest)))
    return moves[0], moves[1]


def preprocess(source: ImageSource, centre: bool = True) -> Preprocessed:
    """Turn an image of one digit into MNIST's form, keeping every step (see :class:`Preprocessed`).

    ``centre=False`` leaves out the last step, centring by mass: the scaled digit
    stays at the frame's geometric centre, to show why the step matters. Raises a
    one-line :class:`DataError` for a missing, unreadable, damaged, too large,
    blank or inkless image.
    """
    luminance = read_luminance(source)
    grey, background, dark_ink = ink_from_luminance(luminance)
    box = ink_box(grey)
    cropped = grey[box.top : box.bottom, box.left : box.right]
    scaled = scale_to_box(cropped)
    offset = ((FRAME_SIDE - scaled.shape[0]) // 2, (FRAME_SIDE - scaled.shape[1]) // 2)
    framed = place(scaled, *offset)
    com = centre_of_mass(framed)
    shift = centring_shift(scaled, com, offset) if centre else (0, 0)
    return Preprocessed(
        luminance=luminance,
        background=background,
        dark_ink=dark_ink,
        grey=grey.astype(np.float32, copy=False),
        box=box,
        cropped=cropped,
        scaled=scaled,
        framed=framed,
        centre_of_mass=com,
        shift=shift,
        centred_by_mass=centre,
        input=place(scaled, offset[0] + shift[0], offset[1] + shift[1]),
    )


def preprocess_rows(sources: list[ImageSource], centre: bool = True) -> np.ndarray:
    """Several images as network input rows (n, 784), float32 in [0, 1]."""
    return np.stack([preprocess(source, centre).input_row for source in sources])
