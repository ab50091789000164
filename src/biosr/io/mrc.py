"""BioSR's MRC dialect: read it safely with mrcfile, and write it faithfully.

BioSR's MATLAB writer leaves out the ``MAP `` id and the machine stamp, sets
dmin/dmax/dmean to zero, stores ``mx = my = mz = 1`` and the cell size equal to
the voxel size *in micrometres* (0.0626), not in angstroms as the MRC2014
standard has it. ``mrcfile.open`` reads such files only with ``permissive=True``
and warns. This module checks the header against the file size first (a
truncated download must give a clear error, not a short array), then lets
mrcfile read the data. Arrays are ``(nz, ny, nx)``, as mrcfile returns them.

The writer builds the header with mrcfile's own header dtype and writes the
bytes by hand, because mrcfile always writes the standard's ``MAP `` id and
machine stamp, which BioSR's files do not have.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import NamedTuple

import mrcfile
import mrcfile.dtypes
import mrcfile.utils
import numpy as np

from biosr.errors import DataError
from biosr.io.atomic import atomic_path

HEADER_BYTES = 1024

#: Modes BioSR uses: 6 = uint16 raw frames, 2 = float32 reconstructions.
BIOSR_MODES = {6: np.dtype("<u2"), 2: np.dtype("<f4")}


class MrcStack(NamedTuple):
    """An MRC file's data and voxel size.

    Attributes
    ----------
    data : ndarray
        ``(nz, ny, nx)`` array (a single-section file still has ``nz = 1``).
    voxel_size_nm : float
        Lateral voxel size in nanometres (from the header's cell size).
    """

    data: np.ndarray
    voxel_size_nm: float


def read_header(path: str | os.PathLike[str]) -> np.recarray:
    """Read and check an MRC header against the file's size.

    Raises
    ------
    DataError
        If the file is missing, shorter than a header, of an unknown mode, or
        if header shape x dtype does not match the file size.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            raw = fh.read(HEADER_BYTES)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: unreadable ({exc.strerror})") from None
    return check_header(raw, size, path)


def check_header(head: bytes, size: int, label: str | os.PathLike[str]) -> np.recarray:
    """Parse an MRC header's bytes and check shape x mode against the file's `size`.

    For files and for archive members alike (`label` names either in errors).

    Raises
    ------
    DataError
        As :func:`read_header`.
    """
    text = _text_start(head)
    if text is not None:
        page = " (an HTML page saved in place of the data?)" if text.startswith("<") else ""
        raise DataError(
            f"{label}: not an MRC file: it starts with the text {text!r}{page}; "
            "download or copy the file again"
        )
    if len(head) < HEADER_BYTES:
        raise DataError(f"{label}: truncated MRC ({size} bytes, shorter than its header)")
    header = np.frombuffer(head[:HEADER_BYTES], dtype=mrcfile.dtypes.HEADER_DTYPE)
    header = header.view(np.recarray)[0]
    nx, ny, nz, mode = (int(header.nx), int(header.ny), int(header.nz), int(header.mode))
    if min(nx, ny, nz) < 1:
        raise DataError(f"{label}: not an MRC file or corrupt header (shape {nz}x{ny}x{nx})")
    try:
        dtype = mrcfile.utils.dtype_from_mode(mode)
    except ValueError:
        raise DataError(
            f"{label}: not an MRC file, or its header is damaged (mode word {mode} is no MRC "
            "mode; BioSR uses 6 for raw frames and 2 for SIM images)"
        ) from None
    expected = HEADER_BYTES + int(header.nsymbt) + nx * ny * nz * np.dtype(dtype).itemsize
    if size != expected:
        kind = "truncated" if size < expected else "oversized"
        raise DataError(
            f"{label}: {kind} MRC ({size} bytes; header says {nz}x{ny}x{nx} mode {mode}, "
            f"{expected} bytes)"
        )
    return header


def _text_start(head: bytes, n: int = 40) -> str | None:
    """The first `n` characters if `head` starts as printable text, else None.

    An MRC file starts with its sizes as binary int32: any ``nx`` below 2**24
    has a zero byte, so real headers never look like text.
    """
    start = head[:n]
    if len(start) < 4 or any(b < 9 or 13 < b < 32 or b > 126 for b in start):
        return None
    return " ".join(start.decode("ascii").split())


def voxel_size_nm(header: np.recarray) -> float:
    """Lateral voxel size in nm from a header.

    The cell size divided by ``mx``; BioSR stores micrometres (values below
    1), the MRC2014 standard angstroms (values of 1 and above).
    """
    mx = int(header.mx) or 1
    value = float(header.cella.x) / mx
    # Stored as float32: round away the representation error (0.0626 -> 62.600002).
    return round(value * 1000.0 if value < 1.0 else value / 10.0, 4)


def read_mrc(
    path: str | os.PathLike[str],
    *,
    modes: tuple[int, ...] | None = None,
    mmap: bool = False,
) -> MrcStack:
    """Read an MRC file written in BioSR's dialect (or the standard).

    Parameters
    ----------
    path : path-like
        The ``.mrc`` file.
    modes : tuple of int, optional
        Accepted modes (e.g. ``(6,)`` for raw frames); None accepts any.
    mmap : bool, optional
        Memory-map the data instead of reading it (the array stays valid
        after return; it is read-only).

    Returns
    -------
    MrcStack
        ``data`` as ``(nz, ny, nx)`` and the voxel size in nm.

    Raises
    ------
    DataError
        On a missing, truncated or corrupt file, or a mode not in `modes`.
    """
    path = Path(path)
    header = read_header(path)
    mode = int(header.mode)
    if modes is not None and mode not in modes:
        raise DataError(f"{path}: unexpected MRC mode {mode}, expected one of {sorted(modes)}")
    with warnings.catch_warnings():
        # BioSR's files have no map id and no machine stamp: expected, not news.
        warnings.simplefilter("ignore", RuntimeWarning)
        opener = mrcfile.mmap if mmap else mrcfile.open
        try:
            with opener(path, mode="r", permissive=True) as mrc:
                data = mrc.data if mmap else np.array(mrc.data)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: unreadable MRC ({exc})") from None
    if data is None:
        raise DataError(f"{path}: unreadable MRC (no data)")
    if data.ndim == 2:
        data = data[np.newaxis]
    return MrcStack(data, voxel_size_nm(header))


def write_mrc(
    path: str | os.PathLike[str],
    data: np.ndarray,
    *,
    voxel_size_nm: float,
    z_step_nm: float = 160.0,
    label: str | None = None,
) -> Path:
    """Write a stack in BioSR's MRC dialect, atomically.

    Parameters
    ----------
    path : path-like
        Destination file.
    data : ndarray
        ``(nz, ny, nx)`` or ``(ny, nx)``; uint16 (mode 6) or float32 (mode 2).
    voxel_size_nm : float
        Lateral voxel size, stored in micrometres as BioSR does.
    z_step_nm : float, optional
        Third cell dimension (BioSR writes 0.16 um).
    label : str, optional
        Text for the first of the header's ten 80-byte labels (BioSR's
        instrument writes acquisition settings there).

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[np.newaxis]
    modes = {dt: m for m, dt in BIOSR_MODES.items()}
    dtype = data.dtype.newbyteorder("<")
    if data.ndim != 3 or dtype not in modes:
        raise ValueError(
            f"{path}: BioSR MRC holds 3-D uint16 or float32 stacks, got {data.dtype} {data.shape}"
        )
    nz, ny, nx = data.shape
    header = np.zeros((), dtype=mrcfile.dtypes.HEADER_DTYPE).view(np.recarray)
    header.nx, header.ny, header.nz = nx, ny, nz
    header.mode = modes[dtype]
    header.mx, header.my, header.mz = 1, 1, 1
    header.cella = (voxel_size_nm / 1000.0, voxel_size_nm / 1000.0, z_step_nm / 1000.0)
    header.cellb = (90.0, 90.0, 90.0)
    header.mapc, header.mapr, header.maps = 1, 2, 3
    if label:
        header.nlabl = 1
        header.label[0] = label.encode("ascii", "replace")[:80]
    # map id, machine stamp, dmin/dmax/dmean and labels stay zero, as in BioSR.
    size = header.nbytes + data.size * dtype.itemsize
    with atomic_path(path, size=size) as tmp, open(tmp, "wb") as fh:
        fh.write(header.tobytes())
        fh.write(np.ascontiguousarray(data, dtype=dtype).tobytes())
    return path
