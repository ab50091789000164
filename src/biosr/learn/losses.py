"""Training losses and per-image validation scores on torch tensors.

SSIM comes from torchmetrics (a Lightning dependency; Gaussian window 11,
sigma 1.5, data range 1 - stated explicitly, never inferred). The loss is the
BioSR authors' ``MSE + 0.1 * (1 - SSIM)``; the scores are what training logs
for validation (the full evaluation lives in :mod:`biosr.evaluate.metrics`).
"""

from __future__ import annotations

import torch


def ssim(pred: torch.Tensor, target: torch.Tensor, *, data_range: float = 1.0) -> torch.Tensor:
    """Per-image SSIM of ``(N, 1, H, W)`` tensors, shape ``(N,)``, computed in float32."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    return structural_similarity_index_measure(
        pred.float(), target.float(), data_range=data_range, reduction="none"
    )


def sr_loss(pred: torch.Tensor, target: torch.Tensor, *, ssim_weight: float = 0.1) -> torch.Tensor:
    """The authors' loss, ``MSE + ssim_weight * (1 - SSIM)``, averaged over the batch.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(2, 1, 32, 32)
    >>> float(sr_loss(x, x))
    0.0
    """
    pred, target = pred.float(), target.float()
    loss = torch.mean((pred - target) ** 2)
    if ssim_weight:
        loss = loss + ssim_weight * (1.0 - ssim(pred, target).mean())
    return loss


def image_scores(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image MSE, NRMSE (Euclidean, as scikit-image) and PSNR (data range 1), each ``(N,)``."""
    pred, target = pred.float().flatten(1), target.float().flatten(1)
    mse = torch.mean((pred - target) ** 2, dim=1)
    nrmse = torch.sqrt(mse) / torch.sqrt(torch.mean(target**2, dim=1)).clamp_min(1e-12)
    psnr = 10.0 * torch.log10(1.0 / mse.clamp_min(1e-12))
    return {"mse": mse, "nrmse": nrmse, "psnr": psnr}
