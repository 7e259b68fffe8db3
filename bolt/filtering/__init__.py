"""Stage 1c, filtering (BOLT, Pang et al., 2025, §3.1): a rule-based format filter,
reward scoring of the response only, a percentile cut over the whole stage and the
best response per query. The pure parts live here; the stage driver composes them."""
