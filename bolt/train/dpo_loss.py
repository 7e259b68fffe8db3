"""The DPO objective as pure torch functions (BOLT, Pang et al., 2025, §3.3).

BOLT trains online with DPO (Rafailov et al., 2023) against the SFT model as the
reference, beta = 0.1. IPO (Azar et al., 2023) is kept as an ablation. The functions
follow the reference implementation of DPO (``preference_loss`` in
github.com/eric-mitchell/direct-preference-optimization) and TRL's ``DPOTrainer``:
per-pair losses and implicit rewards, the mean taken by the caller.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from bolt.config import DpoLoss

# The config owns the enum (its values are the config's vocabulary).
DpoLossType = DpoLoss


def sequence_logps(
    logits: torch.Tensor, labels: torch.Tensor, loss_mask: torch.Tensor
) -> torch.Tensor:
    """Sum of log p(label_t | tokens_<t) over the masked tokens of each sequence.

    ``logits`` is ``[batch, seq, vocab]`` from a causal LM over the full sequence;
    ``labels`` and ``loss_mask`` are ``[batch, seq]`` and aligned with the input, so
    the logits at position t score the label at t+1 (the standard one-position shift).
    ``loss_mask`` is true on the response tokens; labels outside it may hold anything
    (e.g. -100) and are never looked up. Computed in (at least) float32 one sequence at
    a time, so a bf16 batch with a 128k vocabulary never needs a float32 copy of it all.
    """
    if logits.shape[:2] != labels.shape or labels.shape != loss_mask.shape:
        raise ValueError(
            f"shape mismatch: logits {tuple(logits.shape)}, labels {tuple(labels.shape)}, "
            f"loss_mask {tuple(loss_mask.shape)}"
        )
    logits = logits[:, :-1, :]
    mask = loss_mask[:, 1:].bool()
    # Masked positions may hold an ignore index; any valid id is fine there.
    targets = torch.where(mask, labels[:, 1:], torch.zeros_like(labels[:, 1:]))
    per_token = torch.stack(
        [_token_logps(row, row_targets) for row, row_targets in zip(logits, targets, strict=True)]
    )
    return (per_token * mask).sum(dim=-1)


def _token_logps(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log_softmax(logits)[targets] for one ``[seq, vocab]`` row, without the full log_softmax."""
    # At least float32: bf16 log-probs lose the small differences DPO is made of.
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


class DpoOutput(NamedTuple):
    """Per-pair losses and the implicit rewards beta * log(pi / pi_ref) of both sides."""

    losses: torch.Tensor
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor

    @property
    def reward_margins(self) -> torch.Tensor:
        return self.chosen_rewards - self.rejected_rewards


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float = 0.1,
    loss_type: DpoLossType = DpoLossType.sigmoid,
) -> DpoOutput:
    """DPO (Rafailov et al., 2023, Eq. 7) or IPO (Azar et al., 2023) per pair.

    With h = (log pi(y_w) - log pi(y_l)) - (log pi_ref(y_w) - log pi_ref(y_l)):

    - ``sigmoid``: ``-log sigmoid(beta * h)``;
    - ``ipo``: ``(h - 1 / (2 * beta)) ** 2``. Azar et al. define h on sequence
      log-likelihoods, which is what :func:`sequence_logps` gives; TRL averages the
      log-probs over tokens for IPO instead, which changes the scale of h.

    The rewards are ``beta * (policy - reference)`` log-ratios, detached: they are
    for logging (reward accuracy, margins), not for the gradient.
    """
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    chosen_logratios = policy_chosen_logps - ref_chosen_logps
    rejected_logratios = policy_rejected_logps - ref_rejected_logps
    h = chosen_logratios - rejected_logratios
    match loss_type:
        case DpoLossType.sigmoid:
            losses = -F.logsigmoid(beta * h)
        case DpoLossType.ipo:
            losses = (h - 1 / (2 * beta)) ** 2
        case _:
            raise ValueError(f"unknown DPO loss type {loss_type!r}")
    return DpoOutput(
        losses=losses,
        chosen_rewards=beta * chosen_logratios.detach(),
        rejected_rewards=beta * rejected_logratios.detach(),
    )


def dpo_nll_loss(
    dpo_losses: torch.Tensor,
    policy_chosen_logps: torch.Tensor,
    chosen_tokens: torch.Tensor,
    alpha: float,
) -> torch.Tensor:
    """The mean DPO loss plus ``alpha`` times the chosen side's NLL (RPO: Pang et al.,
    2024; DRIFT trains with alpha = 0.001).

    The NLL is normalised as TRL normalises it (``rpo_alpha`` in TRL < 1, the ``sft``
    term of ``loss_type=["sigmoid", "sft"]`` since): ``-chosen_per_token_logps[mask].mean()``,
    the mean over *all* chosen tokens of the batch, i.e. the sum of the chosen sequences'
    log-probs over their total token count (not a mean of per-sequence means).
    ``policy_chosen_logps`` are those sums (:func:`sequence_logps`), ``chosen_tokens``
    the tokens each sums over.
    """
    if alpha < 0:
        raise ValueError(f"alpha must be non-negative, got {alpha}")
    nll = -policy_chosen_logps.sum() / chosen_tokens.sum().clamp(min=1)
    return dpo_losses.mean() + alpha * nll
