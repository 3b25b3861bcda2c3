"""How a sampler keeps going once the context window is full.

Positions are learned absolute embeddings, so cached keys/values cannot simply be shifted. When the
next token would not fit, the sampler drops the cache and re-reads the most recent
`keep_after_slide(block_size)` tokens in one call, then continues with the cache. Keeping 3/4 of
the window leaves every re-read with a long context while costing one prefill per block_size/4
new tokens instead of one full recomputation per token (what nanoGPT's sampler does).

Both samplers (torch in `textgen_core.sampling`, numpy in `runtime.generator`) use these two
functions, so they see the same context at every step and greedy decoding agrees token for token.
"""

from __future__ import annotations


def keep_after_slide(block_size: int) -> int:
    """Number of most recent tokens re-read when the window slides (at least 1)."""
    return max(1, block_size - block_size // 4)


def prompt_window(num_prompt_tokens: int, block_size: int) -> int:
    """How many of the prompt's last tokens the first call reads: the whole prompt when it fits
    with room for one more token, else the same amount a slide keeps."""
    if num_prompt_tokens < block_size:
        return num_prompt_tokens
    return keep_after_slide(block_size)
