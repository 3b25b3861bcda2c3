"""`python -m export web`: the page's folder, and the page itself in a real headless Chromium.

The browser tests drive `window.textgen` (runtime/web/textgen.js) on pages served from
127.0.0.1 with every other address blocked, and hold the JavaScript runtime to the Python one:
greedy tokens, tokenizer ids and text. They need Chromium (Debian's `chromium` package) and
Python's playwright, which drives it and downloads nothing; without Chromium they skip, unless
TEXTGEN_REQUIRE_BROWSER is set (.ci/run sets it), when they fail. The screenshot of a page after
a generation goes to the folder TEXTGEN_TEST_ARTIFACTS names, else to the test's tmp_path.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import onnx
import pytest
import torch

import runtime
from export import cli, onnxruntime_web
from export.errors import ExportError
from export.onnx_file import save_with_checksum
from export.web import MODEL_FILE, SETTINGS_FILE
from export.web_graph import remove_new_cache_outputs
from runtime.sampler import SamplingSettings, sample_next
from runtime.tokenizer import CharTokenizer, start_ids
from textgen_core.data.tokenizers import TokenizerSpec, build_tokenizer
from textgen_core.models.gpt import GPT, GPTConfig
from textgen_core.models.stack.model import Stack
from textgen_core.models.stack.spec import StackConfig
from textgen_core.training.checkpoint import make_checkpoint, save_checkpoint

CHROMIUM = os.environ.get("TEXTGEN_CHROMIUM", "/usr/bin/chromium")
REQUIRE_ENV = "TEXTGEN_REQUIRE_BROWSER"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NEW_TOKENS = 100
GPTS = ("char", "word", "bpe")
# Text none of the tiny models saw: accents, CJK, an emoji (4 UTF-8 bytes), curly quotes,
# punctuation runs, a contraction, blank lines.
HELD_OUT = "Ünïcödé — naïve café, 東京 🙂!\n\n“Don't” ... WHY?!  tabs\there\n l'été 12½\n"
# A stepped stack (one id per call, the LSTM state carried) and a windowed one (the window
# re-read every step, right-padded to the graph's fixed length).
STEPPED = [{"type": "Embedding"}, {"type": "LSTM", "hidden_size": 64}, {"type": "TemporalDense"},
           {"type": "CrossEntropyLoss"}]
WINDOWED = [{"type": "Embedding"}, {"type": "PositionalEmbedding"}, {"type": "Block"},
            {"type": "LSTM"}, {"type": "TemporalDense"}, {"type": "CrossEntropyLoss"}]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _train(model: torch.nn.Module, ids: list[int], block_size: int, steps: int = 200) -> None:
    """A few steps on the tiny corpus, so that greedy text varies (random weights repeat one token)."""
    torch.manual_seed(0)
    data = torch.tensor(ids)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(steps):
        starts = torch.randint(0, len(data) - block_size - 1, (16,))
        x = torch.stack([data[s:s + block_size] for s in starts])
        y = torch.stack([data[s + 1:s + block_size + 1] for s in starts])
        loss = model(x, y)[1]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()


def _checkpoint(folder: Path, name: str, kind: str, model: torch.nn.Module, tokenizer: Any) -> Path:
    path = folder / f"{name}.pt"
    save_checkpoint(make_checkpoint(kind=kind, model_config=model.config.to_dict(),
                                    tokenizer=tokenizer.to_dict(), model_state=model.state_dict(),
                                    train_state={"step": 40, "val_loss": 2.5, "corpus": "hamlet.txt"}),
                    path)
    return path


def _gpt(folder: Path, name: str, text: str, tokenizer: Any, positions: str) -> Path:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=16, n_layer=2, n_head=2,
                          n_embd=32, positions=positions))
    _train(model, tokenizer.encode(text), 16)
    return _checkpoint(folder, name, "gpt", model, tokenizer)


def _stack(folder: Path, name: str, text: str, layers: list[dict[str, Any]], block_size: int) -> Path:
    tokenizer = CharTokenizer.from_text(text)
    torch.manual_seed(0)
    model = Stack(StackConfig(vocab_size=tokenizer.vocab_size, block_size=block_size, n_embd=32,
                              n_head=2, layers=layers))
    _train(model, tokenizer.encode(text), block_size)
    return _checkpoint(folder, name, "stack", model, tokenizer)


@pytest.fixture(scope="module")
def pages(tiny_text: str, tiny_gan_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
          ) -> dict[str, Path]:
    """One exported page per tokenizer kind, a stepped and a windowed stack, and a GAN."""
    try:  # fetched with npm once per test session (TEXTGEN_CACHE is the session's own)
        onnxruntime_web.page_files()
    except ExportError as exc:
        if os.environ.get(REQUIRE_ENV):
            raise
        pytest.skip(f"no onnxruntime-web for the pages ({exc}; {REQUIRE_ENV}=1 makes this a failure)")
    threads = torch.get_num_threads()  # one_torch_thread is per test; this fixture is per module
    torch.set_num_threads(1)
    try:
        return _pages(tiny_text, tiny_gan_checkpoint, tmp_path_factory.mktemp("web"))
    finally:
        torch.set_num_threads(threads)


def _pages(tiny_text: str, tiny_gan_checkpoint: Path, folder: Path) -> dict[str, Path]:
    text = tiny_text + "Café, naïve: “quoted” 🙂\n"
    checkpoints = {
        # rotary: GroupQueryAttention, the cache rolls past the 16-token window
        "char": _gpt(folder, "char", text, CharTokenizer.from_text(text), "rotary"),
        # learned positions: MultiHeadAttention, the window slides and is re-read
        "word": _gpt(folder, "word", text, build_tokenizer(TokenizerSpec("word", 60), [text]), "learned"),
        "bpe": _gpt(folder, "bpe", text, build_tokenizer(TokenizerSpec("bpe", 300), [text]), "rotary"),
        "stack": _stack(folder, "stack", text, STEPPED, 16),
        "windowed-stack": _stack(folder, "windowed-stack", text, WINDOWED, 6),
        "gan": folder / "gan.pt",
    }
    shutil.copyfile(tiny_gan_checkpoint, checkpoints["gan"])
    for name, checkpoint in checkpoints.items():
        assert cli.main(["web", str(checkpoint)]) == 0, name
    return {name: checkpoint.with_name(f"{checkpoint.stem}-web") for name, checkpoint in checkpoints.items()}


def _python_file(pages: dict[str, Path], name: str) -> Path:
    """The file the Python runtime samples for page `name`: the page's own, for a GPT without the
    outputs the page's graph adds (export/web_graph.py), which the runtime's interface check
    refuses; the rest is `python -m export onnx`'s graph, node for node (two values a layer renamed)."""
    page = pages[name]
    if name not in GPTS:
        return page / MODEL_FILE
    plain = page.with_name(f"{page.name}.onnx")
    if not plain.exists():
        proto = onnx.load(str(page / MODEL_FILE))
        remove_new_cache_outputs(proto)
        save_with_checksum(proto, plain)
    return plain


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() and not os.environ.get(REQUIRE_ENV):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; {REQUIRE_ENV}=1 makes "
                    "this a failure)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server(pages: dict[str, Path]) -> Iterator[str]:
    """Every page's folder under http://127.0.0.1:PORT/<name>-web/; stopped after the module."""
    root = next(iter(pages.values())).parent
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def open_page(browser: Any, server: str, pages: dict[str, Path]) -> Iterator[Any]:
    """`open_page(name)`: a fresh page of model `name`, loaded, with every request to anywhere
    but 127.0.0.1 refused (and recorded in `page.blocked`)."""
    contexts = []

    def opened(name: str) -> Any:
        context = browser.new_context()
        contexts.append(context)
        blocked: list[str] = []

        def route(request_route: Any) -> None:
            if urlsplit(request_route.request.url).hostname == "127.0.0.1":
                request_route.continue_()
            else:
                blocked.append(request_route.request.url)
                request_route.abort()

        context.route("**/*", route)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{server}/{pages[name].name}/index.html")
        page.evaluate("window.textgen.ready.then(() => null)")
        page.blocked, page.errors = blocked, errors
        return page

    yield opened
    for context in contexts:
        context.close()


GENERATE = """async ([options]) => {
    const ids = [];
    const text = await window.textgen.generate(options, (piece, id) => ids.push(id));
    return {ids, text, run: window.textgen.lastRun};
}"""


def _python_greedy(model_file: Path, prompt: str) -> tuple[list[int], str]:
    generator = runtime.load(model_file, threads=1)
    ids = [row[0] for row in generator.token_batches(start_ids(generator.tokenizer, prompt),
                                                     [SamplingSettings(0.0)], [None], NEW_TOKENS)]
    text = "".join(generator.generate(prompt, max_new_tokens=NEW_TOKENS, temperature=0))
    return ids, text


def test_folder_holds_the_page_the_model_and_pinned_onnxruntime_web(pages: dict[str, Path]) -> None:
    folder = pages["char"]
    names = {p.name for p in folder.iterdir()}
    assert {"index.html", "textgen.js", MODEL_FILE, SETTINGS_FILE, "ort.wasm.min.mjs",
            "ort-wasm-simd-threaded.wasm"} <= names
    settings = json.loads((folder / SETTINGS_FILE).read_text(encoding="utf-8"))
    assert settings["onnxruntime_web"] == onnxruntime_web.VERSION
    assert settings["facts"]["corpus"] == "hamlet.txt" and settings["facts"]["parameters"] > 0
    assert runtime.load(_python_file(pages, "char")).tokenizer.to_dict() == settings["tokenizer"]
    assert settings["gpt"]["new"]  # rotary: the page keeps its cache in buffers (export/web_graph.py)
    learned = json.loads((pages["word"] / SETTINGS_FILE).read_text(encoding="utf-8"))
    assert learned["gpt"]["new"] is None  # MultiHeadAttention: the page feeds back the present
    assert sum(p.stat().st_size for p in folder.iterdir()) < 20e6


@pytest.mark.parametrize("name", ["char", "word", "bpe", "stack", "windowed-stack"])
def test_greedy_equals_the_python_runtime_token_for_token(open_page: Any, pages: dict[str, Path],
                                                          name: str) -> None:
    prompt = "To be, or not to be, that is the question:\nWhether 'tis"  # longer than a char window
    expected_ids, expected_text = _python_greedy(_python_file(pages, name), prompt)
    page = open_page(name)
    got = page.evaluate(GENERATE, [{"prompt": prompt, "maxNewTokens": NEW_TOKENS, "temperature": 0}])
    assert got["ids"] == expected_ids
    assert got["text"] == expected_text
    if name != "windowed-stack":  # the one too small to learn lines in a few steps
        assert "\n" in got["text"]  # through line breaks
        assert len(set(got["ids"])) > 5
    assert not page.blocked and not page.errors


@pytest.mark.parametrize("name", ["char", "word", "bpe"])
def test_tokenizer_encodes_and_decodes_as_the_python_runtime(open_page: Any, pages: dict[str, Path],
                                                             name: str) -> None:
    tokenizer = runtime.load(_python_file(pages, name)).tokenizer
    text = HELD_OUT
    if name == "char":  # a char vocabulary refuses characters it lacks
        text = "".join(c for c in HELD_OUT if not tokenizer.unknown_characters(c))
    ids = tokenizer.encode(text)
    page = open_page(name)
    assert page.evaluate("([text]) => window.textgen.encode(text)", [text]) == ids
    assert page.evaluate("([ids]) => window.textgen.decode(ids)", [ids]) == tokenizer.decode(ids)
    if name == "bpe":  # the emoji's bytes are separate tokens: a cut inside it decodes to U+FFFD
        emoji = tokenizer.encode("🙂")
        assert len(emoji) > 1
        cut = [*tokenizer.encode("a"), *emoji[:-1]]
        assert page.evaluate("([ids]) => window.textgen.decode(ids)", [cut]) == tokenizer.decode(cut)


class _OneDraw:
    """A random stream that always draws `u`: both samplers then choose by the same number."""

    def __init__(self, u: float) -> None:
        self.u = u

    def random(self) -> float:
        return self.u

    def choice(self, candidates: Any) -> Any:  # +inf logits: the page picks floor(u * count)
        return candidates[int(self.u * len(candidates))]


def test_sampler_is_the_python_rule(open_page: Any) -> None:
    """runtime/web/sampler.js against runtime/sampler.py on the same logits and the same draw:
    temperature, top-k, top-p, repetition penalty, NaN and infinite logits."""
    rng = np.random.default_rng(0)
    cases = []
    for i in range(300):
        logits = (rng.standard_normal(40) * rng.choice([0.5, 3.0, 20.0])).astype(np.float32)
        if i % 7 == 0:
            logits[rng.integers(0, 40, 3)] = np.nan
        if i % 11 == 0:
            logits[rng.integers(0, 40, 2)] = rng.choice([np.inf, -np.inf])
        settings = SamplingSettings(float(rng.choice([0.0, 0.3, 1.0, 1.7])),
                                    [None, 0, 5, 60][i % 4], [None, 0.5, 0.9, 1.0][i // 4 % 4],
                                    float(rng.choice([1.0, 1.3])))
        previous = rng.integers(0, 40, 6).tolist()
        u = float(rng.random())
        expected = sample_next(logits, settings, _OneDraw(u), previous)
        cases.append({"logits": [None if np.isnan(v) else float(v) for v in logits], "u": u,
                      "previous": previous, "expected": expected,
                      "settings": {"temperature": settings.temperature, "topK": settings.top_k,
                                   "topP": settings.top_p,
                                   "repetitionPenalty": settings.repetition_penalty}})
    page = open_page("char")
    got = page.evaluate("""async ([cases]) => {
        const { sampleNext } = await import("./sampler.js");
        return cases.map((c) => sampleNext(Float32Array.from(c.logits, (v) => v ?? NaN),
                                           c.settings, () => c.u, c.previous));
    }""", [cases])
    assert got == [c["expected"] for c in cases]


def test_a_seed_repeats_itself_and_another_seed_differs(open_page: Any) -> None:
    page = open_page("char")
    options = {"prompt": "To", "maxNewTokens": 60, "temperature": 1.0, "topK": 20, "topP": 0.95,
               "repetitionPenalty": 1.1, "seed": 7}
    first = page.evaluate(GENERATE, [options])
    again = page.evaluate(GENERATE, [options])
    other = page.evaluate(GENERATE, [{**options, "seed": 8}])
    assert first["ids"] == again["ids"] and first["text"] == again["text"]
    assert other["ids"] != first["ids"]


def test_stop_ends_a_generation_and_the_page_shows_its_speed(open_page: Any, tmp_path: Path) -> None:
    page = open_page("char")
    page.fill("#prompt", "To be")
    page.fill("#maxNewTokens", "1000000")
    page.click("#generate")
    page.wait_for_function("document.getElementById('output').textContent.length > 60")
    page.click("#stop")
    page.wait_for_function("!document.getElementById('generate').disabled")
    run = page.evaluate("window.textgen.lastRun")
    assert run["stopped"] and 0 < run["newTokens"] < 1_000_000
    assert "tokens/s" in page.text_content("#status")
    artifacts = Path(os.environ.get("TEXTGEN_TEST_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(artifacts / "web-page.png"), full_page=True)
    assert (artifacts / "web-page.png").stat().st_size > 1000


def test_gan_page_draws_sentences(open_page: Any, pages: dict[str, Path]) -> None:
    page = open_page("gan")
    got = page.evaluate(GENERATE, [{"numSamples": 4, "seed": 3}])
    lines = got["text"].split("\n")
    assert len(lines) == 4 and all(lines)
    assert page.evaluate(GENERATE, [{"numSamples": 4, "seed": 3}])["text"] == got["text"]
    sampler = runtime.load(pages["gan"] / MODEL_FILE)
    rows = sampler.sample_ids(4, seed=0).tolist()  # the page decodes sentences as Python does
    assert page.evaluate("([rows]) => rows.map((ids) => window.textgen.decode(ids))", [rows]) == [
        sampler.tokenizer.decode(row) for row in rows]
    refused = page.evaluate("() => window.textgen.generate({prompt: 'The'}).catch((e) => e.message)")
    assert "takes no prompt" in refused
    page.click("#generate")
    page.wait_for_function("document.getElementById('output').textContent.split('\\n').length > 3")
    assert not page.blocked and not page.errors


def test_stateful_yoke_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    tokenizer = CharTokenizer(list("abcd"))
    model = GPT(GPTConfig(vocab_size=4, block_size=8, n_layer=2, n_head=2, n_embd=16,
                          yoke="1:8:stateful"))
    path = _checkpoint(tmp_path, "yoke", "gpt", model, tokenizer)
    assert cli.main(["web", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "stateful yoke" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "yoke-web").exists()


def test_without_npm_or_local_copy_the_error_says_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       tiny_gpt_checkpoint: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TEXTGEN_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm
    monkeypatch.delenv(onnxruntime_web.LOCAL_COPY_ENV, raising=False)
    assert cli.main(["web", str(tiny_gpt_checkpoint), "-o", str(tmp_path / "page")]) == 1
    err = capsys.readouterr().err.strip()
    assert "npm" in err and onnxruntime_web.LOCAL_COPY_ENV in err and len(err.splitlines()) == 1


def test_a_local_copy_with_another_hash_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   tiny_gpt_checkpoint: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fake = tmp_path / onnxruntime_web.TARBALL
    fake.write_bytes(b"not the package")
    monkeypatch.setenv(onnxruntime_web.LOCAL_COPY_ENV, str(fake))
    assert cli.main(["web", str(tiny_gpt_checkpoint), "-o", str(tmp_path / "page")]) == 1
    err = capsys.readouterr().err.strip()
    assert "integrity" in err and len(err.splitlines()) == 1
