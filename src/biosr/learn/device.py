"""What this machine can run: a torch device from its name, and the precision a recipe gets.

Checked here, before any work, so that ``cuda:3`` on a machine without CUDA or
``banana`` is one clear error instead of an AssertionError deep in torch, and
``auto`` precision means bf16 only where the GPU has native bfloat16.
"""

from __future__ import annotations

import logging

import torch

from biosr.errors import BiosrError
from biosr.learn.recipe import PRECISIONS

log = logging.getLogger(__name__)

#: Device types :func:`resolve_device` accepts besides ``auto``.
DEVICE_TYPES: tuple[str, ...] = ("cpu", "cuda", "mps")


def cuda_bf16() -> bool:
    """True if CUDA is available and its GPU computes bfloat16 natively (Ampere or newer)."""
    if not torch.cuda.is_available():
        return False
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # pragma: no cover - torch before 2.3 has no including_emulation
        return bool(torch.cuda.is_bf16_supported())


def resolve_device(device: str = "auto") -> torch.device:
    """The torch device named `device`, checked against this machine.

    Parameters
    ----------
    device : str
        ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``,
        ``"mps"``.

    Returns
    -------
    torch.device

    Raises
    ------
    BiosrError
        A name that is not a device, or a device this machine does not have.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        dev = None
    if dev is None or dev.type not in DEVICE_TYPES:
        raise BiosrError(f"device {device!r} is not a device; use auto, cpu, cuda, cuda:N or mps")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BiosrError(
                f"device {device!r}: CUDA is not available on this machine (torch "
                f"{torch.__version__}); use cpu or auto"
            )
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise BiosrError(
                f"device {device!r}: this machine has {count} CUDA device(s), "
                f"cuda:0 .. cuda:{count - 1}"
            )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise BiosrError(f"device {device!r}: MPS is not available on this machine; use cpu")
    return dev


def accelerator_type(accelerator: str = "auto") -> str:
    """The device type a Lightning `accelerator` name runs on: ``cpu``, ``cuda`` or ``mps``.

    Raises
    ------
    BiosrError
        ``gpu``/``cuda`` without CUDA, or ``mps`` without MPS (Lightning would say so in a
        traceback-sized message).
    """
    name = str(accelerator).lower()
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if torch.backends.mps.is_available() else "cpu"
    if name in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise BiosrError(
                f"accelerator {accelerator!r}: CUDA is not available on this machine (torch "
                f"{torch.__version__}); use cpu or auto"
            )
        return "cuda"
    if name == "mps" and not torch.backends.mps.is_available():
        raise BiosrError(f"accelerator {accelerator!r}: MPS is not available; use cpu or auto")
    return name  # cpu, mps, or a name Lightning itself checks (tpu...)


def resolve_precision(precision: str, device_type: str) -> str:
    """The Lightning precision to run for a recipe's `precision` on `device_type`.

    ``auto`` is ``bf16-mixed`` on a CUDA GPU with native bfloat16 and ``32-true``
    elsewhere. ``bf16-mixed`` on a CPU runs (torch's CPU autocast) and says once, as a
    log warning, that it is usually slower than ``32-true`` there.

    Raises
    ------
    BiosrError
        An unknown precision, or ``16-mixed`` without CUDA (fp16 autocast with a gradient
        scaler is a CUDA feature; Lightning would silently switch to bf16).
    """
    if precision not in PRECISIONS:
        raise BiosrError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16-mixed" if device_type == "cuda" and cuda_bf16() else "32-true"
    if precision == "16-mixed" and device_type != "cuda":
        raise BiosrError(
            f"precision 16-mixed needs a CUDA GPU; on {device_type} use bf16-mixed or 32-true"
        )
    if precision == "bf16-mixed" and device_type == "cpu":
        log.warning(
            "precision bf16-mixed on cpu: runs torch's CPU bfloat16 autocast, usually slower "
            "than 32-true on CPUs without bfloat16 units"
        )
    return precision
