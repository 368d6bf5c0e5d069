"""The U-Net: scriptable, shapes, heads, dtype handling, cost."""

import pytest
import torch

from landbc.emulator.nets import UNet, flops_per_pixel


def test_unet_scripts_and_keeps_shape():
    net = UNet(7, 5, base=4).eval()
    scripted = torch.jit.script(net)
    x = torch.randn(2, 7, 48, 64)
    with torch.no_grad():
        y = scripted(x)
        assert y.shape == (2, 5, 48, 64) and y.dtype == torch.float32
        assert torch.allclose(y, net(x), atol=1e-5)


def test_softplus_head_is_non_negative():
    net = UNet(3, 1, base=4, head="softplus").eval()
    with torch.no_grad():
        y = net(torch.randn(1, 3, 32, 32) * 100)
    assert (y >= 0).all()


def test_bf16_net_takes_float32_and_returns_float32():
    net = UNet(3, 2, base=4).eval().to(torch.bfloat16)
    with torch.no_grad():
        y = torch.jit.script(net)(torch.randn(1, 3, 32, 32))
    assert y.dtype == torch.float32


def test_bad_head_is_refused():
    with pytest.raises(ValueError, match="head must be"):
        UNet(3, 1, head="relu")


def test_cost_matches_the_seed_figure():
    # REFERENCES.md: a 16-base, 4-level U-Net costs about 100 kFLOP per pixel
    assert 90e3 < flops_per_pixel(UNet(56, 8)) < 130e3
