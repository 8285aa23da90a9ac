// Seeded random numbers on the CPU, for data that must be the same on every
// run and machine: the demo's synthetic model, test inputs and bench data. The
// GPU's counter-based generator is src/ops/random.ts.

/** mulberry32: a small seeded PRNG (uniform floats in [0, 1)). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n Normal(mean, std) values from a seed (Box-Muller over mulberry32). */
export function seededNormals(n: number, seed: number, std: number, mean = 0): Float32Array {
  const u = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - u()));
    const th = 2 * Math.PI * u();
    out[i] = mean + std * r * Math.cos(th);
    if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(th);
  }
  return out;
}
