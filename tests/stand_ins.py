"""A deterministic engine and judge for stage tests: every answer is a hash of its request,
so reruns, kills and shard sizes can be compared byte for byte without a model.

The labeller's prompts get labels in the shape the curation parser reads (the seven
criteria, ``Topic: <one of the list>``); any other prompt gets a LongCoT answer. A
``delay_s`` per ``generate`` call lets a test kill a stage mid-shard.
"""

from __future__ import annotations

import hashlib
import json
import re
import time

from bolt.config import SamplingConfig
from bolt.curation.labels import CRITERIA
from bolt.engines.base import ChatRequest, Completion, EngineStats
from bolt.evals.judges import JudgeReply, JudgeUsage, ReplyFormat

TOPIC_LINE = re.compile(r"^- (\w+)$", re.MULTILINE)
JUDGE_REPLIES = {
    ReplyFormat.rating: "Rating: [[{d}]]",
    ReplyFormat.wb_score: '{{"score": "{d}"}}',
    ReplyFormat.wb_choice: '{{"choice": "A+"}}',
    ReplyFormat.verdict: "My final verdict is [[A>B]]",
}


def digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def answer(messages: list, index: int) -> str:
    text = str(messages[-1]["content"])
    h = digest(messages, index)
    if "specificity" in text and "domain_knowledge" in text:
        # 5 of 7 criteria met for most queries, some below any threshold, a few garbled
        if h[0] == "f":
            return "I would rather not say."
        bits = [int(c, 16) % 4 != 0 for c in h[1 : 1 + len(CRITERIA)]]
        return "\n".join(f"{c}: {int(b)}" for c, b in zip(CRITERIA, bits, strict=True))
    if text.startswith("Classify the user's query"):
        topics = TOPIC_LINE.findall(text)
        return f"Topic: {topics[int(h[:4], 16) % len(topics)]}"
    return (
        f"<thoughts>Plan {h[:8]}: weigh two branches, check.</thoughts>"
        f"<response>By route {h[8:16]} the answer is {int(h[16:20], 16)}.</response>"
    )


class HashEngine:
    """An Engine (``bolt.engines.base``) whose completions are hashes of the request."""

    name, model, model_path = "hash", "hash", "hash"

    def __init__(self, delay_s: float = 0.0):
        self.delay_s, self.requests, self.calls = delay_s, 0, 0
        self.stats = EngineStats()

    def generate(
        self, requests: list[ChatRequest], sampling: SamplingConfig, **_: object
    ) -> list[list[Completion]]:
        self.calls += 1
        self.requests += len(requests)
        time.sleep(self.delay_s)
        return [
            [
                Completion(r.id, i, (t := answer(r.messages, i)), "stop", 10, len(t) // 4, None)
                for i in range(sampling.n)
            ]
            for r in requests
        ]

    def count_prompt_tokens(self, messages: list) -> int:
        return sum(len(str(m["content"])) for m in messages) // 4

    def close(self) -> None:
        pass


class HashJudge:
    """A judge replying in each request's format, its number a hash of the request."""

    name = "hash-judge"

    def __init__(self, delay_s: float = 0.0):
        self.delay_s, self.usage, self.requests = delay_s, JudgeUsage(), 0

    def judge(self, requests: list) -> list[JudgeReply]:
        time.sleep(self.delay_s)
        replies = []
        for r in requests:
            self.requests += 1
            d = int(digest(r.id, r.messages)[:2], 16) % 9 + 1
            template = JUDGE_REPLIES[r.reply_format]
            reply = JudgeReply(r.id, template.format(d=d), prompt_tokens=100, output_tokens=10)
            self.usage.add(reply)
            replies.append(reply)
        return replies
