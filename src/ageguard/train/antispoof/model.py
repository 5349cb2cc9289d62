"""The trainable part of the liveness model: a small MLP on the frozen backbone's pooled features, and
the adversarial source classifier used only while training (single-side domain generalisation)."""

from __future__ import annotations

import torch
from torch import nn

# Both crops, pixels (the backbones' strides divide it): 160 ranks unseen webcam setups better than 128
# (docs/models/antispoof.md, "160 px crops").
CROP_SIZE = 160


class Head(nn.Module):
    def __init__(self, features: int, hidden: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Dropout(0.2), nn.Linear(features, hidden), nn.ReLU())
        self.out = nn.Sequential(nn.Dropout(0.3), nn.Linear(hidden, 1))
        self.hidden = hidden

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits [N] and the hidden features [N, hidden]."""
        h = self.body(x)
        return self.out(h).squeeze(1), h

    def layers(self) -> list[nn.Linear]:
        return [self.body[1], self.out[1]]  # type: ignore[list-item]


class _ReverseGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, weight: float) -> torch.Tensor:
        ctx.weight = weight  # type: ignore[attr-defined]
        return x.view_as(x)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.weight * grad, None  # type: ignore[attr-defined]


class DomainHead(nn.Module):
    """Guesses the source of a live face through a gradient reversal: live faces of every source are
    pushed to look alike to the head, attacks are left free (Jia et al., SSDG, CVPR 2020)."""

    def __init__(self, features: int, domains: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, 64), nn.ReLU(), nn.Linear(64, domains))

    def forward(self, x: torch.Tensor, weight: float) -> torch.Tensor:
        return self.net(_ReverseGrad.apply(x, weight))
