"""The GRPO objective as pure torch functions (RLMT: Bhaskar et al., 2025; GRPO: Shao et
al., 2024, DeepSeekMath §4.1), the formulas of TRL's ``GRPOTrainer._compute_loss``.

Per completion token t of a sample with advantage A:

    ratio_t = exp(log pi(t) - log pi_old(t))
    loss_t  = -min(ratio_t * A, clip(ratio_t, 1 - eps, 1 + eps) * A) + kl_coef * k3_t
    k3_t    = exp(log pi_ref(t) - log pi(t)) - (log pi_ref(t) - log pi(t)) - 1

``k3`` is the low-variance, always non-negative KL estimator (Schulman, 2020) RLMT's
"low-variance KL" loss names. ``pi_old`` is the policy the samples were drawn from: on
an iteration's first optimizer step ratio = 1 and the gradient is the plain
``-A * grad log pi``; later steps of the same iteration are clipped like PPO's.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from bolt.config import GrpoLossAggregation


def per_token_logps(
    logits: torch.Tensor, labels: torch.Tensor, loss_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(label_t | tokens_<t) at every position, and the mask of completion tokens.

    Both are ``[batch, seq - 1]`` (the logits at t score the label at t + 1); positions
    outside ``loss_mask`` hold 0. Computed in at least float32, one row at a time.
    """
    if logits.shape[:2] != labels.shape or labels.shape != loss_mask.shape:
        raise ValueError(
            f"shape mismatch: logits {tuple(logits.shape)}, labels {tuple(labels.shape)}, "
            f"loss_mask {tuple(loss_mask.shape)}"
        )
    mask = loss_mask[:, 1:].bool()
    targets = torch.where(mask, labels[:, 1:], torch.zeros_like(labels[:, 1:]))
    rows = []
    for row, row_targets in zip(logits[:, :-1, :], targets, strict=True):
        row = row.to(torch.promote_types(row.dtype, torch.float32))
        picked = row.gather(-1, row_targets.unsqueeze(-1)).squeeze(-1)
        rows.append(picked - torch.logsumexp(row, dim=-1))
    return torch.stack(rows) * mask, mask


def k3_kl(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """The k3 estimator of KL(pi || pi_ref) per token: ``exp(d) - d - 1``, d = ref - pi."""
    delta = ref_logps - logps
    return torch.exp(delta) - delta - 1


class GrpoOutput(NamedTuple):
    """The loss to back-propagate and what is logged of it (detached)."""

    loss: torch.Tensor
    kl: torch.Tensor  # mean k3 per completion token (0 without a reference)
    clip_fraction: torch.Tensor  # share of completion tokens whose ratio was clipped


def grpo_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    ref_logps: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    kl_coef: float,
    epsilon: float = 0.2,
    aggregation: GrpoLossAggregation = GrpoLossAggregation.sequence_mean,
    max_tokens: int | None = None,
) -> GrpoOutput:
    """GRPO's loss over a batch of samples (``[batch, tokens]`` tensors, ``advantages``
    ``[batch]``).

    ``sequence_mean`` (GRPO, TRL's ``loss_type="grpo"``): each sample's token mean, then
    the mean over samples. ``constant_length`` (Dr. GRPO, TRL's ``dr_grpo``): the token
    sum over ``batch * max_tokens``, so a long sample's tokens weigh what a short one's do.
    """
    if kl_coef > 0 and ref_logps is None:
        raise ValueError("kl_coef > 0 needs the reference log-probs")
    m = mask.to(logps.dtype)
    ratio = torch.exp(logps - old_logps)
    clipped = torch.clamp(ratio, 1 - epsilon, 1 + epsilon)
    adv = advantages.to(logps.dtype).unsqueeze(1)
    per_token = -torch.min(ratio * adv, clipped * adv)
    kl = torch.zeros_like(per_token)
    if ref_logps is not None and kl_coef > 0:
        kl = k3_kl(logps, ref_logps)
        per_token = per_token + kl_coef * kl
    match aggregation:
        case GrpoLossAggregation.sequence_mean:
            loss = ((per_token * m).sum(-1) / m.sum(-1).clamp(min=1)).mean()
        case GrpoLossAggregation.constant_length:
            if not max_tokens:
                raise ValueError("constant_length aggregation needs max_tokens")
            loss = (per_token * m).sum() / (per_token.shape[0] * max_tokens)
        case _:
            raise ValueError(f"unknown GRPO loss aggregation {aggregation!r}")
    tokens = m.sum().clamp(min=1)
    is_clipped = ((ratio < 1 - epsilon) & (adv < 0)) | ((ratio > 1 + epsilon) & (adv > 0))
    return GrpoOutput(
        loss=loss,
        kl=((kl * m).sum() / tokens).detach(),
        clip_fraction=((is_clipped.to(m.dtype) * m).sum() / tokens).detach(),
    )
