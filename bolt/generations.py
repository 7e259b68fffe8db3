"""An engine's completion as a stored ``Generation``: the one conversion Stage 1's
bootstrapping (BOLT §3.1) and Stage 3's policy sampling (§3.3) share."""

from __future__ import annotations

from collections.abc import Sequence

from bolt import longcot
from bolt.engines.base import Completion, Engine
from bolt.records import Generation


def to_generation(
    query_id: str,
    completion: Completion,
    engine: Engine,
    seed: int | None,
    *,
    prompt_tokens: int,
    example_ids: Sequence[str] = (),
    stopped_at_response_close: bool = False,
) -> Generation:
    """``completion`` parsed into thoughts and response, with the engine that wrote it.

    ``stopped_at_response_close`` says the request stopped on ``</response>``: an engine
    leaves the stop string out of its text, so a response cut there is complete, and
    the tag is put back so the stored text is the well-formed answer the model wrote.
    """
    c = completion
    parsed = longcot.parse_longcot(
        c.text, allow_unclosed_response=stopped_at_response_close and c.finish_reason == "stop"
    )
    text = c.text
    if stopped_at_response_close and parsed.ok and longcot.RESPONSE_CLOSE not in text:
        text += longcot.RESPONSE_CLOSE
    return Generation(
        query_id=query_id,
        sample_index=c.index,
        example_ids=list(example_ids),
        prompt_tokens=prompt_tokens,
        raw_text=text,
        thoughts=parsed.value.thoughts if parsed.value else None,
        response=parsed.value.response if parsed.value else None,
        parse_error=parsed.error.value if parsed.error else None,
        finish_reason=c.finish_reason,
        output_tokens=c.output_tokens,
        cached_prompt_tokens=c.cached_prompt_tokens,
        engine=engine.name,
        model=engine.model,
        seed=seed,
    )
