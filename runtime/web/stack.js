// The layer stack in the browser: runtime/stack.py's two ways of reading the context. A
// windowed stack (position-dependent layers) re-reads its whole window every step from a zero
// state, right-padded to a fixed-length graph; a stepped stack feeds one id at a time and
// carries its RNN/LSTM state, with a window that never fills.

export class Stack {
  constructor(session, Tensor, settings) {
    this.session = session;
    this.Tensor = Tensor;
    this.ports = settings.ports;
    this.vocabSize = settings.config.vocab_size;
    this.blockSize = settings.config.block_size;
    const s = settings.stack;
    this.windowed = s.windowed;
    this.sequenceLength = s.sequence_length;
    this.states = s.state_inputs.map((name, i) => ({ name, out: s.state_outputs[i], size: s.state_sizes[i] }));
  }

  // The window the decode loop slides (runtime/stack.py decode_window).
  decodeWindow(promptLength, maxNewTokens) {
    return this.windowed ? this.blockSize : promptLength + maxNewTokens + 1;
  }

  // A windowed stack's past is the ids of its window; a stepped stack's, its recurrent state.
  emptyPast() {
    return this.windowed ? [] : this.emptyState();
  }

  async run(ids, state) {
    const feed = { [this.ports.input_ids]: new this.Tensor("int64", BigInt64Array.from(ids, BigInt), [1, ids.length]) };
    this.states.forEach(({ name }, i) => { feed[name] = state[i]; });
    const out = await this.session.run(feed);
    return [out[this.ports.logits].data, this.states.map(({ out: name }) => out[name])];
  }

  async forward(ids, past) {
    if (this.windowed) {
      const context = [...past, ...ids];
      const padded = this.sequenceLength ? [...context, ...new Array(this.sequenceLength - context.length).fill(0)] : context;
      const [logits] = await this.run(padded, this.emptyState());
      const at = (context.length - 1) * this.vocabSize;
      return [logits.subarray(at, at + this.vocabSize), context];
    }
    let logits;
    let state = past;
    for (const id of ids) [logits, state] = await this.run([id], state);
    return [logits.subarray(logits.length - this.vocabSize), state];
  }

  emptyState() {
    return this.states.map(({ size }) => new this.Tensor("float32", new Float32Array(size), [1, size]));
  }
}
