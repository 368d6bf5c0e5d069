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


def test_folded_batchnorm_gives_the_same_outputs_and_survives_scripting():
    """Exported nets have BatchNorm folded into their convolutions; with trained
    statistics (not the identity of a fresh net) they equal the eval-mode net to
    float rounding, and a scripted folded net reads back as a folded UNet."""
    from landbc.emulator.nets import fold_batchnorm, unet_from_scripted

    torch.manual_seed(0)
    net = UNet(7, 5, base=4, prior_channel=0)
    net.train()
    with torch.no_grad():
        for _ in range(3):  # move the running statistics away from (0, 1)
            net(torch.randn(4, 7, 32, 32) * 3 + 1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.weight, 0.5, 2.0)
            torch.nn.init.uniform_(m.bias, -1.0, 1.0)
    net.eval()
    folded = fold_batchnorm(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # a copy
    x = torch.randn(2, 7, 48, 64)
    with torch.no_grad():
        ref, got = net(x), folded(x)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
    again = unet_from_scripted(torch.jit.script(folded))
    assert again.folded
    with torch.no_grad():
        assert torch.equal(again.eval()(x), got)
