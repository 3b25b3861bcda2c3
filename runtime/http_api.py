"""The HTTP layer of `python -m runtime.serve`: the OpenAI API over the engine.

Thin, standard library only: parse the HTTP request, check it against the one schema
(runtime/openai_api.py), hand the sequences to the engine (runtime/scheduler.py, continuous
batching, no HTTP in it) and write what the engine yields, as one JSON reply or as server-sent
events (`data: {json}\\n\\n` ... `data: [DONE]\\n\\n`).

Routes: `GET /health`, `GET /v1/models`, `POST /v1/completions`, `POST /v1/chat/completions`.
Every error is one JSON object in OpenAI's shape with its status: 400 bad JSON, types or values,
401 without the API key, 404 an unknown route, 405 a wrong method, 411 no Content-Length, 413 a
body or prompt over its limit, 429 a full queue, 503 while shutting down. A client that goes
away cancels its sequences at the next step (a stream notices when a write fails, a waiting
request by polling its socket). Connections are threads with a socket timeout, at most
`max_connections` at once; `draining` (set by the command on Ctrl-C or SIGTERM) answers new
requests 503.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import queue
import select
import socket
import sys
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rich.console import Console

from runtime.errors import TextgenError
from runtime.gan import GANSampler, check_temperature
from runtime.openai_api import (
    ApiError,
    CompletionRequest,
    Limits,
    chunk,
    completion_reply,
    error_body,
    new_id,
    parse_chat,
    parse_completion,
    usage_chunk,
)
from runtime.scheduler import (
    FINISH_CANCELLED,
    FINISH_ERROR,
    Engine,
    Job,
    Output,
    QueueFull,
    Ticket,
    collect,
    job_seeds,
)
from runtime.terminal_text import plain, sanitize
from runtime.tokenizer import start_ids

SOCKET_TIMEOUT_S = 30.0  # reading a request, or a client not reading its stream
POLL_S = 0.05  # how often a waiting request looks at its client's socket
# A GAN draws whole sentences from noise, each word inside its graph at `temperature` (1 unless
# the request says): these other parameters mean nothing for it.
GAN_REFUSES = ("top_p", "top_k", "repetition_penalty", "stop", "echo")


class Server(ThreadingHTTPServer):
    """The HTTP server: the engine, the limits, the key, and the connection count."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], engine: Engine, model_id: str,
                 info: dict[str, Any], limits: Limits, api_key: str | None,
                 max_connections: int, log: Console | None) -> None:
        self.engine, self.model_id, self.info, self.limits = engine, model_id, info, limits
        self.api_key = api_key
        self.max_connections = max_connections
        self.log = log
        self.draining = False
        self.active_requests = 0
        self._count_lock = threading.Lock()
        self._connections = 0
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._count_lock:
            full = self._connections >= self.max_connections
            if not full:
                self._connections += 1
        if full:  # answered here, without a thread
            body = json.dumps(error_body("too many connections; try again later",
                                         "server_error", None, "too_many_connections")).encode()
            with contextlib.suppress(OSError):
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
                                b"application/json\r\nConnection: close\r\nContent-Length: "
                                + str(len(body)).encode() + b"\r\n\r\n" + body)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._count_lock:
                self._connections -= 1

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that failed (a reset, a timeout): one line, never a traceback."""
        exc = sys.exc_info()[1]
        if self.log is not None and not isinstance(exc, (OSError, TimeoutError)):
            self.log.print(plain(f"textgen serve: a request failed: {type(exc).__name__}: {exc}"),
                           soft_wrap=True)

    def request_started(self) -> None:
        with self._count_lock:
            self.active_requests += 1

    def request_ended(self) -> None:
        with self._count_lock:
            self.active_requests -= 1


class ClientGone(Exception):
    """The client closed its connection (or stopped reading) while its reply was written."""


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"
    server_version = "textgen"
    sys_version = ""
    timeout = SOCKET_TIMEOUT_S

    # --- plumbing ---

    def setup(self) -> None:
        super().setup()
        self._held: list[bytes] = []  # stream events not written yet (see `_event`)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log is not None:
            self.server.log.print(plain(f"{self.address_string()} {format % args}"), soft_wrap=True)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None
                   ) -> None:
        """The base class's errors (a malformed request line, an unknown method) as JSON."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self._json(code, error_body(message or self.responses.get(code, ("error",))[0],
                                        "invalid_request_error" if code < 500 else "server_error"))

    def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
              ) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _error(self, error: ApiError, headers: dict[str, str] | None = None) -> None:
        self._json(error.status, error.body(), headers)

    def _client_alive(self) -> bool:
        """False once the client has closed its side (a readable socket with nothing to read)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return not readable or self.connection.recv(1, socket.MSG_PEEK) != b""
        except OSError:
            return False

    def _authorised(self) -> bool:
        key = self.server.api_key
        if key is None:
            return True
        given = self.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode("utf-8", "replace"), f"Bearer {key}".encode())

    def _route(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        routes = {"/health": ("GET", self._health), "/v1/models": ("GET", self._models),
                  "/v1/completions": ("POST", self._completions),
                  "/v1/chat/completions": ("POST", self._chat)}
        try:
            if not self._authorised():
                self.close_connection = True
                raise ApiError(401, "a valid API key is required: send 'Authorization: Bearer "
                                    "KEY'", None, "invalid_api_key")
            if path not in routes:
                raise ApiError(404, f"no route {sanitize(path[:100])!r}; the routes are "
                                    + ", ".join(routes), None, "not_found")
            wanted, handler = routes[path]
            if method != wanted:
                raise ApiError(405, f"{path} takes {wanted}, not {method}", None,
                               "method_not_allowed")
            handler()
        except ApiError as error:
            self._error(error, {"WWW-Authenticate": "Bearer"} if error.status == 401 else None)
        except (ClientGone, OSError):
            self.close_connection = True

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    # --- routes ---

    def _health(self) -> None:
        self._json(200, {"status": "draining" if self.server.draining else "ok",
                         "model": self.server.model_id, **self.server.engine.load()})

    def _models(self) -> None:
        self._json(200, {"object": "list", "data": [
            {"id": self.server.model_id, "object": "model", "created": 0,
             "owned_by": "textgen", **self.server.info}]})

    def _body(self) -> Any:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise ApiError(411, "send the body with a Content-Length (no chunked requests)")
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            self.close_connection = True
            raise ApiError(411, "a Content-Length header is required")
        if not length_text.isdigit() or len(length_text) > 12:
            self.close_connection = True
            raise ApiError(400, "the Content-Length header is not a number")
        length = int(length_text)
        limit = self.server.limits.max_body_bytes
        if length > limit:
            self.close_connection = True  # the body is not read
            raise ApiError(413, f"the request body is {length:,} bytes; at most {limit:,}", None,
                           "body_too_large")
        data = self.rfile.read(length)
        if len(data) < length:
            self.close_connection = True
            raise ApiError(400, "the request body ended before its Content-Length")
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise ApiError(400, "the request body is not valid JSON (utf-8)", None,
                           "invalid_json") from None

    def _completions(self) -> None:
        body = self._body()
        request = parse_completion(body, self.server.limits)
        if isinstance(self.server.engine.sampler, GANSampler):
            given = [name for name in GAN_REFUSES if isinstance(body, dict) and name in body]
            if given or request.prompts != [""]:
                raise ApiError(400, f"a GAN draws whole sentences from noise: send an empty "
                                    f"prompt and n, seed, temperature (not "
                                    f"{', '.join(given) or 'a prompt'})",
                               given[0] if given else "prompt", "unsupported_parameter")
            temperature = body.get("temperature", 1.0)  # runtime.chat's default for a GAN
            try:
                check_temperature(self.server.engine.sampler, temperature)
            except TextgenError as exc:
                raise ApiError(400, str(exc), "temperature", "unsupported_value") from None
            request = replace(request, settings=replace(request.settings,
                                                        temperature=temperature))
        self._serve(request)

    def _chat(self) -> None:
        if isinstance(self.server.engine.sampler, GANSampler):
            raise ApiError(400, "a GAN has no prompt to chat with: use /v1/completions with an "
                                "empty prompt", "messages", "unsupported_model")
        self._serve(parse_chat(self._body(), self.server.limits))

    def _serve(self, request: CompletionRequest) -> None:
        server = self.server
        if server.draining:
            raise ApiError(503, "the server is shutting down", None, "shutting_down",
                           "server_error")
        sampler = server.engine.sampler
        prompt_ids = []
        for prompt in request.prompts:
            try:
                ids = (start_ids(sampler.tokenizer, prompt)
                       if not isinstance(sampler, GANSampler) else [])
            except TextgenError as exc:
                raise ApiError(400, str(exc), "messages" if request.chat else "prompt",
                               "invalid_prompt") from None
            if len(ids) > server.limits.max_prompt_tokens:
                raise ApiError(413, f"the prompt is {len(ids):,} tokens; at most "
                                    f"{server.limits.max_prompt_tokens:,}", "prompt",
                               "prompt_too_long")
            prompt_ids.append(ids)
        sink: queue.SimpleQueue[Output] = queue.SimpleQueue()
        tickets: list[Ticket] = []
        try:
            for p, ids in enumerate(prompt_ids):
                job = Job(ids, request.settings, job_seeds(request.seed, request.n),
                          request.max_tokens, request.stops)
                tickets.append(server.engine.submit(job, sink, p * request.n))
        except QueueFull as exc:
            for ticket in tickets:
                ticket.cancel()
            raise ApiError(429, f"the server is busy ({exc}); try again shortly", None,
                           "queue_full", "rate_limit_error") from None
        server.request_started()
        try:
            outputs = collect(sink, tickets, POLL_S, self._client_alive)
            prompt_tokens = (sum(len(ids) for ids in prompt_ids)
                             if not isinstance(sampler, GANSampler) else 0)
            if request.stream:
                self._stream(request, tickets, outputs, prompt_tokens, sink)
            else:
                self._reply(request, tickets, outputs, prompt_tokens)
        finally:
            for ticket in tickets:
                ticket.cancel()  # a no-op for finished ones; frees the rows of a client that left
            server.request_ended()

    def _reply(self, request: CompletionRequest, tickets: list[Ticket], outputs: Any,
               prompt_tokens: int) -> None:
        count = len(request.prompts) * request.n
        texts = [request.prompts[i // request.n] if request.echo else "" for i in range(count)]
        finishes: list[str | None] = [None] * count
        for output in outputs:
            texts[output.index] += output.piece
            if output.finish_reason is not None:
                finishes[output.index] = output.finish_reason
        if any(f is None for f in finishes):
            return  # the client went away: nobody to answer
        self._check_finished(tickets, finishes)
        completion_tokens = sum(sum(t.completion_tokens) for t in tickets)
        self._json(200, completion_reply(request, new_id("chatcmpl" if request.chat else "cmpl"),
                                         self.server.model_id, texts, finishes, prompt_tokens,
                                         completion_tokens))

    @staticmethod
    def _check_finished(tickets: list[Ticket], finishes: list[str | None]) -> None:
        for reason in (FINISH_ERROR, FINISH_CANCELLED):
            if reason in finishes:
                raise _unfinished(reason, tickets)

    def _stream(self, request: CompletionRequest, tickets: list[Ticket], outputs: Any,
                prompt_tokens: int, sink: queue.SimpleQueue[Output]) -> None:
        reply_id = new_id("chatcmpl" if request.chat else "cmpl")
        model = self.server.model_id
        self.close_connection = True  # the stream ends when the connection does
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        count = len(request.prompts) * request.n
        started = [False] * count
        for index in range(count):
            if request.chat or request.echo:  # the role (chat) or the prompt (echo) first
                piece = request.prompts[index // request.n] if request.echo else ""
                self._event(chunk(request, reply_id, model, index, piece, None, first=True))
                started[index] = True
        for output in outputs:
            if output.finish_reason in (FINISH_ERROR, FINISH_CANCELLED):
                self._event(_unfinished(output.finish_reason, tickets).body())
                return
            # Events that are ready together go out in one write (fewer system calls per token
            # when many streams share the machine).
            if output.finish_reason is not None:
                self._event(chunk(request, reply_id, model, output.index, None,
                                  output.finish_reason), flush=sink.empty())
            else:
                self._event(chunk(request, reply_id, model, output.index, output.piece, None,
                                  first=not started[output.index]), flush=sink.empty())
                started[output.index] = True
        if any(t.cancelled for t in tickets):
            return  # the client went away
        if request.include_usage:
            self._event(usage_chunk(request, reply_id, model, prompt_tokens,
                                    sum(sum(t.completion_tokens) for t in tickets)))
        self._write(b"data: [DONE]\n\n")

    def _event(self, body: dict[str, Any], flush: bool = True) -> None:
        event = b"data: " + json.dumps(body, ensure_ascii=False).encode("utf-8") + b"\n\n"
        if flush:
            self._write(event)
        else:
            self._held.append(event)

    def _write(self, data: bytes) -> None:
        held, self._held = self._held, []
        try:
            self.wfile.write(b"".join([*held, data]))
            self.wfile.flush()
        except (OSError, TimeoutError):
            raise ClientGone from None


def _unfinished(reason: str, tickets: list[Ticket]) -> ApiError:
    """The error a request answers when one of its sequences ended without finishing: the model
    failed (500), or the engine was closed by the stop (503)."""
    if reason == FINISH_ERROR:
        error = next((t.error for t in tickets if t.error), "the model failed")
        return ApiError(500, f"sampling failed: {error}", None, "model_error", "server_error")
    return ApiError(503, "the server is shutting down", None, "shutting_down", "server_error")
