// The GAN generator in the browser: runtime/gan.py's noise, drawn from the page's seeded
// stream (not numpy's: a seed repeats itself here, not the Python runtime's sentences), one
// graph call for every sentence; the graph chooses each word itself.

const TRUNCATION = 1.5; // textgen_core.models.gan.TRUNCATION

export class GAN {
  constructor(session, Tensor, settings) {
    this.session = session;
    this.Tensor = Tensor;
    this.ports = settings.ports;
    this.config = settings.config;
  }

  // The generator's random inputs for `batch` sentences, from the distribution it was trained with.
  drawNoise(batch, random) {
    const c = this.config;
    const [S, E, B] = [c.seq_len, c.n_embd, c.n_noise_blocks];
    const shapes = {
      [this.ports.global_noise]: c.noise_1d ? [batch, S] : [batch, S, E],
      [this.ports.step_noise]: [batch, S, E],
      [this.ports.block_noise]: [batch, B, S, E],
    };
    const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    const draw = {
      uniform: () => 2 * random() - 1,
      truncated: () => {
        for (;;) { // redraw until the value lies within ±TRUNCATION
          const v = normal();
          if (Math.abs(v) <= TRUNCATION) return v;
        }
      },
      normal,
    }[c.noise_dist || "normal"];
    const feed = {};
    for (const [name, shape] of Object.entries(shapes)) {
      const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, draw);
      feed[name] = new this.Tensor("float32", data, shape);
    }
    if ((c.token_choice || "sample") === "sample") {
      feed[this.ports.uniform] = new this.Tensor("float32", Float32Array.from({ length: batch * S }, random), [batch, S]);
    }
    return feed;
  }

  // Token id rows (arrays of numbers), one per sentence.
  async sampleIds(count, random) {
    const out = await this.session.run(this.drawNoise(count, random));
    const ids = Array.from(out[this.ports.token_ids].data, Number);
    const S = this.config.seq_len;
    return Array.from({ length: count }, (_, row) => ids.slice(row * S, (row + 1) * S));
  }
}
