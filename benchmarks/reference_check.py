"""Check the training bench's reference (benchmarks/nanogpt_reference.py) against nanoGPT itself.

    python -m benchmarks.reference_check --nanogpt PATH/TO/nanoGPT

The bench reports our step's speed as a ratio to the reference loop, so the reference must be
nanoGPT's step and no slower than it. With a nanoGPT checkout (its `model.py` is imported from
there; nothing of it is copied here) this builds nanoGPT's `GPT` at the bench's shape with
`bias=False`, copies its initial weights into the reference model, and trains both on the same
batches with their own optimizers (nanoGPT's `configure_optimizers`, the reference's
`reference_optimizer`) and nanoGPT's step (forward, backward, clip 1.0, step, zero_grad):

- same model math and optimizer: the losses of the two agree step for step (printed: the
  largest difference over the steps);
- speed: nanoGPT's loop with its own data path (a fresh `np.memmap` of `train.bin` and
  `torch.from_numpy(...).astype(int64)` rows per batch, as its `train.py` does) against the
  reference loop with the bench's sampler, in alternating blocks, tokens/s of each.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from rich.console import Console

from benchmarks.nanogpt_reference import ReferenceGPT, reference_optimizer, reference_step
from benchmarks.training_speed import VOCAB, preset_configs
from runtime.atomic_file import write_atomic
from runtime.command_line import Parser
from textgen_core.data.batches import BatchSampler

console = Console(highlight=False, soft_wrap=True)
WEIGHT_NAMES = {  # nanoGPT's parameter names -> the reference's
    "transformer.wte.weight": "tok.weight",
    "transformer.wpe.weight": "pos.weight",
    "transformer.ln_f.weight": "norm.weight",
}
BLOCK_NAMES = {"ln_1": "norm1", "attn.c_attn": "attn.qkv", "attn.c_proj": "attn.out",
               "ln_2": "norm2", "mlp.c_fc": "mlp.0", "mlp.c_proj": "mlp.2"}


def load_nanogpt(checkout: Path) -> ModuleType:
    path = checkout / "model.py"
    if not path.is_file():
        raise SystemExit(f"error: {path} not found (pass --nanogpt a nanoGPT checkout)")
    spec = importlib.util.spec_from_file_location("nanogpt_model", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"error: cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_name(name: str) -> str:
    if name in WEIGHT_NAMES:
        return WEIGHT_NAMES[name]
    _, _, layer, rest = name.split(".", 3)  # transformer.h.{i}.{rest}
    part, _, kind = rest.rpartition(".")
    return f"blocks.{layer}.{BLOCK_NAMES[part]}.{kind}"


def copy_weights(nano: torch.nn.Module, reference: ReferenceGPT) -> None:
    ours = dict(reference.named_parameters())
    with torch.no_grad():
        for name, value in nano.named_parameters():  # lm_head is tied to wte, listed once
            ours[reference_name(name)].copy_(value)


def nanogpt_batches(data_path: Path, block_size: int, batch_size: int, seed: int):
    """nanoGPT's `get_batch('train')` on the CPU, as its train.py writes it."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        data = np.memmap(data_path, dtype=np.uint16, mode="r")
        ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
        x = torch.stack([torch.from_numpy(data[i:i + block_size].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(data[i + 1:i + 1 + block_size].astype(np.int64)) for i in ix])
        yield x, y


def nanogpt_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                 y: torch.Tensor) -> float:
    _, loss = model(x, y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m benchmarks.reference_check")
    parser.add_argument("--nanogpt", type=Path, required=True, metavar="DIR", help="a nanoGPT checkout")
    parser.add_argument("--preset", default="cpu", metavar="NAME",
                        help="the textgen preset whose shape both loops train")
    parser.add_argument("--steps", type=int, default=20, help="steps compared loss for loss")
    parser.add_argument("--rounds", type=int, default=4, help="timed rounds of each loop")
    parser.add_argument("--block", type=int, default=4, help="steps per timed block")
    args = parser.parse_args(argv)
    nanogpt = load_nanogpt(args.nanogpt)
    model_cfg, train_cfg = preset_configs(args.preset)
    c, lr = model_cfg, train_cfg.learning_rate

    def pair() -> tuple[torch.nn.Module, torch.optim.Optimizer, ReferenceGPT, torch.optim.Optimizer]:
        torch.manual_seed(0)
        nano = nanogpt.GPT(nanogpt.GPTConfig(block_size=c.block_size, vocab_size=VOCAB,
                                             n_layer=c.n_layer, n_head=c.n_head, n_embd=c.n_embd,
                                             dropout=0.0, bias=False))
        nano_opt = nano.configure_optimizers(0.1, lr, (0.9, 0.99), "cpu")
        reference = ReferenceGPT(VOCAB, c.block_size, c.n_layer, c.n_head, c.n_embd)
        copy_weights(nano, reference)
        ref_opt = reference_optimizer(reference, lr, torch.device("cpu"))
        return nano.train(), nano_opt, reference.train(), ref_opt

    with tempfile.TemporaryDirectory() as tmp:
        data_path = Path(tmp) / "train.bin"
        tokens = np.random.default_rng(0).integers(0, VOCAB, 300_000).astype(np.uint16)
        write_atomic(data_path, tokens.tobytes())

        nano, nano_opt, reference, ref_opt = pair()
        batches = nanogpt_batches(data_path, c.block_size, train_cfg.batch_size, seed=0)
        worst = 0.0
        for _ in range(args.steps):
            x, y = next(batches)
            theirs = nanogpt_step(nano, nano_opt, x, y)
            with torch.no_grad():  # the loss before the reference's own step
                ours = float(reference(x, y))
            reference_step(reference, ref_opt, x, y)
            worst = max(worst, abs(theirs - ours))
        console.print(f"loss: nanoGPT vs reference over {args.steps} steps on the same batches: "
              f"largest difference {worst:.2e} (last loss {theirs:.4f})")

        nano, nano_opt, reference, ref_opt = pair()
        sampler = BatchSampler(tokens, c.block_size, train_cfg.batch_size,
                               torch.Generator().manual_seed(0), torch.device("cpu"))
        loops = {
            "nanoGPT (its model, optimizer and get_batch)":
                lambda: nanogpt_step(nano, nano_opt, *next(batches)),
            "reference (benchmarks/nanogpt_reference.py, bench sampler)":
                lambda: reference_step(reference, ref_opt, *sampler.next()),
        }
        for loop in loops.values():  # warm-up
            loop()
        elapsed = dict.fromkeys(loops, 0.0)
        for r in range(args.rounds):
            for name in (list(loops) if r % 2 == 0 else list(reversed(loops))):
                t0 = time.perf_counter()
                for _ in range(args.block):
                    loops[name]()
                elapsed[name] += time.perf_counter() - t0
    tokens_per_step = train_cfg.batch_size * c.block_size
    speeds = {name: args.rounds * args.block * tokens_per_step / s for name, s in elapsed.items()}
    for name, speed in speeds.items():
        console.print(f"{name}: {speed:,.0f} tok/s")
    nano_speed, ref_speed = speeds.values()
    console.print(f"reference / nanoGPT: {ref_speed / nano_speed:.2f}x "
          f"({c.n_layer}x{c.n_embd}, ctx {c.block_size}, batch {train_cfg.batch_size}, CPU)")
    return 0 if worst < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
