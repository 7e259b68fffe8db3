"""Training stages: LongCoT SFT (sft), their launchers, DeepSpeed configs and plans."""
