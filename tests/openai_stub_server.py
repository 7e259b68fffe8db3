"""A real HTTP server speaking OpenAI's chat-completions protocol, serving SmolLM2 through
transformers, with faults on demand (500s, garbage bodies): the API judge's peer in
tests, a faithful stand-in for ``vllm.entrypoints.openai.api_server``, which takes a
minute and a half to start on this CPU.

Outputs are capped at ``max_output_tokens`` whatever the request asks (as a server's
own limit would): judge prompts ask for 2,048 tokens, which a CPU cannot afford in tests.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Self

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response


@dataclass
class ServerState:
    calls: int = 0
    faults: deque[str] = field(default_factory=deque)  # "500" or "garbage", one per request
    always: str | None = None  # a fault for every request


def build_app(model_path: str, state: ServerState, max_output_tokens: int) -> FastAPI:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
    lock = threading.Lock()
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        state.calls += 1
        fault = state.always or (state.faults.popleft() if state.faults else None)
        if fault == "500":
            return JSONResponse({"error": {"message": "injected failure"}}, status_code=500)
        if fault == "garbage":
            return PlainTextResponse("<html>not a completion", media_type="application/json")
        body: dict[str, Any] = await request.json()
        ids = tokenizer.apply_chat_template(
            body["messages"], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )["input_ids"]
        limit = min(int(body.get("max_tokens") or max_output_tokens), max_output_tokens)
        with lock, torch.inference_mode():
            out = model.generate(ids, max_new_tokens=limit, do_sample=False)
        new = out[0, ids.shape[1] :]
        text = tokenizer.decode(new, skip_special_tokens=True)
        finish = "length" if len(new) >= limit else "stop"
        return JSONResponse(
            {
                "id": f"chatcmpl-{state.calls}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": finish,
                    }
                ],
                "usage": {
                    "prompt_tokens": ids.shape[1],
                    "completion_tokens": len(new),
                    "total_tokens": ids.shape[1] + len(new),
                },
            }
        )

    return app


class StubServer:
    """uvicorn in a background thread on 127.0.0.1:``port``."""

    def __init__(self, model_path: str, port: int, max_output_tokens: int = 32):
        self.state = ServerState()
        app = build_app(model_path, self.state, max_output_tokens)
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.base_url = f"http://127.0.0.1:{port}/v1"

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.time() + 60
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("stub OpenAI server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
