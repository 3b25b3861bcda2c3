// The page: controls in, text out, through window.textgen only (textgen.js).

import textgen from "./textgen.js";

const $ = (id) => document.getElementById(id);
const number = (id) => Number($(id).value);

function describe(facts) {
  const loss = facts.val_loss === null ? "not measured" : facts.val_loss.toFixed(4);
  const kind = { gpt: "a GPT", stack: "a layer stack", gan: "a GAN generator" }[facts.kind];
  return `${facts.name}: ${kind}, ${facts.parameters.toLocaleString("en")} parameters, ` +
    `${facts.tokenizer} tokenizer (${facts.vocab_size} tokens), trained on ${facts.corpus}, ` +
    `${facts.steps} steps, validation loss ${loss}`;
}

async function generate() {
  const output = $("output");
  output.textContent = "";
  $("status").textContent = "";
  $("generate").disabled = true;
  $("stop").disabled = false;
  try {
    if (textgen.kind === "gan") {
      const seed = $("seed").value === "" ? null : number("seed");
      await textgen.generate({ numSamples: number("numSamples"), seed }, (line) => { output.textContent += line; });
      $("status").textContent = `${textgen.lastRun.newTokens} sentences in ${textgen.lastRun.seconds.toFixed(2)} s`;
    } else {
      const prompt = $("prompt").value;
      const shown = document.createElement("span");
      shown.className = "prompt";
      shown.textContent = prompt;
      const written = document.createTextNode("");
      output.append(shown, written);
      await textgen.generate({
        prompt, maxNewTokens: number("maxNewTokens"), temperature: number("temperature"),
        topK: number("topK"), topP: number("topP"), repetitionPenalty: number("repetitionPenalty"),
        seed: $("seed").value === "" ? null : number("seed"),
      }, (piece) => { written.data += piece; });
      const run = textgen.lastRun;
      $("status").textContent = `${run.newTokens} tokens, ${run.tokensPerSecond.toFixed(1)} tokens/s` +
        (run.stopped ? " (stopped)" : "");
    }
  } catch (error) {
    $("status").textContent = `error: ${error.message}`;
  } finally {
    $("generate").disabled = false;
    $("stop").disabled = true;
  }
}

textgen.ready.then(() => {
  document.body.className = textgen.kind === "gan" ? "gan" : "text";
  document.title = `textgen: ${textgen.facts.name}`;
  $("facts").textContent = describe(textgen.facts);
  $("generate").disabled = false;
  $("generate").addEventListener("click", generate);
  $("stop").addEventListener("click", () => textgen.stop());
}, (error) => {
  $("facts").textContent = `the model did not load: ${error.message}`;
});
