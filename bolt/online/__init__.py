"""Stage 3, online training (BOLT, Pang et al., 2025, §3.3): sample from the policy,
score, pair the highest- against the lowest-reward sample and train with DPO against
the SFT model as reference. The pure parts (pairing, the loss) live here."""
