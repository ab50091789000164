"""DFCAN and U-Net: output shapes, parameter counts, the Fourier attention."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="needs torch: pip install biosr[ml]")

from biosr.errors import BiosrError  # noqa: E402
from biosr.learn.models import build_model, count_parameters  # noqa: E402
from biosr.learn.models.dfcan import DFCAN, FourierChannelAttention  # noqa: E402


@pytest.mark.parametrize("name", ["dfcan", "unet"])
@pytest.mark.parametrize("scale", [1, 2])
def test_output_shape(name, scale):
    opts = {"channels": 8, "groups": 1, "blocks": 1, "reduction": 4} if name == "dfcan" else {}
    net = build_model(name, scale=scale, **opts).eval()
    x = torch.rand(2, 1, 24, 32)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, 1, 24 * scale, 32 * scale)
    assert y.dtype == torch.float32


def _dfcan_params_by_hand(scale: int, c: int = 64, groups: int = 4, blocks: int = 4) -> int:
    conv3 = lambda cin, cout: cin * cout * 9 + cout  # noqa: E731 - weights + biases
    conv1 = lambda cin, cout: cin * cout + cout  # noqa: E731
    squeezed = c // 16
    attention = conv3(c, c) + conv1(c, squeezed) + conv1(squeezed, c)
    fcab = 2 * conv3(c, c) + attention
    return conv3(1, c) + groups * blocks * fcab + conv3(c, c * scale**2) + conv3(c, 1)


@pytest.mark.parametrize("scale", [1, 2])
def test_dfcan_parameter_count(scale):
    expected = _dfcan_params_by_hand(scale)
    assert count_parameters(DFCAN(scale=scale)) == expected
    # The figures quoted in the module docstring.
    assert expected == {1: 1_819_969, 2: 1_930_753}[scale]


def test_dfcan_output_in_unit_range():
    net = DFCAN(channels=8, groups=1, blocks=1, reduction=4).eval()
    with torch.no_grad():
        y = net(torch.randn(1, 1, 16, 16) * 10)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_fourier_attention_depends_on_spectrum_not_position():
    # Power spectrum is invariant to circular shifts: so must be the channel weights.
    torch.manual_seed(0)
    fca = FourierChannelAttention(channels=8, reduction=4).eval()
    x = torch.rand(1, 8, 16, 16)
    shifted = torch.roll(x, shifts=(3, 5), dims=(-2, -1))
    with torch.no_grad():
        w1 = fca(x) / x
        w2 = fca(shifted) / shifted
    assert torch.allclose(w1[..., 0, 0], w2[..., 0, 0], atol=1e-5)
    assert not torch.allclose(w1[..., 0, 0], torch.full_like(w1[..., 0, 0], 0.5), atol=1e-3)


def test_unet_identity_at_init_is_residual():
    net = build_model("unet", scale=1)
    torch.nn.init.zeros_(net.out.weight)
    torch.nn.init.zeros_(net.out.bias)
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(net(x), x)


def test_unknown_model_is_a_clear_error():
    with pytest.raises(BiosrError, match="unknown model 'vdsr'; valid models: dfcan, unet"):
        build_model("vdsr")
