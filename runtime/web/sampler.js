// Choosing the next token from logits: runtime/sampler.py's rule, in float64 as there.
// - temperature 0 (or below GREEDY_BELOW) is greedy: argmax, ties to the lowest id;
// - topK 0/null is off, as is topK >= the vocabulary; topP in (0, 1], 1 is off, the smallest set
//   of most likely tokens whose probability reaches topP is kept;
// - repetitionPenalty 1 is off; > 1 divides positive logits and multiplies negative ones of the
//   tokens in the context (CTRL);
// - NaN logits count as -inf; +inf logits are the only candidates; none finite: token 0.
// The random stream is the page's own (a seeded xoshiro128**), not numpy's: a seed repeats
// itself here, and greedy decoding, which draws nothing, equals the Python runtime's.

export const GREEDY_BELOW = 1e-6;
export const SEED_LIMIT = 2 ** 32;

export function checkSettings({ temperature = 0.8, topK = null, topP = null, repetitionPenalty = 1.0 } = {}) {
  if (typeof temperature !== "number" || !Number.isFinite(temperature) || temperature < 0) {
    throw new Error(`temperature must be a finite number >= 0, got ${temperature}`);
  }
  if (topK !== null && (!Number.isInteger(topK) || topK < 0)) {
    throw new Error(`topK must be an integer >= 0 (0 turns it off), got ${topK}`);
  }
  if (topP !== null && !(typeof topP === "number" && topP > 0 && topP <= 1)) {
    throw new Error(`topP must be in (0, 1], got ${topP}`);
  }
  if (typeof repetitionPenalty !== "number" || !Number.isFinite(repetitionPenalty) || repetitionPenalty <= 0) {
    throw new Error(`repetitionPenalty must be a finite number > 0, got ${repetitionPenalty}`);
  }
  return { temperature, topK, topP, repetitionPenalty };
}

export function checkSeed(seed) {
  if (seed === null || seed === undefined) return null;
  if (!Number.isInteger(seed) || seed < 0 || seed >= SEED_LIMIT) {
    throw new Error(`seed must be an integer from 0 to ${SEED_LIMIT - 1}, got ${seed}`);
  }
  return seed;
}

// A random stream: () -> a float in [0, 1) with 53 random bits. The same seed, the same stream;
// no seed, a fresh one from the browser's entropy.
export function randomStream(seed) {
  let state;
  if (seed === null || seed === undefined) {
    state = crypto.getRandomValues(new Uint32Array(4));
  } else {
    state = new Uint32Array(4);
    let x = seed >>> 0; // splitmix32 spreads one 32-bit seed over the 128-bit state
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      state[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }
  const next = () => { // xoshiro128** (Blackman and Vigna)
    const s = state;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  };
  return () => ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
}

function rotl(x, k) {
  return (x << k) | (x >>> (32 - k));
}

function argmax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

// One token id in [0, logits.length) drawn from `logits` (Float32Array) under `settings`.
export function sampleNext(logits, settings, random, previousIds = []) {
  const n = logits.length;
  const greedy = settings.temperature < GREEDY_BELOW;
  if (greedy && settings.repetitionPenalty === 1 && n) { // the hot case, without a float64 copy
    let best = 0;
    let nan = false;
    for (let i = 0; i < n; i++) {
      const v = logits[i];
      if (v !== v) { nan = true; break; }
      if (v > logits[best]) best = i;
    }
    if (!nan) return best;
  }
  const scores = Float64Array.from(logits, (v) => (v !== v ? -Infinity : v));
  if (settings.repetitionPenalty !== 1) {
    for (const id of new Set(previousIds)) {
      if (id < 0 || id >= n) continue;
      const v = scores[id];
      scores[id] = v > 0 ? v / settings.repetitionPenalty : v * settings.repetitionPenalty;
    }
  }
  const candidates = [];
  for (let i = 0; i < n; i++) if (scores[i] === Infinity) candidates.push(i);
  if (candidates.length) {
    return greedy ? candidates[0] : candidates[Math.min(candidates.length - 1, Math.floor(random() * candidates.length))];
  }
  if (!scores.some(Number.isFinite)) return 0;
  if (greedy) return argmax(scores);
  for (let i = 0; i < n; i++) scores[i] /= settings.temperature;
  const k = settings.topK;
  if (k && k < n) {
    const kth = Float64Array.from(scores).sort()[n - k];
    for (let i = 0; i < n; i++) if (scores[i] < kth) scores[i] = -Infinity;
  }
  const top = scores[argmax(scores)];
  let probs = scores.map((v) => Math.exp(v - top));
  normalise(probs);
  if (settings.topP !== null && settings.topP < 1) {
    const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a] || a - b);
    let cumulative = 0;
    let keep = n;
    for (let r = 0; r < n; r++) { // the first rank whose cumulative probability reaches topP
      cumulative += probs[order[r]];
      if (cumulative >= settings.topP) { keep = r + 1; break; }
    }
    const kept = new Float64Array(n);
    for (const i of order.slice(0, keep)) kept[i] = probs[i];
    probs = kept;
    normalise(probs);
  }
  // Inverse-CDF draw with one uniform number per token.
  const cdf = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) cdf[i] = total += probs[i];
  const x = random() * cdf[n - 1];
  let index = 0;
  while (index < n && cdf[index] <= x) index++;
  return Math.min(index, n - 1);
}

function normalise(values) {
  let sum = 0;
  for (const v of values) sum += v;
  for (let i = 0; i < values.length; i++) values[i] /= sum;
}
