"""The OpenAI HTTP API as `python -m runtime.serve` speaks it: one schema for every request
parameter, the chat template, and the shapes of replies, stream chunks and errors.

Nothing here touches a socket or a model: runtime/http_api.py parses the HTTP request and hands the
decoded JSON to `parse_completion` / `parse_chat`, which either return a `CompletionRequest` or
raise `ApiError` (status, message, param), the error every route answers in OpenAI's shape
`{"error": {"message", "type", "param", "code"}}`.

Sampling parameters mean what they mean in `runtime.chat` (runtime/sampler.py), with its
defaults when a request leaves them out: temperature 0.8, no top-k, top-p 1, repetition
penalty 1, a fresh random seed. `top_k` and `repetition_penalty` are extra fields, as
llama.cpp's server and vLLM accept them. Penalties and options the runtime does not have
(`frequency_penalty`, `presence_penalty`, `logit_bias`, `best_of`, `suffix`, `logprobs`) are
accepted only at their neutral values; any other unknown field is a 400, so a misspelt
parameter is never silently ignored.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

from runtime.sampler import SEED_LIMIT, SamplingSettings

DEFAULT_TEMPERATURE = 0.8  # runtime.chat's
DEFAULT_MAX_TOKENS = 256

# The chat template: each message becomes a speech in a play's layout, its speaker's name on
# a line of its own (the message's `name`, else its role in capitals), then the text and a blank
# line; a system message is the text alone. The reply continues after "ASSISTANT:\n" (or the
# request's assistant `name`) and ends at the next blank line, where the next speech would begin.
CHAT_TURN_END = "\n\n"


@dataclass(frozen=True)
class Limits:
    """What one request may ask for (the server's flags set them)."""

    max_body_bytes: int = 1 << 20
    max_prompt_tokens: int = 16384
    max_tokens: int = 4096
    max_n: int = 16
    max_prompts: int = 16
    max_stops: int = 4
    max_stop_chars: int = 64
    max_messages: int = 256


class ApiError(Exception):
    """A request the server refuses: HTTP `status`, OpenAI's error `type`, the `param` at fault."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 code: str | None = None, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.kind, self.param, self.code)


def error_body(message: str, kind: str, param: str | None = None, code: str | None = None
               ) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@dataclass(frozen=True)
class CompletionRequest:
    """A checked request: prompts (one for chat), its sampling settings and options."""

    prompts: list[str]
    settings: SamplingSettings
    max_tokens: int
    seed: int | None
    n: int
    stops: list[str]
    stream: bool
    include_usage: bool
    echo: bool
    model: str | None
    chat: bool


_COMMON = {"model", "max_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "seed",
           "stop", "n", "stream", "stream_options", "user", "frequency_penalty",
           "presence_penalty", "logit_bias", "logprobs"}
COMPLETION_FIELDS = _COMMON | {"prompt", "echo", "best_of", "suffix"}
CHAT_FIELDS = _COMMON | {"messages", "max_completion_tokens", "top_logprobs"}
# field -> the values that leave it off (accepted, meaning nothing here)
_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "frequency_penalty": (None, 0, 0.0), "presence_penalty": (None, 0, 0.0),
    "logit_bias": (None, {}), "logprobs": (None, False, 0), "best_of": (None, 1),
    "suffix": (None, ""), "top_logprobs": (None, 0)}


def _type_error(param: str, wanted: str) -> ApiError:
    return ApiError(400, f"'{param}' must be {wanted}", param, "invalid_type")


def _number(body: dict[str, Any], param: str, default: float | None) -> float | None:
    value = body.get(param)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _type_error(param, "a finite number")
    return float(value)


def _integer(body: dict[str, Any], param: str, default: int | None, low: int, high: int
             ) -> int | None:
    value = body.get(param)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(param, "an integer")
    if not low <= value <= high:
        raise ApiError(400, f"'{param}' must be from {low} to {high}, got {value}", param,
                       "out_of_range")
    return value


def _flag(body: dict[str, Any], param: str) -> bool:
    value = body.get(param, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _type_error(param, "true or false")
    return value


def _text(value: Any, param: str, limit: int) -> str:
    if not isinstance(value, str):
        raise _type_error(param, "a string")
    if len(value) > limit:
        raise ApiError(413, f"'{param}' is longer than {limit:,} characters", param,
                       "too_long")
    return value


def _stops(body: dict[str, Any], limits: Limits) -> list[str]:
    value = body.get("stop")
    if value is None:
        return []
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list):
        raise _type_error("stop", "a string or a list of strings")
    if len(stops) > limits.max_stops:
        raise ApiError(400, f"'stop' may hold at most {limits.max_stops} texts", "stop",
                       "too_many")
    out = []
    for text in stops:
        text = _text(text, "stop", limits.max_stop_chars)
        if not text:
            raise ApiError(400, "'stop' texts must not be empty", "stop", "invalid_value")
        out.append(text)
    return out


def _check_fields(body: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", None, "invalid_body")
    for name in body:
        if name not in allowed:
            raise ApiError(400, f"unknown parameter '{name}'", name, "unknown_parameter")
    for name, neutral in _NEUTRAL.items():
        if body.get(name) not in neutral:
            raise ApiError(400, f"'{name}' is not supported by this server (leave it out)",
                           name, "unsupported_parameter")
    return body


def _settings(body: dict[str, Any], limits: Limits, *, chat: bool, prompts: list[str]
              ) -> CompletionRequest:
    temperature = _number(body, "temperature", DEFAULT_TEMPERATURE)
    top_p = _number(body, "top_p", None)
    repetition_penalty = _number(body, "repetition_penalty", 1.0)
    top_k = _integer(body, "top_k", None, 0, 1 << 31)
    if temperature is not None and not 0 <= temperature <= 100:
        raise ApiError(400, f"'temperature' must be from 0 to 100, got {temperature}",
                       "temperature", "out_of_range")
    if top_p is not None and not 0 < top_p <= 1:
        raise ApiError(400, f"'top_p' must be in (0, 1], got {top_p}", "top_p", "out_of_range")
    if repetition_penalty is not None and not 0 < repetition_penalty <= 100:
        raise ApiError(400, f"'repetition_penalty' must be in (0, 100], got "
                            f"{repetition_penalty}", "repetition_penalty", "out_of_range")
    max_tokens = _integer(body, "max_tokens", None, 1, limits.max_tokens)
    if chat:
        max_tokens = _integer(body, "max_completion_tokens", max_tokens, 1, limits.max_tokens)
    n = _integer(body, "n", 1, 1, limits.max_n)
    seed = _integer(body, "seed", None, 0, SEED_LIMIT - 1)
    options = body.get("stream_options")
    if options is not None and (not isinstance(options, dict)
                                or set(options) - {"include_usage"}
                                or not isinstance(options.get("include_usage", False), bool)):
        raise _type_error("stream_options", 'an object like {"include_usage": true}')
    model = body.get("model")
    if model is not None:
        model = _text(model, "model", 256)
    stream = _flag(body, "stream")
    assert temperature is not None
    assert repetition_penalty is not None
    assert n is not None
    if len(prompts) * n > limits.max_n:
        raise ApiError(400, f"{len(prompts)} prompts x n={n} asks for {len(prompts) * n} "
                            f"completions; at most {limits.max_n} per request", "n", "too_many")
    return CompletionRequest(
        prompts=prompts,
        settings=SamplingSettings(temperature, top_k, top_p, repetition_penalty),
        max_tokens=DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens,
        seed=seed, n=n, stops=_stops(body, limits), stream=stream,
        include_usage=bool(options and options.get("include_usage")),
        echo=_flag(body, "echo"), model=model, chat=chat)


def parse_completion(body: Any, limits: Limits) -> CompletionRequest:
    """POST /v1/completions: `prompt` a string or a list of strings (empty: the model starts a
    new line; a GAN's only prompt)."""
    body = _check_fields(body, COMPLETION_FIELDS)
    prompt = body.get("prompt", "")
    if isinstance(prompt, str):
        prompts = [_text(prompt, "prompt", limits.max_body_bytes)]
    elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        if len(prompt) > limits.max_prompts:
            raise ApiError(400, f"'prompt' may list at most {limits.max_prompts} prompts",
                           "prompt", "too_many")
        prompts = [_text(p, "prompt", limits.max_body_bytes) for p in prompt]
    else:
        raise _type_error("prompt", "a string or a non-empty list of strings")
    return _settings(body, limits, chat=False, prompts=prompts)


def parse_chat(body: Any, limits: Limits) -> CompletionRequest:
    """POST /v1/chat/completions: `messages` rendered by the chat template into one prompt;
    the reply also stops at the end of its turn (a blank line)."""
    body = _check_fields(body, CHAT_FIELDS)
    request = _settings(body, limits, chat=True, prompts=[chat_prompt(body.get("messages"), limits)])
    stops = [CHAT_TURN_END, *[s for s in request.stops if s != CHAT_TURN_END]]
    return CompletionRequest(**{**request.__dict__, "stops": stops})


def _content(message: dict[str, Any], limits: Limits) -> str:
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return _text(content, "messages", limits.max_body_bytes)
    if isinstance(content, list):  # content parts: only text ones mean anything here
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise ApiError(400, "message content parts must be of type 'text'", "messages",
                               "invalid_value")
            texts.append(_text(part.get("text"), "messages", limits.max_body_bytes))
        return "".join(texts)
    raise _type_error("messages", "a list of messages whose content is a string")


def speaker(message: dict[str, Any]) -> str:
    name = message.get("name")
    if name is not None:
        if not isinstance(name, str) or not name.strip() or len(name) > 64 or "\n" in name:
            raise ApiError(400, "a message's 'name' must be a short one-line string", "messages",
                           "invalid_value")
        return name
    return str(message["role"]).upper()


def chat_prompt(messages: Any, limits: Limits = Limits()) -> str:
    """The prompt the chat template makes of `messages` (see CHAT_TURN_END above)."""
    if not isinstance(messages, list) or not messages:
        raise _type_error("messages", "a non-empty list of messages")
    if len(messages) > limits.max_messages:
        raise ApiError(400, f"'messages' may hold at most {limits.max_messages} messages",
                       "messages", "too_many")
    parts = []
    reply_name = "ASSISTANT"
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in (
                "system", "developer", "user", "assistant"):
            raise ApiError(400, "each message needs a 'role' of system, developer, user or "
                                "assistant", "messages", "invalid_value")
        content = _content(message, limits)
        if message["role"] in ("system", "developer"):
            parts.append(content + CHAT_TURN_END)
            continue
        name = speaker(message)
        if message["role"] == "assistant":
            reply_name = name
        parts.append(f"{name}:\n{content}{CHAT_TURN_END}")
    return "".join(parts) + f"{reply_name}:\n"


# --- replies ---

def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def completion_reply(request: CompletionRequest, reply_id: str, model: str,
                     texts: list[str], finishes: list[str | None], prompt_tokens: int,
                     completion_tokens: int) -> dict[str, Any]:
    created = int(time.time())
    if request.chat:
        choices = [{"index": i, "message": {"role": "assistant", "content": text},
                    "logprobs": None, "finish_reason": finish}
                   for i, (text, finish) in enumerate(zip(texts, finishes, strict=True))]
        kind = "chat.completion"
    else:
        choices = [{"index": i, "text": text, "logprobs": None, "finish_reason": finish}
                   for i, (text, finish) in enumerate(zip(texts, finishes, strict=True))]
        kind = "text_completion"
    return {"id": reply_id, "object": kind, "created": created, "model": model,
            "choices": choices, "usage": usage(prompt_tokens, completion_tokens)}


def chunk(request: CompletionRequest, reply_id: str, model: str, index: int, piece: str | None,
          finish: str | None, first: bool = False) -> dict[str, Any]:
    """One streamed event of choice `index`: a text piece, or (`finish`) its end."""
    if request.chat:
        delta: dict[str, Any] = {}
        if first:
            delta["role"] = "assistant"
        if piece is not None:
            delta["content"] = piece
        choice: dict[str, Any] = {"index": index, "delta": delta, "logprobs": None,
                                  "finish_reason": finish}
        kind = "chat.completion.chunk"
    else:
        choice = {"index": index, "text": piece or "", "logprobs": None, "finish_reason": finish}
        kind = "text_completion"
    return {"id": reply_id, "object": kind, "created": int(time.time()), "model": model,
            "choices": [choice]}


def usage_chunk(request: CompletionRequest, reply_id: str, model: str, prompt_tokens: int,
                completion_tokens: int) -> dict[str, Any]:
    kind = "chat.completion.chunk" if request.chat else "text_completion"
    return {"id": reply_id, "object": kind, "created": int(time.time()), "model": model,
            "choices": [], "usage": usage(prompt_tokens, completion_tokens)}
