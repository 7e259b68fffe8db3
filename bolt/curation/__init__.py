"""Stage 1a: query curation (BOLT §3.1): sources, dedup, difficulty, topics, balance."""
