"""The "yoke" setting of a GPT: one block whose feed-forward is narrowed to a bottleneck.

Written as `LAYER:HIDDEN[:no-residual][:stateful]` (the `--yoke` flag, the `yoke` field of the model
config, and the model config inside exported files). It lives in the torch-free runtime because
both sides read it: training builds the model from it, the runtime learns from it whether an
exported graph carries a recurrent state and how wide that state is.

- LAYER: index of the block (0 is the first), HIDDEN: the feed-forward's hidden width there
  (4 * n_embd in every other block);
- `no-residual`: the feed-forward's output replaces the residual stream instead of being added to
  it, so everything later layers see has passed through HIDDEN numbers per position;
- `stateful`: the bottleneck activation is a recurrent state carried from one context window to
  the next (see textgen_core/models/yoke.py).
"""

from __future__ import annotations

from dataclasses import dataclass

FORMAT = "LAYER:HIDDEN[:no-residual][:stateful]"
OPTIONS = ("no-residual", "stateful")


@dataclass(frozen=True)
class YokeSpec:
    layer: int
    hidden: int
    residual: bool = True
    stateful: bool = False

    def to_text(self) -> str:
        parts = [str(self.layer), str(self.hidden)]
        if not self.residual:
            parts.append("no-residual")
        if self.stateful:
            parts.append("stateful")
        return ":".join(parts)


def parse_yoke(text: str, n_layer: int) -> YokeSpec | None:
    """The spec in `text` ('' means no yoke); ValueError with a user-facing message otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"--yoke must be text of the form {FORMAT}, got {text!r}")
    if text == "":
        return None
    parts = text.split(":")
    if len(parts) < 2:
        raise ValueError(f"--yoke must be {FORMAT}, got {text!r}")
    layer_text, hidden_text, *options = parts
    try:
        layer, hidden = int(layer_text), int(hidden_text)
    except ValueError:
        raise ValueError(f"--yoke must be {FORMAT} with whole numbers, got {text!r}") from None
    if not 0 <= layer < n_layer:
        raise ValueError(f"--yoke layer {layer} is out of range: --n-layer {n_layer} has layers "
                         f"0..{n_layer - 1}")
    if hidden <= 0:
        raise ValueError(f"--yoke hidden size must be a positive integer, got {hidden}")
    unknown = [o for o in options if o not in OPTIONS]
    if unknown:
        raise ValueError(f"--yoke option {unknown[0]!r} is unknown; options: {', '.join(OPTIONS)}")
    if len(set(options)) != len(options):
        raise ValueError(f"--yoke repeats an option: {text!r}")
    return YokeSpec(layer, hidden, residual="no-residual" not in options,
                    stateful="stateful" in options)
