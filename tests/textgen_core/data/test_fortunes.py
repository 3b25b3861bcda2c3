"""`--corpus fortunes`: the system's fortune files (Debian fortunes-min, which CI installs), or a
fixture folder through TEXTGEN_FORTUNES_DIR; one fortune per GAN sample, concatenated for the GPT."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.fortune_files import FORTUNES_DIR, FORTUNES_ENV
from textgen_core.data.corpus import iter_corpus_text, resolve_corpus
from textgen_core.data.fortunes import fortune_files
from textgen_core.data.sentences import load_sentences, split_words
from textgen_core.data.token_store import load_token_splits
from textgen_core.errors import CorpusError

SHORT = ["A day for firm decisions.", "You will be rich. Or not.", "Beware of the quiet dog.",
         "Today is a good day to rest.", "Never trust a tall river.", "Bring an umbrella, friend.",
         "The moon is watching you.", "Look out for the letter.", "Smile at a stranger today.",
         "Good news comes by boat."]


@pytest.fixture
def fortune_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder laid out like /usr/share/games/fortunes: files, strfile indexes, .u8 links, off/."""
    folder = tmp_path / "fortunes"
    (folder / "off").mkdir(parents=True)
    (folder / "sayings").write_text("%\n".join(f + "\n" for f in SHORT * 2) + "%\n", encoding="utf-8")
    # A two-line fortune with a blank line inside, and an underlined word (_\bw_\bo...) as the
    # real files have.
    underlined = "".join(f"_\b{c}" for c in "words")
    (folder / "longer").write_text(f"First line of it.\n\nSecond part, {underlined} too.\n%\n"
                                   "Last one, with no trailing separator.\n", encoding="utf-8")
    (folder / "sayings.dat").write_bytes(b"\x00\x00\x00\x02")
    (folder / "longer.dat").write_bytes(b"\x00\x00\x00\x02")
    os.symlink("sayings", folder / "sayings.u8")
    (folder / "off" / "rude").write_text("Not read.\n%\n", encoding="utf-8")
    monkeypatch.setenv(FORTUNES_ENV, str(folder))
    return folder


def test_fortune_files_skip_indexes_links_and_subfolders(fortune_folder: Path) -> None:
    assert [p.name for p in fortune_files()] == ["longer", "sayings"]


def test_gpt_text_is_the_fortunes_concatenated(fortune_folder: Path) -> None:
    corpus = resolve_corpus("fortunes")
    text = "".join(chunk for _, chunk in iter_corpus_text(corpus))
    assert text.startswith("First line of it.\n\nSecond part, words too.\n\nLast one, with no trailing "
                           "separator.\n\nA day for firm decisions.\n\nYou will be rich. Or not.\n\n")
    assert "%" not in text and "\b" not in text
    splits = load_token_splits(corpus)
    assert splits.tokenizer.decode(splits.tokens) == text


def test_gan_gets_one_sample_per_fortune(fortune_folder: Path) -> None:
    samples = list(split_words(resolve_corpus("fortunes")))
    assert samples[0] == ["first", "line", "of", "it.", "second", "part", ",", "words", "too", "."]
    assert ["you", "will", "be", "rich.", "or", "not", "."] in samples  # two sentences, one sample
    assert len(samples) == 2 + 2 * len(SHORT)
    data = load_sentences(resolve_corpus("fortunes"), seq_len=9, vocab_size=50, min_train=4)
    assert len(data.train) + len(data.val) == 2 * len(SHORT) + 1  # the 10-word fortune does not fit


def test_missing_fortunes_say_which_package_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from textgen_core.train import main

    monkeypatch.setenv(FORTUNES_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(CorpusError, match="install Debian's fortunes-min \\(or fortunes\\) package"):
        resolve_corpus("fortunes")
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv(FORTUNES_ENV, str(tmp_path / "empty"))
    assert main(["--corpus", "fortunes", "--preset", "nano", "--device", "cpu",
                 "--out", str(tmp_path / "m.pt")]) == 1
    err = capsys.readouterr().err.strip()
    assert "holds no fortune files" in err and "fortunes-min" in err and "\n" not in err


@pytest.mark.slow
def test_gan_trains_on_fortunes(tiny_gan_flags: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                request: pytest.FixtureRequest) -> None:
    """On the real files where installed (CI installs fortunes-min), else on the fixture folder."""
    from textgen_core.train import main
    from textgen_core.training.checkpoint import load_checkpoint

    monkeypatch.delenv(FORTUNES_ENV, raising=False)
    if not (FORTUNES_DIR / "fortunes").is_file():
        request.getfixturevalue("fortune_folder")
    out = tmp_path / "fortunes-gan.pt"
    assert main([*tiny_gan_flags, "--corpus", "fortunes", "--out", str(out), "--max-iters", "4",
                 "--mle-iters", "2", "--eval-interval", "4", "--checkpoint-interval", "4"]) == 0
    payload = load_checkpoint(out, kind="gan")
    assert payload["train_state"]["corpus"] == "fortunes" and payload["train_state"]["step"] == 4
