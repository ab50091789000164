"""Reference networks for BioSR: DFCAN (the dataset authors' network) and a compact U-Net.

Both take ``(N, 1, H, W)`` float32 tensors and return ``(N, 1, scale*H, scale*W)``.
:func:`build_model` makes one by name, so checkpoints can store a name and
options instead of pickled code. Importing this package does not import torch;
:func:`build_model` (and importing :mod:`biosr.learn.models.dfcan` or
:mod:`biosr.learn.models.unet`) does.
"""

from __future__ import annotations

from typing import Any

from biosr.errors import BiosrError

#: Model names :func:`build_model` knows, the default first.
MODELS: tuple[str, ...] = ("dfcan", "unet")


def build_model(name: str, **options: Any):
    """Make a model by name.

    Parameters
    ----------
    name : {'dfcan', 'unet'}
        Which network.
    **options
        Keyword arguments of the network's class (``scale`` for both).

    Returns
    -------
    torch.nn.Module

    Raises
    ------
    BiosrError
        For an unknown name.
    """
    if name == "dfcan":
        from biosr.learn.models.dfcan import DFCAN

        return DFCAN(**options)
    if name == "unet":
        from biosr.learn.models.unet import UNet

        return UNet(**options)
    raise BiosrError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")


def count_parameters(model) -> int:
    """Number of trainable parameters of a torch module."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
