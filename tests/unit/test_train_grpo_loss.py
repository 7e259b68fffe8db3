"""GRPO's loss (RLMT, TRL's formulas) and the DRIFT NLL-augmented DPO loss, by hand."""

from __future__ import annotations

import math

import pytest
import torch

from bolt.config import GrpoLossAggregation
from bolt.train.dpo_loss import DpoLossType, dpo_loss, dpo_nll_loss, sequence_logps
from bolt.train.grpo_loss import grpo_loss, k3_kl, per_token_logps


def t(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def adv(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_k3_by_hand():
    # d = ref - logp; k3 = exp(d) - d - 1
    got = k3_kl(t([math.log(0.5), math.log(0.25)]), t([math.log(0.25), math.log(0.5)]))
    assert got.tolist()[0] == pytest.approx([0.5 + math.log(2) - 1, 2 - math.log(2) - 1])
    assert k3_kl(t([-1.0]), t([-1.0])).item() == 0.0


def test_on_policy_loss_with_kl_by_hand():
    logps = t([math.log(0.5), math.log(0.25)])
    ref = t([math.log(0.25), math.log(0.5)])
    out = grpo_loss(logps, logps.clone(), ref, adv(2.0), torch.ones(1, 2), kl_coef=0.1)
    # ratio 1: per token -A + 0.1 * k3; the two k3 sum to 0.5, so the token mean is
    # -2 + 0.1 * 0.25 = -1.975.
    assert out.loss.item() == pytest.approx(-1.975, rel=1e-12)
    assert out.kl.item() == pytest.approx(0.25, rel=1e-12)
    assert out.clip_fraction.item() == 0.0


def test_ratio_is_clipped_in_the_advantage_direction_only():
    old = t([-1.0])
    new = old + math.log(1.5)  # ratio 1.5 > 1 + 0.2
    up = grpo_loss(new, old, None, adv(1.0), torch.ones(1, 1), kl_coef=0.0, epsilon=0.2)
    assert up.loss.item() == pytest.approx(-1.2)  # min(1.5, 1.2) * 1
    assert up.clip_fraction.item() == 1.0
    down = grpo_loss(new, old, None, adv(-1.0), torch.ones(1, 1), kl_coef=0.0, epsilon=0.2)
    assert down.loss.item() == pytest.approx(1.5)  # min(-1.5, -1.2) = -1.5: not clipped
    assert down.clip_fraction.item() == 0.0


def test_sequence_mean_against_constant_length():
    logps = torch.zeros(2, 3, dtype=torch.float64)
    mask = torch.tensor([[1, 0, 0], [1, 1, 1]])
    both = adv(1.0, 1.0)
    seq = grpo_loss(logps, logps, None, both, mask, kl_coef=0.0)
    assert seq.loss.item() == pytest.approx(-1.0)  # each sample's token mean is -1
    dr = grpo_loss(
        logps,
        logps,
        None,
        both,
        mask,
        kl_coef=0.0,
        aggregation=GrpoLossAggregation.constant_length,
        max_tokens=4,
    )
    assert dr.loss.item() == pytest.approx(-4 / (2 * 4))  # 4 tokens of -1 over 2 x 4


def test_gradient_is_minus_advantage_over_length_on_policy():
    logps = torch.tensor([[-1.0, -2.0]], dtype=torch.float64, requires_grad=True)
    out = grpo_loss(logps, logps.detach(), None, adv(3.0), torch.ones(1, 2), kl_coef=0.0)
    out.loss.backward()
    assert logps.grad.tolist() == [[-1.5, -1.5]]


def test_kl_needs_the_reference():
    with pytest.raises(ValueError, match="reference"):
        grpo_loss(t([-1.0]), t([-1.0]), None, adv(1.0), torch.ones(1, 1), kl_coef=0.1)


def test_per_token_logps_sum_to_the_sequence_logps():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7, dtype=torch.float64)
    labels = torch.randint(0, 7, (2, 5))
    mask = torch.tensor([[0, 0, 1, 1, 1], [0, 1, 1, 0, 0]]).bool()
    per_token, shifted = per_token_logps(logits, labels, mask)
    assert per_token.shape == (2, 4) and shifted.tolist() == mask[:, 1:].tolist()
    assert per_token.sum(-1).tolist() == pytest.approx(
        sequence_logps(logits, labels, mask).tolist()
    )
    want = torch.log_softmax(logits[0, 1], -1)[labels[0, 2]].item()
    assert per_token[0, 1].item() == pytest.approx(want)


def test_dpo_with_nll_term_by_hand():
    # DPO part: h = (-2 - -3) - (-5 - -4) = 2, loss = log(1 + exp(-0.2)).
    chosen, rejected = adv(-2.0, -4.0), adv(-5.0, -5.0)
    ref_chosen, ref_rejected = adv(-3.0, -5.0), adv(-4.0, -4.0)
    out = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta=0.1)
    dpo_mean = math.log(1 + math.exp(-0.2))  # both pairs have h = 2
    assert out.losses.mean().item() == pytest.approx(dpo_mean)
    # NLL: the chosen sums -2 and -4 over 2 and 3 tokens: 6 / 5 over all chosen tokens.
    loss = dpo_nll_loss(out.losses, chosen, torch.tensor([2, 3]), alpha=0.001)
    assert loss.item() == pytest.approx(dpo_mean + 0.001 * 6 / 5, rel=1e-12)
    assert dpo_nll_loss(out.losses, chosen, torch.tensor([2, 3]), 0.0).item() == pytest.approx(
        dpo_mean
    )


def test_nll_term_matches_trls_token_mean():
    """TRL's sft term: -chosen_per_token_logps[chosen_mask].mean() over the batch."""
    torch.manual_seed(1)
    logits = torch.randn(2, 6, 9, dtype=torch.float64)
    labels = torch.randint(0, 9, (2, 6))
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [0, 0, 0, 1, 1, 0]]).bool()
    per_token, shifted = per_token_logps(logits, labels, mask)
    trl = -per_token[shifted].mean()
    sums = sequence_logps(logits, labels, mask)
    ours = dpo_nll_loss(torch.zeros(2, dtype=torch.float64), sums, shifted.sum(-1), alpha=1.0)
    assert ours.item() == pytest.approx(trl.item(), rel=1e-12)
    with pytest.raises(ValueError):
        dpo_nll_loss(torch.zeros(1), sums[:1], torch.tensor([1]), alpha=-1.0)
    assert DpoLossType.sigmoid  # the NLL term rides on the sigmoid loss, as in DRIFT
