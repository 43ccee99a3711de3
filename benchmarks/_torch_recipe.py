"""The textbook PyTorch matrix-factorization recipe, as a baseline.

This is the model most tutorials show: ``nn.Embedding`` user and item factors
(k = 30, initialized N(0, 0.01)), ``nn.Embedding`` user and item biases
(initialized to 0) and a fixed global mean, trained on the mean squared error
with ``torch.optim.Adam`` (lr 1e-3, no weight decay) in minibatches of 512
ratings for 20 epochs, reshuffled every epoch.

The small initial scale matters: with torch's default N(0, 1) initialization of
``nn.Embedding`` the recipe ends at a test RMSE of about 2.6 on MovieLens 100K.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["TextbookMF", "fit_textbook", "predict_textbook"]


class TextbookMF(nn.Module):
    """``mean + b_u + b_i + p_u . q_i`` with ``nn.Embedding`` parameters."""

    def __init__(self, n_users: int, n_items: int, k: int = 30, mean: float = 0.0):
        super().__init__()
        self.user_factors = nn.Embedding(n_users, k)
        self.item_factors = nn.Embedding(n_items, k)
        self.user_bias = nn.Embedding(n_users, 1)
        self.item_bias = nn.Embedding(n_items, 1)
        nn.init.normal_(self.user_factors.weight, 0.0, 0.01)
        nn.init.normal_(self.item_factors.weight, 0.0, 0.01)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.item_bias.weight)
        self.register_buffer("mean", torch.tensor(float(mean)))

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        dot = (self.user_factors(users) * self.item_factors(items)).sum(dim=1)
        return (
            self.mean
            + self.user_bias(users).squeeze(1)
            + self.item_bias(items).squeeze(1)
            + dot
        )


def fit_textbook(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    n_users: int,
    n_items: int,
    *,
    k: int = 30,
    lr: float = 1e-3,
    batch_size: int = 512,
    epochs: int = 20,
    device: str = "cpu",
    seed: int = 0,
) -> TextbookMF:
    """Train the recipe on 0-based user and item codes."""
    torch.manual_seed(seed)
    device = torch.device(device)
    u = torch.as_tensor(users, dtype=torch.long, device=device)
    i = torch.as_tensor(items, dtype=torch.long, device=device)
    r = torch.as_tensor(ratings, dtype=torch.float32, device=device)
    model = TextbookMF(n_users, n_items, k=k, mean=float(r.mean())).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(r)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, device=device)
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            loss = F.mse_loss(model(u[idx], i[idx]), r[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model


@torch.no_grad()
def predict_textbook(model: TextbookMF, users: np.ndarray, items: np.ndarray):
    """Predict for 0-based codes; code -1 (unknown) drops that side's terms."""
    model.eval()
    device = model.mean.device
    u = torch.as_tensor(users, dtype=torch.long, device=device)
    i = torch.as_tensor(items, dtype=torch.long, device=device)
    ku, ki = u >= 0, i >= 0
    uc, ic = u.clamp_min(0), i.clamp_min(0)
    dot = (model.user_factors(uc) * model.item_factors(ic)).sum(dim=1)
    pred = (
        model.mean
        + model.user_bias(uc).squeeze(1) * ku
        + model.item_bias(ic).squeeze(1) * ki
        + dot * (ku & ki)
    )
    return pred.double().cpu().numpy()
