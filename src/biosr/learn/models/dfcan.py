"""DFCAN, the Deep Fourier Channel Attention Network of the BioSR authors (Qiao et al. 2021).

Written from the architecture described in the paper (Qiao et al., Nature
Methods 18:194, 2021) and in the authors' DL-SR repository
(https://github.com/qc17-THU/DL-SR; no code copied): a 3x3 stem with GELU, residual
groups of Fourier channel attention blocks (FCAB) with a skip around each
group, and a pixel-shuffle tail ending in a sigmoid. The Fourier channel
attention weighs feature channels by statistics of their power spectrum
(``|FFT|^0.8``, shifted so that low frequencies sit in the centre). With the
defaults (64 channels, 4 groups x 4 blocks, reduction 16) DFCAN has
1,819,969 parameters at ``scale=1`` and 1,930,753 at ``scale=2``.

The attention runs in float32 with autocast disabled, so DFCAN trains and predicts
under bf16 autocast (its convolutions in bf16, its FFTs in float32). DFCAN compiles
with ``torch.jit.script`` (the scripted module runs in float32, without autocast).

Because the attention pools over the whole image, DFCAN is not translation
equivariant: tiled prediction of a large field is close to, but not exactly,
whole-field prediction (see :mod:`biosr.learn.predict`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _conv3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)


class FourierChannelAttention(nn.Module):
    """Channel attention from the power spectrum of each feature map.

    Parameters
    ----------
    channels : int
        Feature channels.
    reduction : int
        Squeeze factor of the two 1x1 convolutions (64 / 16 = 4 channels).
    gamma : float
        Exponent applied to the FFT magnitude (0.8 in DFCAN).
    """

    def __init__(self, channels: int = 64, reduction: int = 16, gamma: float = 0.8) -> None:
        super().__init__()
        self.gamma = gamma
        self.spectrum_conv = _conv3(channels, channels)
        self.squeeze = nn.Conv2d(channels, channels // reduction, kernel_size=1)
        self.excite = nn.Conv2d(channels // reduction, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The whole attention in float32 with autocast off, whatever the caller's
        # autocast: cuFFT in fp16 needs power-of-two sizes, bf16 FFTs do not exist,
        # and the spectrum's dynamic range is what the attention weighs. The output is
        # float32 too (the residual sum that follows stays float32). TorchScript cannot
        # compile autocast on a variable device: a scripted DFCAN (the torchscript
        # weights of an exported package, run in float32 by the tools) skips it.
        if torch.jit.is_scripting():
            return self._attend(x)
        return self._attend_without_autocast(x)

    @torch.jit.unused
    def _attend_without_autocast(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return self._attend(x)

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        spec = torch.fft.fft2(x, norm="backward")
        spec = torch.fft.fftshift((spec.abs() + 1e-8) ** self.gamma, dim=(-2, -1))
        w = F.relu(self.spectrum_conv(spec))
        w = F.adaptive_avg_pool2d(w, 1)
        w = torch.sigmoid(self.excite(F.relu(self.squeeze(w))))
        return x * w


class FCAB(nn.Module):
    """Fourier channel attention block: conv-GELU-conv-GELU, attention, residual."""

    def __init__(self, channels: int = 64, reduction: int = 16) -> None:
        super().__init__()
        self.conv1 = _conv3(channels, channels)
        self.conv2 = _conv3(channels, channels)
        self.attention = FourierChannelAttention(channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.gelu(self.conv2(F.gelu(self.conv1(x))))
        return x + self.attention(y)


class ResidualGroup(nn.Module):
    """A chain of FCABs with a skip connection around it."""

    def __init__(self, channels: int = 64, blocks: int = 4, reduction: int = 16) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(FCAB(channels, reduction) for _ in range(blocks)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.blocks(x)


class DFCAN(nn.Module):
    """Deep Fourier Channel Attention Network.

    Parameters
    ----------
    scale : int, optional
        Output size / input size: 1 for the same-size float32 release
        (default), 2 for the authors' native geometry (GT at 2x).
    channels : int, optional
        Feature channels (64).
    groups, blocks : int, optional
        Residual groups and FCABs per group (4 and 4; DFGAN's generator uses 5 x 10).
    reduction : int, optional
        Channel squeeze of the attention (16).

    Examples
    --------
    >>> import torch
    >>> DFCAN(scale=2)(torch.zeros(1, 1, 32, 32)).shape
    torch.Size([1, 1, 64, 64])
    """

    def __init__(
        self,
        scale: int = 1,
        *,
        channels: int = 64,
        groups: int = 4,
        blocks: int = 4,
        reduction: int = 16,
    ) -> None:
        super().__init__()
        if scale < 1 or int(scale) != scale:
            raise ValueError(f"scale must be a positive integer, got {scale!r}")
        self.scale = int(scale)
        self.stem = _conv3(1, channels)
        self.body = nn.Sequential(
            *(ResidualGroup(channels, blocks, reduction) for _ in range(groups))
        )
        self.upsample = _conv3(channels, channels * self.scale**2)
        self.shuffle = nn.PixelShuffle(self.scale)
        self.head = _conv3(channels, 1)

    #: Input sides must be multiples of this (none for DFCAN).
    size_multiple = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body(F.gelu(self.stem(x)))
        x = self.shuffle(F.gelu(self.upsample(x)))
        return torch.sigmoid(self.head(x))
