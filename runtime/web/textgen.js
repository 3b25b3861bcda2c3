// window.textgen: the browser runtime's one API, which the page itself uses and an embedding
// site or a test drives without clicking.
//
//   await textgen.ready                          // the model is loaded (rejects with the reason)
//   await textgen.generate({prompt, maxNewTokens, temperature, topK, topP, repetitionPenalty,
//                           seed, signal}, onPiece)   // the text after the prompt
//   await textgen.generate({numSamples, seed}, onPiece)  // a GAN: one sentence per line
//   textgen.stop()                               // ends the running generation early
//   textgen.encode(text) / textgen.decode(ids)   // the tokenizer
//   textgen.facts, textgen.kind, textgen.lastRun // what the page shows
//
// onPiece(piece, tokenId) is called once per generated token (a GAN: once per sentence, with
// its line); a piece may be "" while a character's bytes are still arriving.

import * as ort from "./ort.wasm.min.mjs";
import { decode } from "./decode.js";
import { GAN } from "./gan.js";
import { GPT } from "./gpt.js";
import { checkSeed, checkSettings, randomStream } from "./sampler.js";
import { Stack } from "./stack.js";
import { startIds, tokenizerFromDict } from "./tokenizer.js";

const SETTINGS_FILE = "textgen.json";
const MODELS = { gpt: GPT, stack: Stack, gan: GAN };
const YIELD_EVERY_MS = 30; // hand the page its event loop this often: repaints, the Stop button

let settings;
let tokenizer;
let model;
let stopRequested = false;
let queue = Promise.resolve(); // one generation at a time: the session runs one call at a time

async function load() {
  const base = new URL("./", import.meta.url);
  const response = await fetch(new URL(SETTINGS_FILE, base));
  if (!response.ok) throw new Error(`cannot load ${SETTINGS_FILE} (HTTP ${response.status})`);
  settings = await response.json();
  if (settings.format !== "textgen-web" || settings.version !== 1) {
    throw new Error(`${SETTINGS_FILE} is not a textgen web page's settings (version 1); export the page again`);
  }
  tokenizer = tokenizerFromDict(settings.tokenizer);
  ort.env.wasm.wasmPaths = base.href;
  ort.env.wasm.numThreads = 1; // one thread, as the speed comparison with the Python runtime
  const session = await ort.InferenceSession.create(new URL(settings.model_file, base).href, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
  });
  model = new MODELS[settings.kind](session, ort.Tensor, settings);
  textgen.kind = settings.kind;
  textgen.facts = settings.facts;
}

const breathe = () => new Promise((resolve) => {
  const channel = new MessageChannel(); // unlike setTimeout, not clamped to 4 ms
  channel.port1.onmessage = () => resolve();
  channel.port2.postMessage(null);
});

function run(job) {
  const result = queue.then(job);
  queue = result.catch(() => {});
  return result;
}

async function generateText(options, onPiece) {
  const { prompt = "", maxNewTokens = 200, seed = null, signal = null, numSamples = 1 } = options;
  if (numSamples !== 1) throw new Error("the page samples one sequence at a time; numSamples is for a GAN");
  if (typeof prompt !== "string") throw new Error("prompt must be a string");
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) {
    throw new Error(`maxNewTokens must be a positive integer, got ${maxNewTokens}`);
  }
  const sampling = checkSettings(options);
  const ids = startIds(tokenizer, prompt);
  const piece = tokenizer.pieceDecoder();
  const random = randomStream(checkSeed(seed));
  const gpt = settings.kind === "gpt";
  const blockSize = gpt ? model.blockSize : model.decodeWindow(ids.length, maxNewTokens);
  const tokens = decode(ids, {
    blockSize, model, settings: sampling, maxNewTokens, random,
    rolls: gpt && model.rotary, rollLimit: gpt ? model.rollLimit : 0,
  });
  let text = "";
  let count = 0;
  let first = 0;
  const start = performance.now();
  let rested = start;
  for await (const token of tokens) {
    const now = performance.now();
    if (count++ === 0) first = now;
    const part = piece(token);
    text += part;
    if (onPiece) onPiece(part, token);
    if (now - rested > YIELD_EVERY_MS) {
      await breathe();
      rested = performance.now();
    }
    if (stopRequested || (signal && signal.aborted)) break;
  }
  const end = performance.now();
  // Decode speed: the tokens after the first, whose time includes the prompt's prefill.
  textgen.lastRun = {
    promptTokens: ids.length, newTokens: count, seconds: (end - start) / 1000,
    tokensPerSecond: count > 1 ? (count - 1) / ((end - first) / 1000) : 0,
    stopped: count < maxNewTokens,
  };
  return text;
}

async function drawSentences(options, onPiece) {
  const { numSamples = 1, seed = null, temperature = null, prompt = "" } = options;
  if (prompt) throw new Error("a GAN writes sentences from noise and takes no prompt; give numSamples");
  if (temperature !== null && temperature !== 1) {
    throw new Error("a GAN samples each word inside the model, from its softmax at temperature 1 (or by argmax), and takes no other temperature");
  }
  if (!Number.isInteger(numSamples) || numSamples < 1) {
    throw new Error(`numSamples must be a positive integer, got ${numSamples}`);
  }
  const random = randomStream(checkSeed(seed));
  const start = performance.now();
  const rows = await model.sampleIds(numSamples, random);
  const lines = rows.map((row) => tokenizer.decode(row));
  lines.forEach((line, i) => { if (onPiece) onPiece(line + "\n", i); });
  textgen.lastRun = { newTokens: numSamples, seconds: (performance.now() - start) / 1000, stopped: false };
  return lines.join("\n");
}

const textgen = {
  ready: null,
  kind: null,
  facts: null,
  lastRun: null,
  generate(options = {}, onPiece = null) {
    return run(async () => {
      await textgen.ready;
      stopRequested = false;
      return settings.kind === "gan" ? drawSentences(options, onPiece) : generateText(options, onPiece);
    });
  },
  stop() {
    stopRequested = true;
  },
  encode(text) {
    return tokenizer.encode(text);
  },
  decode(ids) {
    return tokenizer.decode(Array.from(ids));
  },
};
textgen.ready = load().then(() => textgen);
window.textgen = textgen;

export default textgen;
