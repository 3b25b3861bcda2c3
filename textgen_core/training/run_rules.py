"""The rules every training command line (GPT, GAN, stack) follows before a run starts:
--resume and --init-from exclude each other, a fresh run replaces a checkpoint only when asked,
and a resumed run continues a checkpoint that holds a whole run, on its own corpus, with steps
left to take, on the data it was trained on. Each rule raises a ConfigError that says what to do instead."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.atomic_file import check_target
from runtime.terminal_text import sanitize
from textgen_core.data.tokenizers import run_tokenizer_spec
from textgen_core.errors import ConfigError
from textgen_core.training.flags import flag_list

if TYPE_CHECKING:
    from textgen_core.training.run_config import RunRequest


def check_resume_or_init(resume: bool, init_from: str | None) -> None:
    if resume and init_from:
        raise ConfigError("--resume and --init-from exclude each other (resume continues a run; "
                          "init-from starts a new one from trained weights)")


def check_out_targets(out: Path) -> None:
    """The checkpoint, its metrics log and its plot are written through links or over device
    nodes by no run: each is refused before training starts, not at the first save."""
    from textgen_core.training.metrics_log import metrics_path, plot_path

    for path in (out, metrics_path(out), plot_path(out)):
        try:
            check_target(path)
        except OSError as exc:
            raise ConfigError(f"--out: {sanitize(exc.strerror or str(exc))}") from None


def check_fresh_out(out: Path, overwrite: bool) -> None:
    check_out_targets(out)
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} already exists; pass --resume to continue it, --overwrite to "
                          "replace it, or --out to write elsewhere")


def check_resume_exists(out: Path) -> None:
    check_out_targets(out)
    if not out.exists():
        raise ConfigError(f"--resume: no checkpoint at {out} (use --out to point at it)")


def check_resumable(out: Path, holds_run_state: bool) -> None:
    """`holds_run_state`: the checkpoint has the optimizer and RNG state a resumed run needs."""
    if not holds_run_state:
        raise ConfigError(f"--resume: {out} holds weights only (no optimizer/RNG state); "
                          "use --init-from to fine-tune from it")


def check_resume_corpus(corpus: str | None, saved_state: dict[str, Any]) -> None:
    if corpus is not None and corpus != saved_state.get("corpus"):
        raise ConfigError(f"--resume continues on the saved corpus {saved_state.get('corpus')!r}; "
                          "use --init-from to fine-tune on another corpus")


def check_same_corpus(saved_state: dict[str, Any], fingerprint: str) -> None:
    """A resumed run reads the data its checkpoint was trained on: the corpus's fingerprint (its
    files' sizes and sha256, training/data/corpus.py) must match the saved one. Checkpoints from
    before fingerprints were recorded resume as before."""
    saved = saved_state.get("corpus_fingerprint")
    if isinstance(saved, str) and saved != fingerprint:
        raise ConfigError(f"--resume: the corpus {sanitize(str(saved_state.get('corpus')))[:200]!r} "
                          "changed since the checkpoint was saved (its files differ); resume on the "
                          "same files, or use --init-from to fine-tune on the changed ones")


def check_steps_left(out: Path, step: int, max_iters: int) -> None:
    if step >= max_iters:
        raise ConfigError(f"{out} is already at step {step} of --max-iters {max_iters}; "
                          "raise --max-iters to train further")


def resumed_checkpoint(request: RunRequest, out: Path, kind: str, *, run_state_key: str,
                       rebuild: Callable[[dict[str, Any]], object] | None = None,
                       has_tokenizer_choice: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """What every family's `--resume` checks, in one order: the checkpoint exists, loads as
    `kind` and rebuilds, holds a whole run (optimizer and `run_state_key` in its train state),
    and no flag asks for another model, tokenizer or corpus. Returns the checkpoint and its
    train state; the family then reads its training settings and calls `check_steps_left`."""
    check_resume_exists(out)
    payload = request.checkpoint(out, kind)
    if rebuild is not None:
        rebuild(payload)
    check_resumable(out, isinstance(payload.get("optimizer"), dict)
                    and run_state_key in payload.get("train_state", {}))
    if request.model:
        raise ConfigError(f"--resume keeps the saved model shape; drop {flag_list(sorted(request.model))}")
    if has_tokenizer_choice:
        run_tokenizer_spec(request.run, payload, "--resume")
    saved = payload["train_state"]
    check_resume_corpus(request.run.get("corpus"), saved)
    return payload, saved
