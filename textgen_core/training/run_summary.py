"""What a training run is about to do, shown before its first step and kept in its metrics log.

One small panel: the model (family, parameter count, shape), the corpus (characters, tokens, the
train/validation split), the device, what a step computes in and why (given, kept from the
checkpoint, the device's rule, cached from an earlier measurement, measured now), compile,
batch and context, and the files the run writes. The same figures go into the metrics log's
`start` event (`"summary"`), so a test or a later reader compares them with the run's own.
Like training/progress.py, this module prints.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from runtime.terminal_text import plain
from textgen_core.training.log_mirrors import mirror_folder

# Why a run computes in its dtype (training/dtype_choice.py DtypeDecision.reason).
DTYPE_REASONS = {
    "given": "given with --dtype",
    "saved": "kept from the checkpoint",
    "device": "the device's rule",
    "cached": "measured on an earlier run of this shape",
    "measured": "measured now",
    "family": "what this model family trains in",
}


@dataclass(frozen=True)
class RunSummary:
    family: str
    params: int
    shape: str  # e.g. "3 layers x 48 wide, 3 heads"
    corpus: str
    characters: int | None  # None: not counted (the GAN reads sentences of words)
    tokens: int
    train_tokens: int
    val_tokens: int
    tokenizer: str  # e.g. "char, 65 tokens"
    device: str
    dtype: str
    dtype_reason: str  # a key of DTYPE_REASONS
    dtype_timings: dict[str, float] | None  # ms per step of fp32 and bf16 when measured or cached
    compile: bool
    batch_size: int
    gradient_accumulation_steps: int
    block_size: int
    world_size: int
    steps: str  # "0 -> 2000", or "1200 -> 2000" when resuming
    files: tuple[str, ...]
    unit: str = "tokens"  # what `tokens` counts: tokens, or a GAN's sentences

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def rows(self) -> list[tuple[str, str]]:
        train_share = self.train_tokens / max(self.tokens, 1)
        dtype = f"{self.dtype} ({DTYPE_REASONS.get(self.dtype_reason, self.dtype_reason)}"
        if self.dtype_timings:
            dtype += ": " + ", ".join(f"{k} {v:,.1f} ms/step" for k, v in self.dtype_timings.items())
        dtype += ")"
        batch = (f"{self.batch_size} x {self.block_size} tokens" if self.unit == "tokens"
                 else f"{self.batch_size} {self.unit} of {self.block_size} words")
        if self.gradient_accumulation_steps > 1:
            batch += f" x {self.gradient_accumulation_steps} micro-batches"
        if self.world_size > 1:
            batch += f" x {self.world_size} processes"
        return [
            ("model", f"{self.family}, {self.params:,} parameters, {self.shape}"),
            ("corpus", f"{self.corpus}: "
                       + (f"{self.characters:,} characters, " if self.characters is not None else "")
                       + f"{self.tokens:,} {self.unit} ({self.tokenizer})"),
            ("split", f"train {self.train_tokens:,} {self.unit} ({train_share:.0%}), validation "
                      f"{self.val_tokens:,}"),
            ("device", self.device),
            ("dtype", dtype),
            ("compile", "on" if self.compile else "off"),
            ("batch", f"{batch}; context {self.block_size}"),
            ("steps", self.steps),
            ("writes", ", ".join(self.files)),
        ]


def show(summary: RunSummary, console: Console | None = None) -> None:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for name, value in summary.rows():
        table.add_row(name, plain(value))  # corpus names and paths come from the user
    (console or Console()).print(Panel(table, title="textgen train", title_align="left", expand=False))


def measuring_note(console: Console | None = None) -> None:
    """The line shown while --dtype auto times fp32 against bf16 (a few seconds, once per shape)."""
    (console or Console()).print(plain("measuring fp32 against bf16 for this shape on this CPU "
                                       "(once; the choice is cached) ...", style="dim"))


def note(text: str, console: Console | None = None) -> None:
    (console or Console()).print(plain(text, style="yellow"))


def token_run_summary(family: str, model: Any, spec: Any, splits: Any, device: Any, dtype: str,
                      dtype_reason: str, dtype_timings: dict[str, float] | None, compiled: bool,
                      world_size: int, start_step: int, end_step: int,
                      files: tuple[str, ...]) -> RunSummary:
    """A GPT's or a stack's summary from the objects its loop built (training/gpt.py, stack.py)."""
    config, tc = model.config, spec.train_config
    layers = getattr(config, "n_layer", None) or len(getattr(config, "layers", ())) or None
    shape = ", ".join(f"{value} {name}" for name, value in (
        ("layers", layers), ("heads", getattr(config, "n_head", None)),
        ("wide", getattr(config, "n_embd", None))) if value is not None)
    return RunSummary(
        family=family, params=sum(p.numel() for p in model.parameters()), shape=shape or "-",
        corpus=spec.corpus, characters=splits.split_chars("all"), tokens=len(splits.tokens),
        train_tokens=len(splits.train), val_tokens=len(splits.val),
        tokenizer=f"{splits.tokenizer.to_dict().get('type', '?')}, {splits.tokenizer.vocab_size:,} tokens",
        device=str(device), dtype=dtype, dtype_reason=dtype_reason, dtype_timings=dtype_timings,
        compile=compiled, batch_size=tc.batch_size,
        gradient_accumulation_steps=getattr(tc, "gradient_accumulation_steps", 1),
        block_size=config.block_size,
        world_size=world_size, steps=f"{start_step} -> {end_step}",
        files=files + tuple(f"{mirror_folder(spec.out, kind)}/" for kind in getattr(spec, "log", ())))
