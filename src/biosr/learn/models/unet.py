"""A compact CARE-style U-Net: the fast baseline network.

Like CARE (Weigert et al., Nature Methods 2018): per level two 3x3
convolutions with ReLU, 2x2 max pooling down, bilinear upsampling and
concatenation up, a 1x1 output convolution, and a residual connection from the
input, so the network learns a correction of the widefield image. For
``scale > 1`` the input is first resized bicubically to the output grid.

The network is translation equivariant for shifts that are multiples of
``2 ** depth`` (away from borders), which :mod:`biosr.learn.predict` uses to make
tiled prediction equal whole-image prediction.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """CARE-style residual U-Net.

    Parameters
    ----------
    scale : int, optional
        Output size / input size (1 or 2 for BioSR).
    depth : int, optional
        Number of poolings (2, as CARE's default). Input sides must be
        multiples of ``2 ** depth`` (:attr:`size_multiple`);
        :func:`biosr.learn.predict.predict_image` pads for you.
    base : int, optional
        Channels of the first level, doubled at each level down (32).
    residual : bool, optional
        Add the (resized) input to the output (True, as CARE).

    Examples
    --------
    >>> import torch
    >>> UNet(scale=2)(torch.zeros(1, 1, 32, 32)).shape
    torch.Size([1, 1, 64, 64])
    """

    def __init__(
        self, scale: int = 1, *, depth: int = 2, base: int = 32, residual: bool = True
    ) -> None:
        super().__init__()
        if scale < 1 or int(scale) != scale:
            raise ValueError(f"scale must be a positive integer, got {scale!r}")
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth!r}")
        self.scale = int(scale)
        self.depth = int(depth)
        self.residual = residual
        self.size_multiple = 2**self.depth
        widths = [base * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList(
            _double_conv(c_in, c_out)
            for c_in, c_out in zip([1, *widths[:-2]], widths[:-1], strict=True)
        )
        self.bottom = _double_conv(widths[-2], widths[-1])
        self.up = nn.ModuleList(
            _double_conv(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(depth))
        )
        self.out = nn.Conv2d(widths[0], 1, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale > 1:
            # A float factor: TorchScript (the exported package's torchscript weights) needs one.
            x = F.interpolate(
                x, scale_factor=float(self.scale), mode="bicubic", align_corners=False
            )
        skips = []
        y = x
        for block in self.down:
            y = block(y)
            skips.append(y)
            y = F.max_pool2d(y, 2)
        y = self.bottom(y)
        for block in self.up:
            skip = skips.pop()
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = block(torch.cat([y, skip], dim=1))
        y = self.out(y)
        return x + y if self.residual else y
