// Character tokenizer, and the dispatch to every tokenizer kind: runtime/tokenizer.py in the
// browser. The JSON is the one the Python runtime reads (textgen.json's "tokenizer"), so the
// same text gives the same ids on both sides (tests/export/test_web.py checks it in Chromium).

import { BPETokenizer } from "./bpe_tokenizer.js";
import { WordTokenizer } from "./word_tokenizer.js";

export const UNK_TEXT = "\ufffd"; // how a char tokenizer's <unk> id decodes

export class CharTokenizer {
  constructor(data) {
    this.chars = data.chars;
    this.unk = Boolean(data.unk);
    this.ids = new Map(this.chars.map((c, i) => [c, i]));
  }

  get vocabSize() {
    return this.chars.length + (this.unk ? 1 : 0);
  }

  encode(text) {
    const ids = [];
    const unknown = new Set();
    for (const c of text) { // code points, as Python iterates a str
      const id = this.ids.get(c);
      if (id !== undefined) ids.push(id);
      else if (this.unk) ids.push(this.chars.length);
      else unknown.add(c);
    }
    if (unknown.size) {
      const shown = [...unknown].sort().slice(0, 10).map((c) => JSON.stringify(c)).join(", ");
      throw new Error(`the text has ${unknown.size} character(s) this model does not know: ${shown}`);
    }
    return ids;
  }

  decode(ids) {
    const piece = this.pieceDecoder();
    return ids.map(piece).join("");
  }

  // Token id -> its text, for one generated sequence (a char needs no context).
  pieceDecoder() {
    return (id) => {
      checkId(id, this.vocabSize);
      return id < this.chars.length ? this.chars[id] : UNK_TEXT;
    };
  }

  // What an empty prompt continues from: a line break when the vocabulary has one, else token 0.
  lineStartIds() {
    const newline = this.chars.indexOf("\n");
    return [newline >= 0 ? newline : 0];
  }
}

export function checkId(id, size) {
  if (!Number.isInteger(id) || id < 0 || id >= size) {
    throw new Error(`token id out of range 0..${size - 1}`);
  }
}

// Rebuild whichever tokenizer `data` describes (runtime/tokenizer.py tokenizer_from_dict).
export function tokenizerFromDict(data) {
  if (data.type === "char") return new CharTokenizer(data);
  if (data.type === "word") return new WordTokenizer(data);
  if (data.type === "bpe") return new BPETokenizer(data);
  throw new Error(`unknown tokenizer type ${JSON.stringify(data.type)} (known: char, word, bpe)`);
}

// Token ids to continue from: the prompt's, or for an empty prompt the start of a line.
export function startIds(tokenizer, prompt) {
  return prompt ? tokenizer.encode(prompt) : tokenizer.lineStartIds();
}
