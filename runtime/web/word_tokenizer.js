// Word tokenizer: runtime/word_tokenizer.py in the browser. Version 1 is a GAN's sentence
// vocabulary (decoding stops at the first <end>); version 2 (split "lines") a language model's,
// whose <end> is a line break.

import { checkId } from "./tokenizer.js";

export const END_ID = 0;
export const UNK_ID = 1;

const NO_SPACE_BEFORE = new Set([".", ",", ";", ":", "!", "?", ")", "]", "}", "'", "''", "...",
  "n't", "'s", "'ll", "'d", "'re", "'ve", "'m", "--"]);
const NO_SPACE_AFTER = new Set(["(", "[", "{", "``", "--"]);
const QUOTES = new Map([["``", '"'], ["''", '"']]);
// Python's \w (str.isalnum() or "_") and \s (str.isspace()), spelled for JavaScript's engine.
const W = "\\p{L}\\p{N}_";
const S = "\\s\\x1c-\\x1f\\x85";
// runtime/word_tokenizer.py WORD_PATTERN: a word with inner apostrophes, or a run of one mark.
const WORD_PATTERN = new RegExp(`[${W}]+(?:['\\u2019][${W}]+)*|([^${W}${S}])\\1*`, "gu");

export function splitWords(line) {
  return Array.from(line.matchAll(WORD_PATTERN), (m) => m[0]);
}

export class WordTokenizer {
  constructor(data) {
    this.words = data.words;
    this.lowercase = data.lowercase !== false;
    this.split = data.version === 2 ? data.split : null;
    this.ids = new Map(this.words.map((w, i) => [w, i]));
  }

  get vocabSize() {
    return this.words.length;
  }

  fold(word) {
    return this.lowercase ? word.toLowerCase() : word;
  }

  encode(text) {
    if (this.split !== "lines") {
      throw new Error("this word vocabulary holds sentences (a GAN's); it does not encode running text");
    }
    const ids = [];
    const lines = text.split("\n");
    lines.forEach((line, n) => {
      for (const w of splitWords(line)) ids.push(this.ids.get(this.fold(w)) ?? UNK_ID);
      if (n < lines.length - 1) ids.push(END_ID);
    });
    return ids;
  }

  // Readable text: a lines vocabulary's pieces joined; a sentence's words up to <end>.
  decode(ids) {
    const piece = this.pieceDecoder(false);
    return ids.map(piece).join("");
  }

  // Token id -> text piece for one generated sequence: a word with the space before it (none
  // after an opening bracket or before closing punctuation), or a line break. `continuing`:
  // the pieces follow a prompt, so a first word is spaced from it.
  pieceDecoder(continuing = true) {
    let glue = !continuing;
    let ended = false;
    const lines = this.split === "lines";
    return (id) => {
      checkId(id, this.words.length);
      if (ended) return "";
      if (id === END_ID) {
        ended = !lines;
        glue = true;
        return lines ? "\n" : "";
      }
      const word = this.words[id];
      const space = glue || NO_SPACE_BEFORE.has(word) ? "" : " ";
      glue = NO_SPACE_AFTER.has(word);
      return space + (QUOTES.get(word) ?? word);
    };
  }

  lineStartIds() {
    return [END_ID];
  }
}
