"""Sentences to measure, as lists of vocabulary words: from the GAN, from a char GPT at a given
temperature, and from the unigram baseline (words drawn independently by corpus frequency)."""

from __future__ import annotations

import numpy as np
import torch

from runtime.tokenizer import Tokenizer, line_start_ids
from runtime.word_tokenizer import WordTokenizer
from textgen_core.data.sentences import SentenceData, split_text_words
from textgen_core.models.gan import GAN, draw_noise
from textgen_core.models.gpt import GPT

Words = list[str]


@torch.no_grad()
def gan_sentences(gan: GAN, tokenizer: WordTokenizer, count: int, seed: int,
                  batch_size: int = 256, device: torch.device | str = "cpu",
                  temperature: float = 1.0) -> list[Words]:
    """`count` sentences, each word drawn from the generator's softmax at `temperature`."""
    gan.eval().to(device)
    rng = torch.Generator().manual_seed(seed)
    t = torch.tensor(float(temperature), device=device)
    out: list[Words] = []
    while len(out) < count:
        n = min(batch_size, count - len(out))
        ids, _ = gan.generator(**draw_noise(gan.config, n, rng, device), temperature=t)
        out += [tokenizer.decode_words(row) for row in ids.cpu().tolist()]
    return out


def unigram_sentences(data: SentenceData, count: int, seed: int) -> list[Words]:
    """The baseline: a training sentence length, then that many words drawn independently with
    their training frequencies (`<unk>` included, as the models may write it too)."""
    rng = np.random.default_rng(seed)
    lengths = rng.choice(data.train_lengths, size=count)
    words = data.tokenizer.words
    return [[words[i] for i in rng.choice(len(words), size=int(n), p=data.unigram)] for n in lengths]


@torch.no_grad()
def gpt_sentences(model: GPT, tokenizer: Tokenizer, words: WordTokenizer, count: int,
                  temperature: float, seq_len: int, seed: int, batch_size: int = 32,
                  device: torch.device | str = "cpu", max_rounds: int = 50) -> list[Words]:
    """Sample rows of text from the start of a line (a GPT of any tokenizer: char, word or bpe),
    cut them into sentences like the corpus (the last, unfinished sentence of each row is
    dropped), keep those that fit `seq_len`."""
    model.eval().to(device)
    rng = torch.Generator(device="cpu").manual_seed(seed)
    start = line_start_ids(tokenizer)
    length = max(1, model.config.block_size - len(start))
    out: list[Words] = []
    for _ in range(max_rounds):
        idx = torch.tensor([start] * batch_size, dtype=torch.long, device=device)
        past = None
        rows = [idx]
        for _ in range(length):
            logits, _, past = model(rows[-1], past_key_values=past)
            probs = (logits[:, -1].float() / max(temperature, 1e-6)).softmax(-1).cpu()
            rows.append(torch.multinomial(probs, 1, generator=rng).to(device))
        texts = [tokenizer.decode(r) for r in torch.cat(rows, 1)[:, len(start):].cpu().tolist()]
        for text in texts:
            sentences = list(split_text_words([text], words.lowercase))[:-1]
            for sentence in sentences:
                if 1 <= len(sentence) <= seq_len - 1:
                    out.append([words.words[i] for i in words.encode_words(sentence)])
        if len(out) >= count:
            return out[:count]
    return out
