"""`python -m runtime.serve`: an exported model served over the OpenAI HTTP API.

The command: its flags, loading the model, the engine (runtime/scheduler.py) and the HTTP server
(runtime/http_api.py), and the stop. Ctrl-C or SIGTERM: new requests get 503, running ones have
`--drain-seconds` to finish, the rest are cancelled, and the server exits 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from runtime.command_line import Parser
from runtime.errors import TextgenError
from runtime.file_kind import ONNX, explained, missing_model
from runtime.gan import GANSampler
from runtime.http_api import Server
from runtime.onnx_file import spinning
from runtime.openai_api import Limits
from runtime.scheduler import Engine
from runtime.terminal_text import plain

API_KEY_VARIABLE = "TEXTGEN_API_KEY"


def server_spins() -> bool:
    """The server's onnxruntime workers sleep between kernels unless TEXTGEN_SPIN=1: spinning
    workers hold the cores that the engine's per-token Python and the HTTP threads need (8
    streams: 1,253 tok/s spinning against 1,488-1,732 sleeping, 2 cores, README "Serve")."""
    return spinning(default=False)


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
            sampler = runtime.load(args.model, threads=args.threads, spin=server_spins())
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
