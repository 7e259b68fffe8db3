"""Training, in one home: LongCoT SFT (BOLT §3.2) and online DPO (§3.3): their data,
losses, fingerprints, the reference log-prob pass, the entrypoints that run as jobs,
the launchers that start them, DeepSpeed configs and memory plans."""
