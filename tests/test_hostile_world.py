"""The second hostile-inputs pass (issue 27): each class of attack against the README's
"Guarantees" and "Bad input", built here in fixtures, each case under a timeout.

1. writes never follow a link or land on a device node; new files follow the umask
2. guards and encoders take time linear in their input (timed on 1 MB inputs)
6. every file a user or a file names is read only if it is a regular file, size bounded first
"""

from __future__ import annotations

import os
import signal
import stat
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime.atomic_file import append_file, write_atomic
from runtime.regular_file import FileTooLargeError, NotRegularFileError, read_regular

CASE_TIMEOUT_S = 60


@pytest.fixture(autouse=True)
def _case_timeout() -> Iterator[None]:
    """A case that hangs (a FIFO opened for reading, a quadratic guard) fails instead."""

    def stop(signum: int, frame: object) -> None:  # pytest's Failed: no `except OSError` swallows it
        pytest.fail(f"the case ran past {CASE_TIMEOUT_S} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(CASE_TIMEOUT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_text("precious")
    return path


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


# 1. Writes that follow links or land on devices ----------------------------------------------


def test_the_writer_refuses_a_link_and_leaves_its_victim(tmp_path: Path, victim: Path) -> None:
    link = tmp_path / "out.bin"
    link.symlink_to(victim)
    with pytest.raises(OSError, match="symbolic link"):
        write_atomic(link, b"new")
    with pytest.raises(OSError, match="symbolic link"), append_file(link) as f:
        f.write(b"appended")
    assert victim.read_text() == "precious" and link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin", "victim.txt"]


def test_the_writer_refuses_a_fifo_without_blocking(fifo: Path) -> None:
    with pytest.raises(OSError, match="FIFO"):
        write_atomic(fifo, b"new")
    with pytest.raises(OSError, match="FIFO"), append_file(fifo) as f:
        f.write(b"x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_new_files_follow_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "new.bin"
    write_atomic(path, b"x")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask()
    log = tmp_path / "log.jsonl"
    with append_file(log) as f:
        f.write(b"{}\n")
    assert stat.S_IMODE(log.stat().st_mode) == 0o666 & ~_umask()


def test_the_metrics_log_is_not_emptied_through_a_link(tmp_path: Path, victim: Path) -> None:
    from textgen_core.errors import CheckpointError
    from textgen_core.training.metrics_log import MetricsLog

    link = tmp_path / "run.metrics.jsonl"
    link.symlink_to(victim)
    with pytest.raises(CheckpointError, match="symbolic link"):
        MetricsLog(link, fresh=True)
    assert victim.read_text() == "precious"


@pytest.mark.parametrize("planted", ["metrics link", "checkpoint fifo"])
def test_train_refuses_links_and_nodes_at_out_before_it_starts(
        planted: str, tmp_path: Path, victim: Path, tiny_corpus_file: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from textgen_core.train import main as train_main

    out = tmp_path / "run.pt"
    if planted == "metrics link":
        (tmp_path / "run.metrics.jsonl").symlink_to(victim)
    else:
        os.mkfifo(out)
    code = train_main(["--corpus", str(tiny_corpus_file), "--out", str(out), "--overwrite", "--preset", "nano",
                       "--device", "cpu", "--sample-tokens", "0", "--max-iters", "2"])
    assert code == 1
    err = one_line_error(capsys)
    assert ("symbolic link" in err) if planted == "metrics link" else ("FIFO" in err)
    assert victim.read_text() == "precious"
    assert planted == "metrics link" or stat.S_ISFIFO(os.lstat(out).st_mode)


def test_sample_output_through_a_link_is_refused_before_sampling(
        tmp_path: Path, victim: Path, exported_tiny: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    from runtime.chat import main as chat_main

    link = tmp_path / "out.jsonl"
    link.symlink_to(victim)
    code = chat_main(["--model", str(exported_tiny["onnx"]), "--prompt", "To", "--num-samples", "2",
                      "--max-new-tokens", "4", "--output", str(link)])
    assert code == 1
    assert "symbolic link" in one_line_error(capsys)
    assert victim.read_text() == "precious"


def test_a_checkpoint_follows_the_umask(tmp_path: Path) -> None:
    from textgen_core.training.checkpoint import save_checkpoint

    path = tmp_path / "ck.pt"
    save_checkpoint({"format": "x"}, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask()


def test_the_loss_plot_takes_a_name_with_math_text(tmp_path: Path) -> None:
    from textgen_core.training.metrics_log import plot_losses

    out = tmp_path / "a$\\frac{$x.loss.png"
    plot_losses([{"event": "eval", "tokens": 1, "train_loss": 2.0, "val_loss": 2.1}], out)
    assert out.stat().st_size > 0


# 6. File arguments that are not regular files ----------------------------------------------


def test_the_reader_refuses_fifos_devices_folders_and_sizes(tmp_path: Path, fifo: Path) -> None:
    for path in (fifo, Path("/dev/zero"), tmp_path):
        with pytest.raises(NotRegularFileError):
            read_regular(path, 1 << 20)
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:
        f.truncate(2 << 20)  # sparse: the size is refused before a byte is read
    with pytest.raises(FileTooLargeError, match="2 MB"):
        read_regular(big, 1 << 20)
    assert read_regular(big, 4 << 20)[:1] == b"\0"


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "huge"])
def test_prompt_file_that_is_not_a_bounded_regular_file(kind: str, tmp_path: Path, fifo: Path,
                                                        exported_tiny: dict[str, Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from runtime.chat import main as chat_main

    path = {"fifo": fifo, "dev-zero": Path("/dev/zero"), "huge": tmp_path / "huge.txt"}[kind]
    if kind == "huge":
        with open(path, "wb") as f:
            f.truncate(64 << 20)
    code = chat_main(["--model", str(exported_tiny["onnx"]), "--prompt-file", str(path), "--max-new-tokens", "2"])
    assert code == 1
    err = one_line_error(capsys)
    assert "--prompt-file" in err and ("not a regular file" in err or "accepts" in err)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_markup_text_that_is_not_a_regular_file(kind: str, fifo: Path, tiny_corpus_file: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from textgen_core.markup import main as markup_main

    path = fifo if kind == "fifo" else Path("/dev/zero")
    assert markup_main(["--corpus", str(tiny_corpus_file), "--text", str(path)]) == 1
    assert "not a regular file" in one_line_error(capsys)


def test_export_eval_text_that_is_a_device(tiny_gpt_checkpoint: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from export.cli import main as export_main

    code = export_main(["onnx", str(tiny_gpt_checkpoint), "--out", str(tmp_path / "m.onnx"),
                        "--quantize", "int8", "--eval-text", "/dev/zero"])
    assert code == 1
    assert "not a regular file" in one_line_error(capsys)


def test_a_fifo_sidecar_beside_a_corpus_file_is_not_opened(tmp_path: Path) -> None:
    from runtime.markup.sources import source_label

    book = tmp_path / "book.txt"
    book.write_text("text")
    os.mkfifo(tmp_path / "book.json")
    assert source_label(book) == "book.txt"


@pytest.mark.parametrize("flag", ["--config", "--layers"])
def test_settings_files_are_size_bounded_before_reading(flag: str, tiny_corpus_file: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from textgen_core.train import main as train_main

    big = tmp_path / "big.toml"
    with open(big, "wb") as f:
        f.truncate(8 << 20)  # sparse: refused by its size, nothing is read
    extra = ["--model", "stack"] if flag == "--layers" else []
    code = train_main(["--corpus", str(tiny_corpus_file), "--out", str(tmp_path / "m.pt"), *extra,
                       flag, str(big), "--device", "cpu"])
    assert code == 1
    assert "more than the 1 MB this reader accepts" in one_line_error(capsys)


# 2. Guards and encoders whose time is superlinear --------------------------------------------


def _seconds(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def test_the_onnx_metadata_depth_guard_is_linear() -> None:
    import json

    from runtime.onnx_file import json_depth

    hostile = '"' + '\\"' * 500_000  # 1 MB, an unterminated string of escaped quotes
    reference = json.dumps("a" * 1_000_000)  # the same size through the json parser: linear
    linear = _seconds(lambda: [json.loads(reference) for _ in range(10)])
    assert _seconds(lambda: json_depth(hostile)) < 50 * linear + 1.0
    assert json_depth('[1, {"a": "[[\\"{"}, [[]]]') == 3


def test_the_runtime_bpe_encoder_is_near_linear_and_keeps_the_library_ids() -> None:
    import json
    import random

    tokenizers = pytest.importorskip("tokenizers")
    from textgen_core.data.tokenizers import TokenizerSpec, build_tokenizer

    prose = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"
             "First Citizen:\nYou are all resolved rather to die than to famish?\n") * 30
    ours = build_tokenizer(TokenizerSpec("bpe", 400), [prose])
    rng = random.Random(0)
    paste = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(1_000_000))  # one 1 MB piece
    ours.encode(prose)
    reference = _seconds(lambda: ours.encode((prose * 200)[:1_000_000]))  # short cached pieces: linear
    assert _seconds(lambda: ours.encode(paste)) < 30 * reference + 2.0
    assert _seconds(lambda: ours.encode("speak" * 200_000)) < 30 * reference + 4.0
    library = tokenizers.Tokenizer.from_str(json.dumps(ours.data))
    for text in (paste[:100_000], "speak" * 20_000, "a" * 50_001):
        assert ours.encode(text) == library.encode(text).ids


def test_a_long_stop_text_does_not_rescan_the_held_text() -> None:
    from runtime.stop_texts import StopFilter

    def stream(stop: str) -> str:
        f = StopFilter([stop])
        return "".join(f.feed("a") for _ in range(8000)) + f.flush()

    reference = _seconds(lambda: stream("b"))  # nothing held: linear
    assert _seconds(lambda: stream("a" * 8000 + "b")) < 30 * reference + 1.0  # 8,000 characters held
    f = StopFilter(["a" * 10 + "b", "xy"])
    assert f.feed("a" * 12) == "aa" and f.held == "a" * 10
    assert f.feed("aab") == "aa" and f.stopped
    g = StopFilter(["abab"])
    assert "".join(g.feed(p) for p in ["ab", "aab", "ab"]) == "aba" and g.stopped


# 4. Strings from files and paths reach rich and the terminal unfiltered ----------------------


def test_an_out_name_with_markup_and_math_text_trains_and_is_shown_as_written(
        tmp_path: Path, tiny_corpus_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from textgen_core.train import main as train_main

    out = tmp_path / "run [/red] $\\frac{1}$ \x1b[2J.pt"
    code = train_main(["--corpus", str(tiny_corpus_file), "--out", str(out), "--preset", "nano",
                       "--device", "cpu", "--sample-tokens", "0", "--max-iters", "2", "--eval-interval", "1",
                       "--block-size", "16", "--batch-size", "2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert out.exists() and out.with_suffix(".loss.png").exists()
    shown = " ".join(captured.out.split())
    assert "run [/red] $\\frac{1}$" in shown and "\x1b" not in captured.out + captured.err


# 3. A checkpoint's recorded data is obeyed without limits ------------------------------------


@pytest.fixture
def bpe_checkpoint_with(tmp_path: Path, tiny_text: str) -> Callable[[dict], Path]:
    """A GPT checkpoint with a bpe tokenizer whose stored tokenizer.json gets `extra` fields."""
    pytest.importorskip("tokenizers")
    from textgen_core.data.tokenizers import TokenizerSpec, build_tokenizer
    from textgen_core.models.gpt import GPT, GPTConfig
    from textgen_core.training.checkpoint import make_checkpoint, save_checkpoint

    tokenizer = build_tokenizer(TokenizerSpec("bpe", 300), [tiny_text])
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16))

    def make(extra: dict) -> Path:
        stored = tokenizer.to_dict()
        stored["tokenizer"] = {**stored["tokenizer"], **extra}
        path = tmp_path / "bpe.pt"
        save_checkpoint(make_checkpoint(kind="gpt", model_config=model.config.to_dict(), tokenizer=stored,
                                        model_state=model.state_dict(), train_state={"step": 1}), path)
        return path

    return make


@pytest.mark.parametrize("extra", [
    {"padding": {"strategy": {"Fixed": 100_000}, "direction": "Right", "pad_to_multiple_of": None,
                 "pad_id": 0, "pad_type_id": 0, "pad_token": "!"}},
    {"truncation": {"direction": "Right", "max_length": 2, "strategy": "LongestFirst", "stride": 0}},
    {"post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                        "use_regex": True}},
    {"surprise": 1},
])
def test_tokenizer_options_textgen_never_writes_are_refused(
        extra: dict, bpe_checkpoint_with: Callable[[dict], Path], tiny_corpus_file: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from textgen_core.evaluate import main as evaluate_main

    path = bpe_checkpoint_with(extra)
    assert evaluate_main([str(path), "--corpus", str(tiny_corpus_file), "--device", "cpu"]) == 1
    err = one_line_error(capsys)
    assert next(iter(extra)) in err and "tokenizer" in err


@pytest.mark.parametrize("recorded", ["gutenberg:author=Austen,max-books=999999", "gutenberg:1342", "women-writers"])
def test_evaluate_never_downloads_the_corpus_a_checkpoint_records(
        recorded: str, tiny_gpt_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from textgen_core.evaluate import main as evaluate_main
    from textgen_core.training.checkpoint import load_checkpoint, save_checkpoint

    monkeypatch.setenv("TEXTGEN_GUTENBERG_MIRROR", "http://127.0.0.1:9/")  # nothing may be fetched
    payload = load_checkpoint(tiny_gpt_checkpoint)
    payload["train_state"] = {**payload["train_state"], "corpus": recorded}
    path = tmp_path / "recorded.pt"
    save_checkpoint(payload, path)
    assert evaluate_main([str(path), "--device", "cpu"]) == 1
    err = one_line_error(capsys)
    assert "never downloaded unasked" in err and "--corpus" in err


@pytest.mark.parametrize("recorded_fingerprint", [None, "sha256:" + "0" * 64])
def test_a_recorded_file_is_read_only_if_the_model_was_trained_on_it(
        recorded_fingerprint: str | None, tiny_gpt_checkpoint: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A checkpoint naming any file the user can read (no fingerprint, or one of other text) gets
    it neither measured nor quoted into a markup page."""
    from textgen_core.evaluate import main as evaluate_main
    from textgen_core.sample import main as sample_main
    from textgen_core.training.checkpoint import load_checkpoint, save_checkpoint

    secret = tmp_path / "secret.txt"
    secret.write_text("To be, or not to be: the password is hunter2\n" * 20, encoding="utf-8")
    payload = load_checkpoint(tiny_gpt_checkpoint)
    payload["train_state"] = {**payload["train_state"], "corpus": str(secret),
                              "corpus_fingerprint": recorded_fingerprint}
    path = tmp_path / "recorded.pt"
    save_checkpoint(payload, path)
    assert evaluate_main([str(path), "--device", "cpu"]) == 1
    assert "--corpus" in one_line_error(capsys)
    page = tmp_path / "page.html"
    assert sample_main([str(path), "--max-new-tokens", "20", "--html", str(page), "--device", "cpu"]) == 1
    assert "--markup-corpus" in one_line_error(capsys)
    assert not page.exists()


def test_a_recorded_file_edited_since_training_is_not_measured_unasked(
        tiny_gpt_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from textgen_core.data.corpus import corpus_fingerprint, resolve_corpus
    from textgen_core.evaluate import main as evaluate_main
    from textgen_core.training.checkpoint import load_checkpoint, save_checkpoint

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("To be, or not to be, that is the question.\n" * 40, encoding="utf-8")
    payload = load_checkpoint(tiny_gpt_checkpoint)
    payload["train_state"] = {**payload["train_state"], "corpus": str(corpus),
                              "corpus_fingerprint": corpus_fingerprint(resolve_corpus(str(corpus)))}
    path = tmp_path / "recorded.pt"
    save_checkpoint(payload, path)
    assert evaluate_main([str(path), "--device", "cpu"]) == 0
    assert capsys.readouterr().out.startswith(f"{corpus} (val, ")
    corpus.write_text("Something else entirely.\n" * 40, encoding="utf-8")
    assert evaluate_main([str(path), "--device", "cpu"]) == 1
    assert "fingerprint differs" in one_line_error(capsys)
    assert evaluate_main([str(path), "--corpus", str(corpus), "--device", "cpu"]) == 0


@pytest.mark.parametrize("encoding", ["rot13", "hex_codec", "base64"])
def test_encodings_that_are_not_text_codecs_are_one_line(
        encoding: str, tiny_gpt_checkpoint: Path, tiny_corpus_file: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from textgen_core.evaluate import main as evaluate_main
    from textgen_core.train import main as train_main
    from textgen_core.training.checkpoint import load_checkpoint, save_checkpoint

    payload = load_checkpoint(tiny_gpt_checkpoint)
    payload["train_state"] = {**payload["train_state"], "corpus": str(tiny_corpus_file), "encoding": encoding}
    path = tmp_path / "recorded.pt"
    save_checkpoint(payload, path)
    assert evaluate_main([str(path), "--device", "cpu"]) == 1
    assert "not a text encoding" in one_line_error(capsys)
    assert train_main(["--corpus", str(tiny_corpus_file), "--encoding", encoding, "--out", str(tmp_path / "m.pt"),
                       "--preset", "nano", "--device", "cpu", "--max-iters", "2"]) == 1
    assert "not a text encoding" in one_line_error(capsys)


# 9. TorchScript with --trust-torchscript runs the file's code before checking it is ours ------


def test_a_trusted_torchscript_file_without_the_textgen_header_is_never_loaded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from runtime.chat import main as chat_main

    class Stranger(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + 1

    path = tmp_path / "stranger.ts"
    with warnings.catch_warnings():  # torch.jit is deprecated in this torch release
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(Stranger(), torch.zeros(1)), str(path))  # TorchScript, but not ours
    loads: list[str] = []
    real_load = torch.jit.load
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: loads.append(str(a[0])) or real_load(*a, **k))
    code = chat_main(["--model", str(path), "--trust-torchscript", "--prompt", "To", "--max-new-tokens", "2"])
    assert code == 1
    err = one_line_error(capsys)
    assert "not a textgen TorchScript file" in err
    assert loads == []  # torch.jit.load, which runs the file's code, was never called


# 8. Fresh runs bounded by the same limits as checkpoints -------------------------------------


@pytest.mark.parametrize(("args", "toml", "message"), [
    (["--n-layer", str(10**30)], None, "at most 256 layers"),
    (["--block-size", str(4 * 10**12)], None, "contexts of at most 1,048,576"),
    ([], "[model]\nn_layer = 1000000000000000000000000000000\n", "at most 256 layers"),
    ([], "block_size = 4000000000000\n", "contexts of at most"),
    ([], "a = " + "[" * 5000 + "]" * 5000 + "\n", "not valid TOML"),
    (["--batch-size", str(10**21)], None, "--batch-size must be at most"),
    (["--max-iters", str(10**23)], None, "--max-iters must be at most"),
    (["--n-embd", str(10**21), "--n-head", "1"], None, "too large to build"),
    (["--n-embd", "3000000", "--n-head", "1", "--positions", "learned"], None, "more than 50%"),
    (["--model", "gan", "--seq-len", str(4 * 10**12)], None, "--seq-len is 4,000,000,000,000"),
    (["--model", "stack", "--layers", "LAYERS"], "[model]\nn_embd = 1000000000000000000000\n", "too large to build"),
    (["--model", "gan", "--critic-layers", str(10**11)], None, "--critic-layers is"),
])
def test_fresh_run_settings_are_bounded(args: list[str], toml: str | None, message: str, tmp_path: Path,
                                        tiny_corpus_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from textgen_core.train import main as train_main

    config = []
    if "LAYERS" in args:  # an example layers file with the [model] table replaced
        example = (Path(__file__).parents[1] / "examples" / "stacks" / "lstm.toml").read_text()
        (tmp_path / "layers.toml").write_text(toml + example[example.index("[train]"):])
        args = [str(tmp_path / "layers.toml") if a == "LAYERS" else a for a in args]
    elif toml is not None:
        (tmp_path / "run.toml").write_text(toml)
        config = ["--config", str(tmp_path / "run.toml")]
    family = [] if "--model" in args else ["--preset", "nano", "--sample-tokens", "0"]
    code = train_main(["--corpus", str(tiny_corpus_file), "--out", str(tmp_path / "m.pt"), "--device", "cpu",
                       *family, *config, *args])
    assert code == 1
    assert message in one_line_error(capsys)
    assert not (tmp_path / "m.pt").exists()


# 5. Memory amplification ---------------------------------------------------------------------


def test_many_samples_of_a_long_prompt_hold_one_copy_of_it() -> None:
    import tracemalloc

    import numpy as np

    from runtime.decode import decode_batch
    from runtime.sampler import SamplingSettings

    prompt = [1] * 200_000
    rows = 256
    reads: list[int] = []

    def forward(windows: list[list[int]], past: object) -> tuple[np.ndarray, object]:
        reads.append(max(len(w) for w in windows))
        return np.zeros((len(windows), 4), dtype=np.float32), past

    tracemalloc.start()
    try:
        steps = list(decode_batch(prompt, block_size=16, forward=forward, empty_past=lambda: None,
                                  settings=[SamplingSettings(temperature=1.0)] * rows, seeds=list(range(rows)),
                                  max_new_tokens=40))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(steps) == 40 and all(len(s) == rows for s in steps)
    assert max(reads) <= 16
    assert peak < 40 << 20  # 256 copies of the prompt's ids were 400 MB


def test_the_catalogue_keeps_bounded_fields_and_is_parsed_once_per_process(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from textgen_core.data.gutenberg_catalogue import MAX_FIELD_CHARS, cached_catalogue, parse_catalogue

    head = b"Text#,Type,Issued,Title,Language,Authors,Subjects,LoCC,Bookshelves\n"
    huge = b"x" * 100_000  # the csv module's own field limit is 131,072
    (entry,) = parse_catalogue(head + b"1,Text,2000,T," + b"en;" * 30_000 + b",A," + huge + b",PR," + huge + b"\n",
                               "test")
    assert len(entry.subjects) == len(entry.bookshelves) == MAX_FIELD_CHARS and len(entry.languages) <= 16
    monkeypatch.setenv("TEXTGEN_CACHE", str(tmp_path))
    folder = tmp_path / "gutenberg"
    folder.mkdir()
    (folder / "pg_catalog.csv").write_bytes(head + b"1,Text,2000,T,en,A,,PR,\n")
    (folder / "pg_catalog.json").write_text('{"format": "textgen-gutenberg-catalogue", "next_check": 1e18}')
    first = cached_catalogue()
    assert first is not None and first is cached_catalogue()  # one parse, then reused
