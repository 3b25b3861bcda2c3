// The GPT in the browser: runtime/gpt.py's forward call with its key/value cache, over
// onnxruntime-web. The port names come from textgen.json, which the exporter writes from
// runtime/contract.py and export/web_graph.py.
//
// A GroupQueryAttention graph (rotary positions) keeps its cache as runtime/gpt.py's
// CacheBuffers do: one Float32Array of block_size positions per layer and part, fed as the
// past every call (the graph reads the valid ones, `seqlens_k`), extended with the new
// positions the web graph outputs (`new.{i}.key|value`); fetching the whole present instead
// would copy it out of WebAssembly memory every token (export/web_graph.py). A roll moves the
// kept positions to the front. A learned-position graph (MultiHeadAttention) reads a past of
// exactly its valid positions: the page feeds back the present it fetched.

export class GPT {
  constructor(session, Tensor, settings) {
    this.session = session;
    this.Tensor = Tensor;
    this.ports = settings.ports;
    const c = settings.config;
    this.nHead = c.n_head;
    this.headSize = c.n_embd / c.n_head;
    this.vocabSize = c.vocab_size;
    this.blockSize = c.block_size;
    this.rotary = settings.gpt.rotary;
    this.lengthInputs = settings.gpt.length_inputs;
    this.rollLimit = settings.gpt.roll_limit;
    this.newNames = settings.gpt.new;
    if (this.newNames) {
      const shape = [1, this.nHead, this.blockSize, this.headSize];
      this.buffers = this.ports.past.map(() => new Float32Array(this.nHead * this.blockSize * this.headSize));
      this.bufferTensors = this.buffers.map((buffer) => new Tensor("float32", buffer, shape));
      this.fetches = [this.ports.logits, ...this.newNames];
    }
    // A cached step's small inputs, made once and rewritten in place (onnxruntime-web copies
    // them in at each run), as runtime/gpt.py's CacheBuffers.step binds its own.
    this.step = {
      ids: new BigInt64Array(1), positions: new BigInt64Array(1),
      seqlens: new Int32Array(1), total: new Int32Array(1),
    };
    this.stepFeed = {
      [this.ports.input_ids]: new Tensor("int64", this.step.ids, [1, 1]),
      [this.ports.position_ids]: new Tensor("int64", this.step.positions, [1, 1]),
      [this.ports.seqlens_k]: new Tensor("int32", this.step.seqlens, [1]),
      [this.ports.total_sequence_length]: new Tensor("int32", this.step.total, []),
    };
  }

  // The small inputs of a call of `ids` after `past`: the step's own tensors for one token.
  smallInputs(ids, past) {
    const { Tensor, ports } = this;
    const count = ids.length;
    const feed = {};
    if (count === 1) {
      this.step.ids[0] = BigInt(ids[0]);
      this.step.positions[0] = BigInt(past.position);
      this.step.seqlens[0] = past.length;
      this.step.total[0] = past.length + 1;
      feed[ports.input_ids] = this.stepFeed[ports.input_ids];
      if (this.rotary) feed[ports.position_ids] = this.stepFeed[ports.position_ids];
      if (this.lengthInputs) {
        feed[ports.seqlens_k] = this.stepFeed[ports.seqlens_k];
        feed[ports.total_sequence_length] = this.stepFeed[ports.total_sequence_length];
      }
      return feed;
    }
    feed[ports.input_ids] = new Tensor("int64", BigInt64Array.from(ids, BigInt), [1, count]);
    if (this.rotary) {
      const positions = BigInt64Array.from(ids, (_, k) => BigInt(past.position + k));
      feed[ports.position_ids] = new Tensor("int64", positions, [1, count]);
    }
    if (this.lengthInputs) {
      feed[ports.seqlens_k] = new Tensor("int32", Int32Array.of(past.length + count - 1), [1]);
      feed[ports.total_sequence_length] = new Tensor("int32", Int32Array.of(past.length + count), []);
    }
    return feed;
  }

  // A cache of no positions, the next token at position 0 (buffers: their contents are ignored).
  emptyPast() {
    if (this.newNames) return { length: 0, position: 0 };
    const shape = [1, this.nHead, 0, this.headSize];
    const empty = new Float32Array(0);
    return { cache: this.ports.past.map(() => new this.Tensor("float32", empty, shape)), length: 0, position: 0 };
  }

  // Logits of the last of `ids` read after `past`, and the extended past.
  async forward(ids, past) {
    const { ports } = this;
    const count = ids.length;
    const feed = this.smallInputs(ids, past);
    const cache = this.newNames ? this.bufferTensors : past.cache;
    ports.past.forEach((name, i) => { feed[name] = cache[i]; });
    const next = { length: past.length + count, position: past.position + count };
    let out;
    if (this.newNames) {
      out = await this.session.run(feed, this.fetches);
      this.newNames.forEach((name, i) => this.append(this.buffers[i], out[name].data, past.length, count));
    } else {
      out = await this.session.run(feed);
      next.cache = ports.present.map((name) => out[name]);
    }
    const logits = out[ports.logits].data;
    return [logits.subarray(logits.length - this.vocabSize), next];
  }

  // Write `count` new positions (`values` [count, n_head * head_size]) after `length` valid ones.
  append(buffer, values, length, count) {
    const { nHead, headSize, blockSize } = this;
    for (let t = 0; t < count; t++) {
      for (let h = 0; h < nHead; h++) {
        const from = (t * nHead + h) * headSize;
        buffer.set(values.subarray(from, from + headSize), (h * blockSize + length + t) * headSize);
      }
    }
  }

  // The cache without its `drop` oldest positions; the next position is unchanged.
  rolled(past, drop) {
    const keep = past.length - drop;
    if (this.newNames) {
      const { nHead, headSize, blockSize } = this;
      for (const buffer of this.buffers) {
        for (let h = 0; h < nHead; h++) {
          const start = h * blockSize * headSize;
          buffer.copyWithin(start, start + drop * headSize, start + past.length * headSize);
        }
      }
      return { length: keep, position: past.position };
    }
    const cache = past.cache.map((tensor) => {
      const [b, h, p, d] = tensor.dims;
      const data = new Float32Array(b * h * keep * d);
      for (let head = 0; head < b * h; head++) {
        data.set(tensor.data.subarray((head * p + drop) * d, (head + 1) * p * d), head * keep * d);
      }
      return new this.Tensor("float32", data, [b, h, keep, d]);
    });
    return { cache, length: keep, position: past.position };
  }
}
