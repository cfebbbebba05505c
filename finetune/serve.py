"""Serve an exported model over HTTP in the shape clients already speak: OpenAI-style completions.

POST /v1/chat/completions, POST /v1/completions, GET /health. Requests are validated (a clear 400 with an
OpenAI-style error body, never a 500 for bad input) and `max_tokens` is capped. One generation runs at a time
(a lock): a model on one device gains nothing from interleaving requests, and CPU threads would thrash.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from finetune.generate import Sampling, chat_prompt, complete, load, text_prompt
from finetune.model import max_positions

DEFAULT_MAX_TOKENS = 128
MAX_TOKENS_CAP = 1024


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant"]
    content: str


class _Request(BaseModel):
    """Fields OpenAI clients send; unknown ones are ignored (clients add their own), bad values are refused."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    n: int = 1
    stream: bool = False
    stop: str | list[str] | None = None
    seed: int | None = None

    @field_validator("n")
    @classmethod
    def _one_choice(cls, v: int) -> int:
        if v != 1:
            raise ValueError("only n=1 (one choice per request) is served")
        return v

    @field_validator("stream")
    @classmethod
    def _no_stream(cls, v: bool) -> bool:
        if v:
            raise ValueError("streaming is not served; send stream: false")
        return v

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, v: str | list[str] | None) -> list[str] | None:
        stops = [v] if isinstance(v, str) else v
        if stops is not None and (len(stops) > 4 or any(not s for s in stops)):
            raise ValueError("stop: at most 4 non-empty strings")
        return stops


class ChatRequest(_Request):
    messages: list[Message] = Field(min_length=1)

    @field_validator("messages")
    @classmethod
    def _ends_for_assistant(cls, v: list[Message]) -> list[Message]:
        if v[-1].role == "assistant":
            raise ValueError("the last message must be from the user or system: the model answers it")
        return v


class CompletionRequest(_Request):
    prompt: str = Field(min_length=1)
    max_tokens: int | None = Field(16, ge=1)


class BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def _error(message: str, param: str | None = None, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}


class Server:
    """The model, its tokenizer and the request handling, apart from HTTP so it can be called directly."""

    def __init__(self, model_dir: str | Path, device: str = "auto", max_tokens_cap: int = MAX_TOKENS_CAP) -> None:
        self.model_dir = Path(model_dir)
        self.name = self.model_dir.resolve().name
        self.model, self.tokenizer = load(model_dir, device)
        self.max_tokens_cap = max_tokens_cap
        self.context = max_positions(self.model)
        self.lock = threading.Lock()

    def _run(self, prompt: list[int], req: _Request, default_tokens: int) -> tuple[Any, dict[str, int]]:
        max_tokens = req.max_tokens or default_tokens
        if max_tokens > self.max_tokens_cap:
            raise BadRequest(f"max_tokens must be at most {self.max_tokens_cap}, got {max_tokens}", "max_tokens")
        if self.context is not None and len(prompt) + max_tokens > self.context:
            raise BadRequest(
                f"the prompt is {len(prompt)} tokens; with max_tokens {max_tokens} that exceeds the model's "
                f"context of {self.context} tokens",
                "max_tokens",
            )
        sampling = Sampling(
            max_new_tokens=max_tokens,
            do_sample=req.temperature > 0,
            temperature=req.temperature or 1.0,
            top_p=req.top_p,
            seed=req.seed,
            stop=tuple(req.stop or ()),
        )
        with self.lock:
            (done,) = complete(self.model, self.tokenizer, [prompt], sampling)
        usage = {
            "prompt_tokens": done.prompt_tokens,
            "completion_tokens": done.completion_tokens,
            "total_tokens": done.prompt_tokens + done.completion_tokens,
        }
        return done, usage

    def chat(self, req: ChatRequest) -> dict[str, Any]:
        try:
            prompt = chat_prompt(self.tokenizer, [m.model_dump() for m in req.messages])
        except ValueError as e:  # no chat template
            raise BadRequest(f"{e}: use /v1/completions", "messages") from e
        done, usage = self._run(prompt, req, DEFAULT_MAX_TOKENS)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": done.text},
                    "finish_reason": done.finish_reason,
                }
            ],
            "usage": usage,
        }

    def completion(self, req: CompletionRequest) -> dict[str, Any]:
        done, usage = self._run(text_prompt(self.tokenizer, req.prompt), req, 16)
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": self.name,
            "choices": [{"index": 0, "text": done.text, "finish_reason": done.finish_reason, "logprobs": None}],
            "usage": usage,
        }


def create_app(server: Server):
    """The FastAPI app around a `Server`."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    app = FastAPI(title=f"tuneprep: {server.name}")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse(status_code=400, content=_error("the request body is not valid JSON"))
        problems, params = [], []
        for e in errors:
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
            problems.append(f"{where}: {str(e.get('msg')).removeprefix('Value error, ')}")
            params.append(where)
        return JSONResponse(status_code=400, content=_error("; ".join(problems), params[0] if params else None))

    @app.exception_handler(BadRequest)
    async def _bad(_: Request, exc: BadRequest) -> JSONResponse:
        return JSONResponse(status_code=400, content=_error(str(exc), exc.param))

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "model": server.name, "context": server.context, "max_tokens": server.max_tokens_cap}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": server.name, "object": "model", "owned_by": "tuneprep"}]}

    @app.post("/v1/chat/completions")
    def chat(req: ChatRequest) -> dict[str, Any]:
        return server.chat(req)

    @app.post("/v1/completions")
    def completions(req: CompletionRequest) -> dict[str, Any]:
        return server.completion(req)

    return app


def serve(
    model_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    device: str = "auto",
    max_tokens_cap: int = MAX_TOKENS_CAP,
) -> None:
    import uvicorn

    app = create_app(Server(model_dir, device, max_tokens_cap))
    uvicorn.run(app, host=host, port=port, log_level="info")
