"""Stage 3, online training (BOLT, Pang et al., 2025, §3.3): the loop's data stages.
Sample from the policy, score, pair the highest- against the lowest-reward sample; the
reference log-probs and the DPO training against the SFT model live in ``bolt.train``."""
