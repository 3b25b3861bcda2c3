// The token loop: runtime/decode.py (one sequence) and runtime/window.py's rules, so the page
// reads exactly the context the Python runtime reads at every step and greedy decoding agrees
// token for token.
//
// `model.forward(ids, past)` resolves to [logits of the last position (Float32Array V), past];
// `model.emptyPast()` is a fresh cache; a rotary model's past also offers `position` and
// `model.rolled(past, drop)`, the cache without its `drop` oldest positions.

import { sampleNext } from "./sampler.js";

// Number of most recent tokens re-read (or kept, when the cache rolls) once the window is full.
export function keepAfterSlide(blockSize) {
  return Math.max(1, blockSize - Math.floor(blockSize / 4));
}

// How many of the prompt's last tokens the first call reads.
export function promptWindow(promptLength, blockSize) {
  return promptLength < blockSize ? promptLength : keepAfterSlide(blockSize);
}

// Yield `maxNewTokens` token ids continuing `promptIds` (non-empty). `rollLimit`: with `rolls`,
// a full window's next position from which the loop slides once instead of rolling.
export async function* decode(promptIds, { blockSize, model, settings, maxNewTokens, random, rolls = false, rollLimit = 0 }) {
  const context = Array.from(promptIds);
  let cached = promptWindow(context.length, blockSize);
  let [logits, past] = await model.forward(context.slice(-cached), model.emptyPast());
  for (let produced = 1; produced <= maxNewTokens; produced++) {
    const seen = settings.repetitionPenalty !== 1 ? context.slice(-cached) : [];
    const token = sampleNext(logits, settings, random, seen);
    context.push(token);
    yield token;
    if (produced === maxNewTokens) return;
    if (cached + 1 > blockSize && rolls && past.position < rollLimit) {
      // The window a slide would re-read: the cache keeps keep - 1 positions, the token follows.
      cached = keepAfterSlide(blockSize);
      [logits, past] = await model.forward([token], model.rolled(past, blockSize + 1 - cached));
    } else if (cached + 1 > blockSize) {
      cached = keepAfterSlide(blockSize);
      [logits, past] = await model.forward(context.slice(-cached), model.emptyPast());
    } else {
      [logits, past] = await model.forward([token], past);
      cached += 1;
    }
  }
}
