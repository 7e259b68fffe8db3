"""Reward backends behind one protocol (BOLT, Pang et al., 2025, §3.1 filtering and §3.3
online DPO): HF sequence-classification reward models, an LM checklist judge, a
math-verify rule verifier and the format reward. ``make_reward`` builds the one a
``RewardBackend`` config names, ``reward_item`` makes an item of a generation and its
query, and ``combine`` weighs the backends' scores."""

from bolt.rewards.base import RewardError, RewardItem, RewardModel, combine, reward_item
from bolt.rewards.factory import make_reward

__all__ = ["RewardError", "RewardItem", "RewardModel", "combine", "make_reward", "reward_item"]
