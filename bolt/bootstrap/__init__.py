"""Stage 1b: few-shot LongCoT bootstrapping (BOLT §3.1)."""
