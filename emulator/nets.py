"""The U-Net of the BSC land-use work, scriptable, used three times (LU, LC, LAI).

16 base channels, 4 max-pool levels with double 3×3 convolutions, a symmetric
decoder with skip connections and a 1×1 head (REFERENCES.md, phase 1). About
100 kFLOP per pixel. Inputs must have sides divisible by 16.
"""

import copy

import torch
from torch import Tensor, nn


class DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class Up(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cin // 2, 2, stride=2)
        self.conv = DoubleConv(cin // 2 + cout, cout)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class UNet(nn.Module):
    """U-Net with `levels` poolings. `head` is "logits" (classifier), "linear"
    (regressor; the same affine head as "logits") or "softplus" (non-negative
    regressor).

    `prior_channel` names the input channel where the prior starts (its one-hot
    for a classifier, its normalised value for the regressor), or -1. The prior
    is then added to the head's output with a learned gain per output channel:
    persistence is the net's starting point and the U-Net learns the change,
    which the rare change pixels could not teach it from scratch in a short
    training. The prior stays an ordinary input too.

    The forward casts its input to the dtype of its own weights and returns
    float32: the stepper stays in float32 for blending, while the nets can be
    cast to bfloat16 (`net.to(torch.bfloat16)`) where the hardware favours it.
    """

    min_multiple: int
    folded: bool

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        base: int = 16,
        levels: int = 4,
        head: str = "logits",
        prior_channel: int = -1,
        prior_gain: float = 4.0,
    ) -> None:
        super().__init__()
        if head not in ("logits", "linear", "softplus"):
            raise ValueError(f"head must be 'logits', 'linear' or 'softplus', found {head!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.min_multiple = 2**levels
        self.softplus_head = head == "softplus"
        widths = [base * 2**i for i in range(levels + 1)]
        self.inc = DoubleConv(in_channels, widths[0])
        self.downs = nn.ModuleList(DoubleConv(widths[i], widths[i + 1]) for i in range(levels))
        self.ups = nn.ModuleList(Up(widths[i + 1], widths[i]) for i in reversed(range(levels)))
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        self.pool = nn.MaxPool2d(2)
        self.prior_channel = prior_channel
        self.folded = False  # BatchNorm folded into the convolutions (fold_batchnorm)
        self.prior_gain = nn.Parameter(torch.full((out_channels,), float(prior_gain)))

    def forward(self, x: Tensor) -> Tensor:
        x = x.to(self.head.weight.dtype)
        inputs = x
        skips: list[Tensor] = []
        x = self.inc(x)
        for down in self.downs:
            skips.append(x)
            x = down(self.pool(x))
        i = len(skips) - 1
        for up in self.ups:
            x = up(x, skips[i])
            i -= 1
        y = self.head(x)
        if self.prior_channel >= 0:
            c = self.prior_channel
            prior = inputs[:, c : c + self.out_channels]
            y = y + self.prior_gain.view(1, -1, 1, 1).to(y.dtype) * prior
        y = y.float()
        if self.softplus_head:
            y = nn.functional.softplus(y)
        return y


def unet_from_scripted(scripted: torch.jit.ScriptModule) -> UNet:
    """A plain `UNet` with the architecture and weights of a scripted one.

    Re-exporting a bundle goes through this, so the new TorchScript files carry
    this landbc's qualified names (`landbc.emulator.nets.UNet`) rather than
    those the old file was scripted with (`emulator.nets.UNet` before 0.2).
    """
    net = UNet(
        int(scripted.in_channels),
        int(scripted.out_channels),
        base=int(scripted.head.weight.shape[1]),
        levels=int(scripted.min_multiple).bit_length() - 1,
        head="softplus" if bool(scripted.softplus_head) else "logits",
        prior_channel=int(scripted.prior_channel),
    )
    if bool(getattr(scripted, "folded", False)):
        net = fold_batchnorm(net.eval())  # the folded layout, to take the folded weights
    net.load_state_dict(scripted.state_dict())
    # the mode too: BatchNorm in training mode would normalise by batch statistics
    return net.train(bool(scripted.training))


def flops_per_pixel(net: UNet) -> float:
    """Multiply-adds ×2 of the convolutions per output pixel (analytic count)."""
    total = 0.0
    scale = 1.0  # pixels at this level / pixels at full resolution

    def conv_cost(m: nn.Module, s: float) -> float:
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1]
            return 2.0 * m.in_channels * m.out_channels * k * s / (m.groups)
        if isinstance(m, nn.ConvTranspose2d):
            # each input pixel scatters a k×k patch: cost counted at the input resolution
            k = m.kernel_size[0] * m.kernel_size[1]
            return 2.0 * m.in_channels * m.out_channels * k * s / 4.0
        return 0.0

    total += sum(conv_cost(m, scale) for m in net.inc.modules())
    for down in net.downs:
        scale /= 4
        total += sum(conv_cost(m, scale) for m in down.modules())
    for up in net.ups:
        scale *= 4
        total += sum(conv_cost(m, scale) for m in up.modules())
    total += conv_cost(net.head, 1.0)
    return total


def fold_batchnorm(net: UNet) -> UNet:
    """A copy of `net` for inference, each BatchNorm folded into the convolution
    before it (weights scaled by gamma / sqrt(var + eps), a bias added), the
    BatchNorm replaced by an identity: a step then spares a pass over every
    activation. Bundles export folded nets; training keeps the unfolded ones
    (checkpoints), whose BatchNorms still learn. Equal to `net` in eval mode up
    to float rounding (tests/test_nets.py)."""
    folded = copy.deepcopy(net).eval()
    for module in folded.modules():
        if not isinstance(module, DoubleConv):
            continue
        for i in range(len(module) - 1):
            conv, bn = module[i], module[i + 1]
            if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)):
                continue
            scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
            bias = bn.bias.double() - bn.running_mean.double() * scale
            if conv.bias is not None:
                bias = bias + conv.bias.double() * scale
            new = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                            padding=conv.padding, bias=True)  # fmt: skip
            with torch.no_grad():
                new.weight.copy_((conv.weight.double() * scale.view(-1, 1, 1, 1)).float())
                new.bias.copy_(bias.float())
            module[i] = new.to(conv.weight.device)
            module[i + 1] = nn.Identity()
    folded.folded = True
    for p in folded.parameters():
        p.requires_grad_(False)
    return folded
