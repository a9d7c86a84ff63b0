"""Networks to convert.  ``tiny``: a seeded small CNN with a residual block, for demos and tests."""

from __future__ import annotations

import torch
from torch import nn

MODELS = ("tiny",)


class TinyCNN(nn.Module):
    """conv-bn-relu (stride 2), conv-bn-relu (stride 2), a residual block, 1x1 conv head."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()

        def cbr(cin, cout, stride):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                                 nn.BatchNorm2d(cout), nn.ReLU())

        self.stem = nn.Sequential(cbr(3, width, 2), cbr(width, 2 * width, 2))
        self.block = cbr(2 * width, 2 * width, 1)
        self.merge = nn.ReLU()
        self.head = nn.Sequential(nn.Conv2d(2 * width, 2 * width, 1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.merge(x + self.block(x))
        return self.head(x)


def _randomise_bn(model: nn.Module, generator: torch.Generator) -> None:
    """Give BatchNorm layers non-trivial statistics, as a trained network would have."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
            m.running_var.copy_(0.5 + torch.rand(n, generator=generator))
            m.weight.data.copy_(0.5 + torch.rand(n, generator=generator))
            m.bias.data.copy_(0.1 * torch.randn(n, generator=generator))


def build(name: str, seed: int = 0) -> nn.Module:
    """A float network in eval mode; seeded random weights."""
    if name != "tiny":
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = TinyCNN()
    with torch.no_grad():
        _randomise_bn(model, generator)
    return model.eval()
