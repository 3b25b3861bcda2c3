"""`python -m runtime.serve`: an exported model served over the OpenAI HTTP API.

A thin layer, standard library only: parse the HTTP request, check it against the one schema
(runtime/openai_api.py), hand the sequences to the engine (runtime/scheduler.py, continuous
batching, no HTTP in it) and write what the engine yields, as one JSON reply or as server-sent
events (`data: {json}\\n\\n` ... `data: [DONE]\\n\\n`).

Routes: `GET /health`, `GET /v1/models`, `POST /v1/completions`, `POST /v1/chat/completions`.
Every error is one JSON object in OpenAI's shape with its status: 400 bad JSON, types or values,
401 without the API key, 404 an unknown route, 405 a wrong method, 411 no Content-Length, 413 a
body or prompt over its limit, 429 a full queue, 503 while shutting down. A client that goes
away cancels its sequences at the next step (a stream notices when a write fails, a waiting
request by polling its socket). Connections are threads with a socket timeout, at most
`--max-connections` at once. Ctrl-C or SIGTERM: new requests get 503, running ones have
`--drain-seconds` to finish, the rest are cancelled, and the server exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import os
import queue
import select
import signal
import socket
import sys
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rich.console import Console

from runtime.command_line import Parser
from runtime.errors import TextgenError
from runtime.file_kind import ONNX, explained, missing_model
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

API_KEY_VARIABLE = "TEXTGEN_API_KEY"
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
        if FINISH_ERROR in finishes:
            error = next((t.error for t in tickets if t.error), "the model failed")
            raise ApiError(500, f"sampling failed: {error}", None, "model_error", "server_error")
        if FINISH_CANCELLED in finishes:
            raise ApiError(503, "the server is shutting down", None, "shutting_down",
                           "server_error")

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
                error = ApiError(503, "the server is shutting down", None, "shutting_down",
                                 "server_error") if output.finish_reason == FINISH_CANCELLED \
                    else ApiError(500, "sampling failed", None, "model_error", "server_error")
                self._event(error.body())
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
        if not all(t.cancelled is False for t in tickets):
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


# --- the command line ---

def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m runtime.serve",
        description="Serve an exported textgen model over the OpenAI HTTP API (completions, "
                    "chat completions, streaming), with continuous batching.")
    parser.add_argument("--model", default="models/gpt.onnx", metavar="FILE.onnx",
                        help="the exported model: a GPT, layer stack or GAN ONNX file "
                             "(default: %(default)s)")
    parser.add_argument("--host", default="127.0.0.1", metavar="ADDRESS",
                        help="address to listen on (default: %(default)s, this machine only)")
    parser.add_argument("--port", type=int, default=8000, metavar="N",
                        help="port to listen on; 0 picks a free one (default: %(default)s)")
    parser.add_argument("--api-key", default=None, metavar="KEY",
                        help=f"require 'Authorization: Bearer KEY' on every request (default: "
                             f"${API_KEY_VARIABLE} if set, else no key)")
    parser.add_argument("--name", default=None, metavar="ID",
                        help="the model id /v1/models reports (default: the file's stem)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="onnxruntime threads (default: one per physical core)")
    parser.add_argument("--max-batch", type=int, default=16, metavar="N",
                        help="sequences decoded together in one running batch (default: "
                             "%(default)s)")
    parser.add_argument("--max-queue", type=int, default=64, metavar="N",
                        help="sequences that may wait for a place in the batch; more get 429 "
                             "(default: %(default)s)")
    parser.add_argument("--max-tokens", type=int, default=Limits.max_tokens, metavar="N",
                        help="the largest max_tokens a request may ask for (default: "
                             "%(default)s)")
    parser.add_argument("--max-n", type=int, default=Limits.max_n, metavar="N",
                        help="the most completions (prompts x n) one request may ask for "
                             "(default: %(default)s)")
    parser.add_argument("--max-prompt-tokens", type=int, default=Limits.max_prompt_tokens,
                        metavar="N", help="the longest prompt in tokens; the model reads its "
                                          "last context-length tokens (default: %(default)s)")
    parser.add_argument("--max-body-bytes", type=int, default=Limits.max_body_bytes,
                        metavar="N", help="the largest request body (default: %(default)s)")
    parser.add_argument("--max-connections", type=int, default=128, metavar="N",
                        help="open connections at once; more get 503 (default: %(default)s)")
    parser.add_argument("--drain-seconds", type=float, default=10.0, metavar="S",
                        help="on Ctrl-C or SIGTERM, how long running requests may finish "
                             "(default: %(default)s)")
    parser.add_argument("--quiet", action="store_true",
                        help="do not log one line per request (default: log them)")
    return parser


def model_info(sampler: Any) -> dict[str, Any]:
    """What /v1/models says of the loaded model beyond its id."""
    tokenizer = sampler.tokenizer.to_dict()
    kind = "gan" if isinstance(sampler, GANSampler) else ("stack" if not hasattr(sampler, "model")
                                                         else "gpt")
    context = getattr(sampler, "block_size", None) or getattr(sampler, "seq_len", None)
    return {"textgen": {"kind": kind, "context": context,
                        "tokenizer": tokenizer.get("type", "char"),
                        "vocab_size": sampler.tokenizer.vocab_size}}


def _check_positive(args: argparse.Namespace) -> str | None:
    for flag in ("max_batch", "max_tokens", "max_n", "max_prompt_tokens", "max_body_bytes",
                 "max_connections"):
        if getattr(args, flag) < 1:
            return f"--{flag.replace('_', '-')} must be a positive integer"
    if args.max_queue < 0 or args.drain_seconds < 0:
        return "--max-queue and --drain-seconds must not be negative"
    if not 0 <= args.port <= 65535:
        return f"--port must be from 0 to 65535, got {args.port}"
    if args.threads is not None and args.threads < 1:
        return f"--threads must be a positive integer, got {args.threads}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    err = Console(stderr=True, highlight=False)

    def fail(message: str) -> int:
        err.print(plain(f"error: {message}", "bold red"), soft_wrap=True)
        return 1

    problem = _check_positive(args)
    if problem is not None:
        return fail(problem)
    api_key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_VARIABLE)
    if api_key is not None and not api_key.strip():
        return fail(f"the API key (--api-key or ${API_KEY_VARIABLE}) is empty")
    import runtime

    missing = missing_model(args.model)
    if missing is not None:
        return fail(missing)
    try:
        with explained((args.model, (ONNX,))):
            sampler = runtime.load(args.model, threads=args.threads)
    except TextgenError as exc:
        return fail(str(exc))
    limits = Limits(max_body_bytes=args.max_body_bytes, max_prompt_tokens=args.max_prompt_tokens,
                    max_tokens=args.max_tokens, max_n=min(args.max_n, args.max_queue
                                                          + args.max_batch))
    engine = Engine(sampler, max_rows=args.max_batch, max_waiting=args.max_queue)
    model_id = args.name or Path(args.model).stem
    try:
        server = Server((args.host, args.port), engine, model_id, model_info(sampler), limits,
                        api_key, args.max_connections, None if args.quiet else err)
    except OSError as exc:
        engine.close()
        return fail(f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc})")
    host, port = server.server_address[:2]
    batching = "continuous batching" if engine.batched else "one model call per sequence"
    err.print(plain(f"serving {args.model} as {model_id!r} at http://{host}:{port}/v1 "
                    f"({batching}, up to {args.max_batch} at once"
                    f"{', API key required' if api_key else ''}); Ctrl-C stops"), soft_wrap=True)
    stop = threading.Event()
    interrupted = [0]

    def on_signal(signum: int, frame: Any) -> None:
        interrupted[0] += 1
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              daemon=True)
    thread.start()
    while not stop.wait(0.5):
        pass
    server.draining = True
    err.print(plain(f"stopping: {server.active_requests} running request(s) have up to "
                    f"{args.drain_seconds:g} s to finish (Ctrl-C again: stop now)"), soft_wrap=True)
    deadline = time.monotonic() + args.drain_seconds
    while server.active_requests and time.monotonic() < deadline and interrupted[0] < 2:
        time.sleep(0.1)
    engine.close()
    server.shutdown()
    server.server_close()
    thread.join(5)
    err.print(plain("stopped"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
