"""Read and write the dataset's 2-D float32 TIFF images, with pixel size, atomically.

Writes are ImageJ-flavoured TIFFs: the resolution tags and ImageJ's ``unit``
metadata carry the pixel size, which Fiji, napari (tifffile) and most viewers
read. Reads accept any single-page 2-D TIFF and check it against what the
caller expects; tifffile's own warnings about a damaged file become the reason
in that one error instead of lines on stderr (tifffile logs them and reads on).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tifffile

from biosr.errors import DataError
from biosr.io.atomic import atomic_path

#: First bytes of a classic (II*, MM*) or BigTIFF (II+, MM+) file.
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_IMAGEJ_DTYPES = (np.dtype("uint8"), np.dtype("uint16"), np.dtype("float32"))


def is_tiff_header(head: bytes) -> bool:
    """True if `head` (at least 4 bytes) starts like a TIFF file."""
    return head[:4] in TIFF_MAGIC


def read_tiff(
    path: str | os.PathLike[str],
    *,
    shape: tuple[int, int] | None = None,
    dtype: np.dtype | str | None = "float32",
    finite: bool = True,
) -> np.ndarray:
    """Read a 2-D image from a TIFF file and check it.

    Parameters
    ----------
    path : path-like
        The file.
    shape : tuple of int, optional
        Required shape; None accepts any 2-D shape.
    dtype : dtype or None, optional
        Required pixel type (default float32); None accepts any.
    finite : bool, optional
        If True (default), NaN or infinite values are an error.

    Returns
    -------
    ndarray
        The 2-D image.

    Raises
    ------
    DataError
        With the path and the reason: missing, empty, not a TIFF, truncated,
        not 2-D, wrong shape or dtype, non-finite values.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    if size == 0:
        raise DataError(f"{path}: empty file (0 bytes)")
    with open(path, "rb") as fh:
        if not is_tiff_header(fh.read(4)):
            raise DataError(f"{path}: not a TIFF file (bad header)")
        fh.seek(0)
        image = _decode(fh, size, path)
    return check_image(image, path, shape=shape, dtype=dtype, finite=finite)


def decode_tiff(
    data: bytes,
    path: str | os.PathLike[str],
    *,
    shape: tuple[int, int] | None = None,
    dtype: np.dtype | str | None = "float32",
    finite: bool = True,
) -> np.ndarray:
    """Decode a TIFF file's bytes (already read, e.g. to hash them too) as :func:`read_tiff`.

    Parameters
    ----------
    data : bytes
        The whole file.
    path : path-like
        Where the bytes came from, for messages.
    shape, dtype, finite
        As :func:`read_tiff`.

    Returns
    -------
    ndarray
        The 2-D image.

    Raises
    ------
    DataError
        As :func:`read_tiff`.
    """
    if not data:
        raise DataError(f"{path}: empty file (0 bytes)")
    if not is_tiff_header(data[:4]):
        raise DataError(f"{path}: not a TIFF file (bad header)")
    image = _decode(io.BytesIO(data), len(data), path)
    return check_image(image, path, shape=shape, dtype=dtype, finite=finite)


def _decode(fh: io.IOBase, size: int, path: str | os.PathLike[str]) -> np.ndarray:
    """The one page of an open TIFF of `size` bytes; DataError with tifffile's reason if not."""
    with tifffile_warnings() as warned:
        try:
            with tifffile.TiffFile(fh) as tif:
                pages = len(tif.pages)
                if pages == 0:
                    raise DataError(f"{path}: damaged TIFF: no readable image ({_first(warned)})")
                if pages > 1:
                    raise DataError(
                        f"{path}: a stack of {pages} pages; expected one 2-D image per file"
                    )
                page = tif.pages.first
                end = max(
                    (o + n for o, n in zip(page.dataoffsets, page.databytecounts, strict=True)),
                    default=0,
                )
                if end > size:
                    raise DataError(
                        f"{path}: truncated TIFF ({size:,} bytes, image data end at {end:,})"
                    )
                image = page.asarray()
        except DataError:
            raise
        except Exception as exc:  # tifffile raises many kinds for a damaged file
            reason = _plain(str(exc)) or type(exc).__name__
            raise DataError(f"{path}: damaged TIFF ({_first(warned, reason)})") from None
    if warned and image.size == 0:
        raise DataError(f"{path}: damaged TIFF ({warned[0]})")
    return image


_QUIET = threading.local()


class _Collect(logging.Filter):
    """Keep tifffile's warnings of the thread that is decoding, instead of printing them."""

    def filter(self, record: logging.LogRecord) -> bool:
        found = getattr(_QUIET, "found", None)
        if found is None:  # not inside biosr's decode: tifffile logs as usual
            return True
        found.append(_plain(record.getMessage()))
        return False


logging.getLogger("tifffile").addFilter(_Collect())


@contextlib.contextmanager
def tifffile_warnings() -> Iterator[list[str]]:
    """Collect (not print) tifffile's warnings logged by this thread inside the block.

    For code that opens a TIFF with :mod:`tifffile` itself (to read a header)
    and reports a damaged file in its own words.
    """
    outer = getattr(_QUIET, "found", None)
    _QUIET.found = found = []
    try:
        yield found
    finally:
        _QUIET.found = outer


def _first(warned: list[str], default: str = "its first IFD is unreadable") -> str:
    """tifffile's first warning about the file, or `default`."""
    return warned[0] if warned else default


def _plain(message: str) -> str:
    """tifffile's message without its ``<tifffile.TiffTag 0 @10>`` tags and exception wrapper."""
    message = re.sub(r"<[^<>]*>\s*", "", message)
    message = re.sub(r"raised \w+\(['\"](.*)['\"]\)", r"\1", message)
    return " ".join(message.split())


def check_image(
    image: np.ndarray,
    path: str | os.PathLike[str],
    *,
    shape: tuple[int, int] | None = None,
    dtype: np.dtype | str | None = "float32",
    finite: bool = True,
) -> np.ndarray:
    """Check an image array as :func:`read_tiff` does; return it or raise DataError."""
    if image.ndim != 2:
        raise DataError(f"{path}: expected a 2-D image, found shape {image.shape}")
    if shape is not None and tuple(image.shape) != tuple(shape):
        raise DataError(f"{path}: wrong shape {image.shape}, expected {tuple(shape)}")
    if dtype is not None and image.dtype != np.dtype(dtype):
        raise DataError(f"{path}: wrong dtype {image.dtype}, expected {np.dtype(dtype)}")
    if finite and image.dtype.kind == "f" and not np.isfinite(image).all():
        n_nan = int(np.isnan(image).sum())
        n_inf = int(np.isinf(image).sum())
        raise DataError(f"{path}: non-finite values ({n_nan} NaN, {n_inf} inf)")
    return image


def write_tiff(
    path: str | os.PathLike[str],
    image: np.ndarray,
    *,
    pixel_size_nm: float | None = None,
) -> Path:
    """Write a 2-D image to a TIFF file atomically.

    Parameters
    ----------
    path : path-like
        Destination; its folder must exist. Never appears half-written: the
        data go to a temporary name in the same folder, renamed on success.
    image : ndarray
        2-D array; float32 is the dataset's type, others are written as given.
    pixel_size_nm : float, optional
        Pixel size, stored in the resolution tags (pixels per micrometre) and
        ImageJ metadata so that Fiji and napari show physical units.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"{path}: write_tiff takes a 2-D image, got shape {image.shape}")
    # ImageJ's format holds uint8, uint16 and float32 only; others get plain TIFF tags.
    imagej = image.dtype in _IMAGEJ_DTYPES
    kwargs: dict = {"imagej": imagej}
    if pixel_size_nm is not None:
        per_um = 1000.0 / float(pixel_size_nm)
        kwargs["resolution"] = (per_um, per_um)
        if imagej:
            kwargs["metadata"] = {"unit": "um"}
        else:  # plain TIFF: the standard tag must carry the unit
            kwargs["resolutionunit"] = "MICROMETER"
    with atomic_path(path, size=image.nbytes) as tmp:  # the pixels; tags add a few hundred
        tifffile.imwrite(tmp, image, **kwargs)
    return path


#: Nanometres per ResolutionUnit: inch, centimetre (TIFF), millimetre, micrometre (tifffile).
_NM_PER_RESOLUTION_UNIT = {2: 2.54e7, 3: 1e7, 4: 1e6, 5: 1e3}
#: Nanometres per ImageJ ``unit`` (used when ResolutionUnit is NONE, as ImageJ writes).
_NM_PER_IMAGEJ_UNIT = {
    "nm": 1.0,
    "um": 1e3,
    "\u00b5m": 1e3,
    "\\u00b5m": 1e3,
    "micron": 1e3,
    "microns": 1e3,
    "mm": 1e6,
    "cm": 1e7,
    "inch": 2.54e7,
}


def read_pixel_size_nm(path: str | os.PathLike[str]) -> float | None:
    """Pixel size in nm stored in a TIFF's resolution tags, or None if absent or unitless.

    The tags' ResolutionUnit (inch, centimetre; tifffile's millimetre and
    micrometre) gives the unit; where it is NONE (as in ImageJ files), the
    ImageJ metadata's ``unit`` does (``um``, ``nm``...). Without either, the
    resolution has no physical meaning (tifffile writes 1 pixel per unit by
    default), and the size is None.
    """
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        tag = tags.get("XResolution")
        if tag is None:
            return None
        num, den = tag.value
        if num == 0:
            return None
        unit_tag = tags.get("ResolutionUnit")
        unit = int(unit_tag.value) if unit_tag is not None else 2  # TIFF default: inch
        nm_per_unit = _NM_PER_RESOLUTION_UNIT.get(unit)
        if nm_per_unit is None:
            ij_unit = (tif.imagej_metadata or {}).get("unit") if tif.is_imagej else None
            nm_per_unit = _NM_PER_IMAGEJ_UNIT.get(str(ij_unit).strip().lower())
        if nm_per_unit is None:
            return None
        return nm_per_unit * den / num
