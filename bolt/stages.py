"""Every stage output's name, in one place.

A value names the output's folder in the store (``<root>/<stage>/<fingerprint>/``) and
enters its fingerprint, so the values are kept exactly as the first stores were written
(``eval_answers`` beside ``online-pairs`` included): renaming one would orphan every
finished output of that stage.
"""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    curation = "data"
    # Curation's resumable parts (bolt.curation.labelling), under the curation fingerprint.
    curation_candidates = "data-candidates"  # read, deduplicated, shuffled: what is labelled
    curation_labels = "data-labels"  # the labelled shards and their rejects
    # The synthetic sources' queries, shard by shard (bolt.curation.generation).
    curation_generated = "data-generated"
    bootstrap = "bootstrap"
    score = "score"
    filter = "filter"
    sft = "sft"
    online_prompts = "online-prompts"
    online_samples = "online-samples"
    online_scores = "online-scores"
    online_pairs = "online-pairs"
    online_groups = "online-groups"  # GRPO: samples with group-relative advantages
    online_feedback = "online-feedback"  # DRIFT: the dissatisfaction rows of an iteration
    online_reference = "online-reference"
    online_policy = "online-policy"
    eval_answers = "eval_answers"
    eval = "eval"
    eval_trajectory = "eval_trajectory"
