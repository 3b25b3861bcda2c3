// Byte-level BPE: runtime/bpe_tokenizer.py in the browser, from the same tokenizer.json data.
// GPT-2's pre-tokenizer pattern splits the text, each piece's UTF-8 bytes are spelled in GPT-2's
// byte alphabet and merged lowest rank first; decoding joins the tokens' bytes, and the
// streaming decoder holds back a character until its last byte has arrived.

import { checkId } from "./tokenizer.js";

const CONTRACTIONS = ["s", "t", "re", "ve", "m", "ll", "d"]; // after "'", in the pattern's order
const LETTER = /^\p{L}$/u;
const NUMBER = /^\p{N}$/u;
const SPACE = /^\p{White_Space}$/u; // the pattern's \s: not Python's isspace, which adds \x1c-\x1f

// GPT-2's map from each byte to a printable character (printable bytes map to themselves).
export function byteToUnicode() {
  const keep = new Set();
  for (let b = 0x21; b <= 0x7e; b++) keep.add(b);
  for (let b = 0xa1; b <= 0xac; b++) keep.add(b);
  for (let b = 0xae; b <= 0xff; b++) keep.add(b);
  const table = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) table.push(String.fromCodePoint(keep.has(b) ? b : 256 + extra++));
  return table;
}

function kind(c) {
  if (SPACE.test(c)) return "S";
  if (LETTER.test(c)) return "L";
  if (NUMBER.test(c)) return "N";
  return "O";
}

// The pieces of GPT-2's pattern, matched leftmost-first as a regex engine does; `text` is
// walked by code point, as Python walks a str.
export function preTokenize(text) {
  const chars = Array.from(text);
  const kinds = chars.map(kind);
  const n = chars.length;
  const pieces = [];
  const startsWith = (word, at) => word.split("").every((c, k) => chars[at + k] === c);
  let i = 0;
  while (i < n) {
    if (chars[i] === "'") {
      const found = CONTRACTIONS.find((c) => startsWith(c, i + 1));
      if (found) {
        pieces.push(chars.slice(i, i + 1 + found.length).join(""));
        i += 1 + found.length;
        continue;
      }
    }
    const start = chars[i] === " " && i + 1 < n && kinds[i + 1] !== "S" ? i + 1 : i;
    const k = kinds[start];
    let j;
    if (k !== "S") { // a run of one kind, with the space before it
      j = start + 1;
      while (j < n && kinds[j] === k) j++;
    } else {
      j = i + 1;
      while (j < n && kinds[j] === "S") j++;
      if (j < n && j - i >= 2) j--; // \s+(?!\S): the run but its last, which goes with what follows
    }
    pieces.push(chars.slice(i, j).join(""));
    i = j;
  }
  return pieces;
}

export class BPETokenizer {
  constructor(data) {
    const model = data.tokenizer.model;
    this.ids = new Map(Object.entries(model.vocab));
    const toByte = new Map(byteToUnicode().map((c, b) => [c, b]));
    this.bytes = new Array(this.ids.size);
    for (const [token, id] of this.ids) this.bytes[id] = Uint8Array.from(Array.from(token), (c) => toByte.get(c));
    this.ranks = new Map();
    (model.merges || []).forEach((merge, rank) => {
      const pair = typeof merge === "string" ? merge.split(" ", 2) : merge;
      const key = pair[0] + " " + pair[1]; // no token holds a space: it is spelled "Ġ"
      if (!this.ranks.has(key)) this.ranks.set(key, rank);
    });
    this.ignoreMerges = Boolean(model.ignore_merges);
    this.alphabet = byteToUnicode();
    this.encoder = new TextEncoder();
    this.cache = new Map();
  }

  get vocabSize() {
    return this.bytes.length;
  }

  merge(piece) {
    const cached = this.cache.get(piece);
    if (cached) return cached;
    let word = Array.from(this.encoder.encode(piece), (b) => this.alphabet[b]);
    if (this.ignoreMerges && this.ids.has(word.join(""))) word = [word.join("")];
    const none = this.ranks.size;
    while (word.length > 1) {
      let best = 0;
      let bestRank = none;
      for (let k = 0; k < word.length - 1; k++) {
        const rank = this.ranks.get(word[k] + " " + word[k + 1]) ?? none;
        if (rank < bestRank) { best = k; bestRank = rank; }
      }
      if (bestRank === none) break;
      const [a, b] = [word[best], word[best + 1]];
      const merged = [];
      for (let k = 0; k < word.length; k++) { // every occurrence of the pair, left to right
        if (k + 1 < word.length && word[k] === a && word[k + 1] === b) {
          merged.push(a + b);
          k++;
        } else {
          merged.push(word[k]);
        }
      }
      word = merged;
    }
    const ids = word.map((t) => this.ids.get(t));
    if (this.cache.size < 100000) this.cache.set(piece, ids);
    return ids;
  }

  encode(text) {
    return preTokenize(text).flatMap((piece) => this.merge(piece));
  }

  tokenBytes(id) {
    checkId(id, this.bytes.length);
    return this.bytes[id];
  }

  // One piece per id joined, then U+FFFD if the ids end inside a character: Python's
  // bytes.decode("utf-8", errors="replace").
  decode(ids) {
    const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
    return ids.map((id) => decoder.decode(this.tokenBytes(id), { stream: true })).join("") + decoder.decode();
  }

  // Token id -> the text it completes: "" while a character's bytes are still arriving.
  pieceDecoder() {
    const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
    return (id) => decoder.decode(this.tokenBytes(id), { stream: true });
  }

  lineStartIds() {
    const ids = this.encode("\n").slice(-1); // the newline byte's token
    return ids.length ? ids : [0];
  }
}
