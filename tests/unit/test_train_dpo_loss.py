"""The DPO / IPO losses and sequence log-probs against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from bolt.train.dpo_loss import DpoLossType, dpo_loss, sequence_logps

# policy chosen, policy rejected, reference chosen, reference rejected
LOGPS = (-1.0, -2.0, -1.5, -1.8)
BETA = 0.1
# h = (-1.0 - -1.5) - (-2.0 - -1.8) = 0.5 + 0.2 = 0.7
H = 0.7


def tensors(*values: float) -> list[torch.Tensor]:
    return [torch.tensor([v], dtype=torch.float64) for v in values]


def test_sigmoid_loss_by_hand():
    out = dpo_loss(*tensors(*LOGPS), beta=BETA, loss_type=DpoLossType.sigmoid)
    # -log sigmoid(x) = log(1 + exp(-x)), x = beta * h = 0.07
    assert out.losses.item() == pytest.approx(math.log(1 + math.exp(-BETA * H)), rel=1e-12)
    assert out.chosen_rewards.item() == pytest.approx(BETA * 0.5, rel=1e-12)
    assert out.rejected_rewards.item() == pytest.approx(BETA * -0.2, rel=1e-12)
    assert out.reward_margins.item() == pytest.approx(BETA * H, rel=1e-12)


def test_ipo_loss_by_hand():
    out = dpo_loss(*tensors(*LOGPS), beta=BETA, loss_type=DpoLossType.ipo)
    # (h - 1 / (2 beta))^2 = (0.7 - 5)^2 = 18.49
    assert out.losses.item() == pytest.approx((H - 1 / (2 * BETA)) ** 2, rel=1e-12)
    assert out.losses.item() == pytest.approx(18.49, rel=1e-12)


def test_loss_is_per_pair_and_rewards_are_detached():
    policy_chosen = torch.tensor([-1.0, -3.0], dtype=torch.float64, requires_grad=True)
    policy_rejected = torch.tensor([-2.0, -1.0], dtype=torch.float64, requires_grad=True)
    ref = torch.tensor([-1.5, -1.5], dtype=torch.float64)
    out = dpo_loss(policy_chosen, policy_rejected, ref, ref, beta=0.5)
    assert out.losses.shape == (2,)
    # second pair: h = (-3 + 1.5) - (-1 + 1.5) = -2; beta * h = -1
    assert out.losses[1].item() == pytest.approx(math.log(1 + math.exp(1.0)), rel=1e-12)
    assert not out.chosen_rewards.requires_grad and not out.rejected_rewards.requires_grad
    out.losses.mean().backward()
    # d/dx of -log sigmoid(beta * x) pushes the chosen log-prob up
    assert (policy_chosen.grad < 0).all() and (policy_rejected.grad > 0).all()


def test_a_policy_equal_to_the_reference_has_loss_log_2():
    out = dpo_loss(*tensors(-1.0, -2.0, -1.0, -2.0))
    assert out.losses.item() == pytest.approx(math.log(2), rel=1e-12)


def test_beta_must_be_positive():
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(*tensors(*LOGPS), beta=0.0)


def _manual_log_softmax(row: list[float], index: int) -> float:
    return row[index] - math.log(sum(math.exp(v) for v in row))


def test_sequence_logps_by_hand():
    # batch 2, sequence 4, vocab 3
    logits = [
        [[0.0, 1.0, 2.0], [1.0, 0.0, 0.0], [0.5, 0.5, 2.0], [9.0, 9.0, 9.0]],
        [[2.0, 0.0, 1.0], [0.0, 3.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]],
    ]
    labels = [[-100, 2, 0, 1], [-100, -100, 1, 2]]
    mask = [[0, 1, 1, 1], [0, 0, 1, 0]]
    # Shift: logits at t score the label at t + 1, where the mask at t + 1 is on.
    expected = [
        _manual_log_softmax(logits[0][0], 2)
        + _manual_log_softmax(logits[0][1], 0)
        + _manual_log_softmax(logits[0][2], 1),
        _manual_log_softmax(logits[1][1], 1),
    ]
    got = sequence_logps(
        torch.tensor(logits, dtype=torch.float64), torch.tensor(labels), torch.tensor(mask)
    )
    assert got.tolist() == pytest.approx(expected, rel=1e-12)


def test_sequence_logps_agrees_with_log_softmax_in_bf16():
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 11).to(torch.bfloat16)
    labels = torch.randint(0, 11, (2, 6))
    mask = torch.tensor([[0, 0, 1, 1, 1, 0], [0, 1, 1, 1, 1, 1]], dtype=torch.bool)
    got = sequence_logps(logits, labels, mask)
    per_token = (
        torch.log_softmax(logits.float(), -1)[:, :-1].gather(-1, labels[:, 1:, None]).squeeze(-1)
    )
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, (per_token * mask[:, 1:]).sum(-1))


def test_sequence_logps_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape mismatch"):
        sequence_logps(torch.zeros(1, 4, 3), torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 4))
