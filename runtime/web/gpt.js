// The GPT in the browser: runtime/gpt.py's forward call with its key/value cache, over
// onnxruntime-web. The port names come from textgen.json, which the exporter writes from
// runtime/contract.py. The cache is fed as exactly its valid positions (GroupQueryAttention
// files then compute what MultiHeadAttention does, export/onnx_fusion.py); a roll drops the
// oldest positions and keeps counting positions (runtime/window.py).

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
    this.empty = new Float32Array(0);
  }

  emptyPast() {
    const shape = [1, this.nHead, 0, this.headSize];
    return { cache: this.ports.past.map(() => new this.Tensor("float32", this.empty, shape)), position: 0 };
  }

  // Logits of the last of `ids` read after `past`, and the extended past.
  async forward(ids, past) {
    const { Tensor, ports } = this;
    const length = past.cache[0].dims[2];
    const feed = { [ports.input_ids]: new Tensor("int64", BigInt64Array.from(ids, BigInt), [1, ids.length]) };
    ports.past.forEach((name, i) => { feed[name] = past.cache[i]; });
    if (this.rotary) {
      const positions = BigInt64Array.from(ids, (_, k) => BigInt(past.position + k));
      feed[ports.position_ids] = new Tensor("int64", positions, [1, ids.length]);
    }
    if (this.lengthInputs) {
      feed[ports.seqlens_k] = new Tensor("int32", Int32Array.of(length + ids.length - 1), [1]);
      feed[ports.total_sequence_length] = new Tensor("int32", Int32Array.of(length + ids.length), []);
    }
    const out = await this.session.run(feed);
    const logits = out[ports.logits].data;
    const last = logits.subarray(logits.length - this.vocabSize);
    return [last, { cache: ports.present.map((name) => out[name]), position: past.position + ids.length }];
  }

  // The cache without its `drop` oldest positions; the next position is unchanged.
  rolled(past, drop) {
    const cache = past.cache.map((tensor) => {
      const [b, h, p, d] = tensor.dims;
      const keep = p - drop;
      const data = new Float32Array(b * h * keep * d);
      for (let head = 0; head < b * h; head++) {
        data.set(tensor.data.subarray((head * p + drop) * d, (head + 1) * p * d), head * keep * d);
      }
      return new this.Tensor("float32", data, [b, h, keep, d]);
    });
    return { cache, position: past.position };
  }
}
