"""`python -m runtime.serve` as clients meet it: the official `openai` client for completions,
chat completions and streams (the same text `runtime.chat` gives), concurrent requests that
each equal their run alone, raw HTTP for every bad request and a client that goes away, and a
server that still answers afterwards and exits cleanly on SIGTERM."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import runtime
from runtime.openai_api import CHAT_TURN_END, chat_prompt

openai = pytest.importorskip("openai")

REPO = Path(__file__).resolve().parents[2]
KEY = "test-key"


class Served:
    def __init__(self, process: subprocess.Popen, port: int, log: list[str]) -> None:
        self.process, self.port, self.log = process, port, log
        self.reader = threading.Thread(target=lambda: log.extend(process.stderr), daemon=True)
        self.reader.start()
        self.url = f"http://127.0.0.1:{port}"

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=KEY, max_retries=0, timeout=60)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body,
                               headers={"Authorization": f"Bearer {KEY}", **(headers or {})})
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self.reader.join(10)
        self.process.stderr.close()
        return code, "".join(self.log)


def start_server(model: Path, *flags: str) -> Served:
    process = subprocess.Popen(
        [sys.executable, "-m", "runtime.serve", "--model", str(model), "--port", "0",
         "--api-key", KEY, *flags], cwd=REPO, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "200"})
    log: list[str] = []
    deadline = time.monotonic() + 60
    port = None
    while port is None and time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        log.append(line)
        found = re.search(r"http://127\.0\.0\.1:(\d+)/v1", line)
        port = int(found.group(1)) if found else None
    if port is None:
        process.kill()
        process.wait()
        process.stderr.close()
        raise AssertionError("the server did not start: " + "".join(log))
    return Served(process, port, log)


@pytest.fixture(scope="module")
def server(exported_tiny: dict[str, Path]) -> Iterator[Served]:
    served = start_server(exported_tiny["onnx"], "--max-batch", "8", "--max-queue", "64",
                          "--max-tokens", "2000")
    yield served
    code, log = served.stop()
    assert code == 0, log
    assert "Traceback" not in log, log


def chat_run(model: Path, prompt: str, *flags: str) -> str:
    """What `python -m runtime.chat --prompt` prints for the same settings (without its newline)."""
    result = subprocess.run([sys.executable, "-m", "runtime.chat", "--model", str(model),
                             "--prompt", prompt, *flags], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("\n")
    return result.stdout[:-1]


def test_completions_give_the_text_runtime_chat_gives(server: Served,
                                                      exported_tiny: dict[str, Path]) -> None:
    client = server.client()
    for temperature, extra in ((0.8, {"top_k": 10, "repetition_penalty": 1.2}), (0.0, {})):
        reply = client.completions.create(model="tiny", prompt="To be", max_tokens=60,
                                          temperature=temperature, seed=5, extra_body=extra)
        flags = ["--temperature", str(temperature), "--seed", "5", "--max-new-tokens", "60"]
        for name, value in extra.items():
            flags += [f"--{name.replace('_', '-')}", str(value)]
        assert reply.choices[0].text == chat_run(exported_tiny["onnx"], "To be", *flags)
        assert reply.choices[0].finish_reason == "length"
        assert reply.usage.completion_tokens == 60 and reply.usage.prompt_tokens == 5


def test_chat_completions_stream_the_template_s_continuation(server: Served,
                                                             exported_tiny: dict[str, Path]) -> None:
    # The tiny model knows no capitals: the speakers are named (the template's `name`).
    messages = [{"role": "system", "content": "a play."},
                {"role": "assistant", "name": "hamlet", "content": "or not"},
                {"role": "user", "name": "ophelia", "content": "to be"}]
    stream = server.client().chat.completions.create(model="tiny", messages=messages, stream=True,
                                                     max_tokens=80, temperature=1.0, seed=11)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    prompt = chat_prompt(messages)
    assert prompt == (f"a play.{CHAT_TURN_END}hamlet:\nor not{CHAT_TURN_END}ophelia:\nto be"
                      f"{CHAT_TURN_END}hamlet:\n")
    expected = chat_run(exported_tiny["onnx"], prompt, "--temperature", "1.0", "--seed", "11",
                        "--max-new-tokens", "80", "--stop", "\\n\\n")
    assert text == expected


def test_completion_options_n_echo_stop_and_usage_chunk(server: Served,
                                                        exported_tiny: dict[str, Path]) -> None:
    generator = runtime.load(exported_tiny["onnx"])
    client = server.client()
    reply = client.completions.create(model="tiny", prompt=["To", "be"], n=2, seed=3,
                                      max_tokens=30, temperature=0.9, echo=True, stop=["e t"])
    assert [c.index for c in reply.choices] == [0, 1, 2, 3]
    for choice in reply.choices:
        prompt = ["To", "be"][choice.index // 2]
        alone = "".join(generator.generate(prompt, max_new_tokens=30, temperature=0.9,
                                           seed=3 + choice.index % 2, stop="e t"))
        assert choice.text == prompt + alone
        assert choice.finish_reason == ("stop" if len(alone) < 30 else "length")
    chunks = list(client.completions.create(model="tiny", prompt="To", max_tokens=5, stream=True,
                                            stream_options={"include_usage": True}))
    assert chunks[-1].usage.completion_tokens == 5 and chunks[-1].choices == []


def test_eight_concurrent_greedy_requests_each_equal_their_run_alone(
        server: Served, exported_tiny: dict[str, Path]) -> None:
    generator = runtime.load(exported_tiny["onnx"])
    prompts = ["To be", "or not", "the", "a", "To", "be, or", "not to", "t"]
    client = server.client()

    def ask(prompt: str) -> str:
        return client.completions.create(model="tiny", prompt=prompt, max_tokens=120,
                                         temperature=0).choices[0].text

    with ThreadPoolExecutor(8) as pool:
        served = list(pool.map(ask, prompts))
    for prompt, text in zip(prompts, served, strict=True):
        assert text == "".join(generator.generate(prompt, max_new_tokens=120, temperature=0))


def _stream(port: int, body: dict) -> str:
    """A streamed completion read with raw HTTP: its text, checked to end with [DONE]."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("POST", "/v1/completions", body=json.dumps({**body, "stream": True}),
                       headers={"Authorization": f"Bearer {KEY}"})
    response = connection.getresponse()
    assert response.status == 200
    raw = response.read().decode("utf-8")
    connection.close()
    events = raw.split("\n\n")
    assert events[-2] == "data: [DONE]" and events[-1] == ""
    pieces = [json.loads(e[len("data: "):])["choices"][0] for e in events[:-2]]
    assert pieces[-1]["finish_reason"] == "length"
    return "".join(p["text"] for p in pieces)


def test_thirty_two_concurrent_streams_all_complete_and_correct(
        server: Served, exported_tiny: dict[str, Path]) -> None:
    generator = runtime.load(exported_tiny["onnx"])
    bodies = [{"prompt": "To be"[: 1 + i % 5], "max_tokens": 40 + i, "temperature": 1.0,
               "seed": i} for i in range(32)]
    with ThreadPoolExecutor(32) as pool:
        texts = list(pool.map(lambda b: _stream(server.port, b), bodies))
    for body, text in zip(bodies, texts, strict=True):
        assert text == "".join(generator.generate(body["prompt"], max_new_tokens=body["max_tokens"],
                                                  temperature=1.0, seed=body["seed"]))
    assert server.request("GET", "/health") == (200, {"status": "ok", "model": "tiny",
                                                      "running": 0, "waiting": 0})


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    received = b""
    while marker not in received:
        data = sock.recv(4096)
        assert data, received
        received += data
    return received


def _raw_request(port: int, headers: bytes, body: bytes = b"") -> socket.socket:
    """A socket that has sent a POST /v1/completions with `headers` (each line ending in CRLF)
    and `body`, as a client that may go away does."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                 + KEY.encode() + b"\r\n" + headers + b"\r\n" + body)
    return sock


def _long_stream(port: int) -> socket.socket:
    """A streamed completion of 2,000 tokens, open until its first event has arrived."""
    body = json.dumps({"prompt": "To", "max_tokens": 2000, "stream": True}).encode()
    sock = _raw_request(port, b"Content-Length: " + str(len(body)).encode() + b"\r\n", body)
    _read_until(sock, b"data: ")
    return sock


def _post(served: Served, path: str, body: object, **headers: str) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return served.request("POST", path, data, headers)


BAD_REQUESTS = [
    ("not json", b"{bad", 400, None),
    ("not an object", b"[1, 2]", 400, None),
    ("wrong type", {"prompt": 3}, 400, "prompt"),
    ("unknown field", {"prompt": "To", "max_tokenz": 3}, 400, "max_tokenz"),
    ("negative max_tokens", {"prompt": "To", "max_tokens": -1}, 400, "max_tokens"),
    ("max_tokens over the limit", {"prompt": "To", "max_tokens": 10**9}, 400, "max_tokens"),
    ("n over the limit", {"prompt": "To", "n": 1000}, 400, "n"),
    ("too many stop texts", {"prompt": "To", "stop": ["a", "b", "c", "d", "e"]}, 400, "stop"),
    ("a long stop text", {"prompt": "To", "stop": "x" * 1000}, 413, "stop"),
    ("temperature a string", {"prompt": "To", "temperature": "hot"}, 400, "temperature"),
    ("NaN top_p", b'{"prompt": "To", "top_p": NaN}', 400, "top_p"),
    ("unsupported penalty", {"prompt": "To", "presence_penalty": 1.5}, 400, "presence_penalty"),
    ("seed out of range", {"prompt": "To", "seed": 2**40}, 400, "seed"),
    ("a character the model does not know", {"prompt": "To ✓"}, 400, "prompt"),
    ("deep nesting", b"[" * 100000 + b"]" * 100000, 400, None),
]


@pytest.mark.parametrize(("name", "body", "status", "param"), BAD_REQUESTS,
                         ids=[case[0] for case in BAD_REQUESTS])
def test_a_bad_request_gets_its_status_and_one_json_error(server: Served, name: str, body: object,
                                                          status: int, param: str | None) -> None:
    code, reply = _post(server, "/v1/completions", body)
    assert code == status, reply
    assert set(reply) == {"error"}
    assert set(reply["error"]) == {"message", "type", "param", "code"}
    assert reply["error"]["param"] == param
    assert server.request("GET", "/health")[0] == 200


def test_protocol_errors_are_json_too(server: Served) -> None:
    assert server.request("GET", "/nowhere")[0] == 404
    assert server.request("GET", "/v1/completions")[0] == 405
    status, reply = server.request("GET", "/health", headers={"Authorization": "Bearer wrong"})
    assert status == 401 and reply["error"]["code"] == "invalid_api_key"
    big = b'{"prompt": "' + b"a" * (2 << 20) + b'"}'
    with _raw_request(server.port, b"Content-Length: " + str(len(big)).encode() + b"\r\n") as sock:
        assert b" 413 " in sock.recv(4096).split(b"\r\n")[0]  # refused before the body is sent
    with _raw_request(server.port, b"Transfer-Encoding: chunked\r\n") as sock:
        assert b" 411 " in sock.recv(4096).split(b"\r\n")[0]
    assert server.request("GET", "/health")[0] == 200


def test_a_client_that_leaves_mid_stream_frees_its_row(server: Served) -> None:
    with _long_stream(server.port):
        assert server.request("GET", "/health")[1]["running"] == 1
    deadline = time.monotonic() + 10
    while server.request("GET", "/health")[1]["running"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.request("GET", "/health")[1]["running"] == 0


def test_a_full_queue_is_429_and_sigterm_exits_cleanly(exported_tiny: dict[str, Path]) -> None:
    served = start_server(exported_tiny["onnx"], "--max-batch", "1", "--max-queue", "0",
                          "--drain-seconds", "0")
    try:
        with _long_stream(served.port):
            status, reply = _post(served, "/v1/completions", {"prompt": "To", "max_tokens": 5})
            assert status == 429 and reply["error"]["code"] == "queue_full"
            code, log = served.stop()  # with a stream still running
    finally:
        if served.process.poll() is None:
            served.stop()
    assert code == 0, log
    assert "Traceback" not in log and "stopped" in log


def test_a_gan_file_serves_sentences(exported_tiny_gan: dict[str, Path]) -> None:
    served = start_server(exported_tiny_gan["onnx"])
    try:
        sampler = runtime.load(exported_tiny_gan["onnx"])
        reply = served.client().completions.create(model="gan", prompt="", n=3, seed=2)
        assert [c.text for c in reply.choices] == sampler.sample(3, 2)  # temperature 1
        reply = served.client().completions.create(model="gan", prompt="", n=3, seed=2,
                                                   temperature=0.5)
        assert [c.text for c in reply.choices] == sampler.sample(3, 2, 0.5)
        status, error = _post(served, "/v1/completions", {"prompt": "the", "n": 2})
        assert status == 400 and error["error"]["param"] == "prompt"
    finally:
        code, log = served.stop()
    assert code == 0 and "Traceback" not in log, log
