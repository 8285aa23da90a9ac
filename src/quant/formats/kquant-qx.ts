// ggml's scale searches for the symmetric k-quants (Q3_K, Q6_K): make_qx_quants
// (rmse_type 1, no importance weights) and make_q3_quants (do_rmse), in ggml's
// float32 order of operations. Every float operation is rounded with
// Math.fround, so the chosen scale and quants match ggml's bit for bit.
//
// Every input, NaN, ±Inf and sums that overflow float32 included, gives
// ggml's bytes: these searches convert floats to ints only through
// nearest_int's bit trick, and compare with MAX/MIN and `>`, so C defines what
// ggml computes there (IEEE arithmetic on Inf and NaN). What JS does
// differently is written out: C's truthiness (a NaN is nonzero: `suml2 ?`,
// `!d`), int8_t stores that wrap. NaN payloads are the one thing C leaves to
// the compiler; see nearestIntBits. Checked against libggml itself:
// test/quant-kquant-ggml.test.ts. WGSL counterpart: shaders/lib/kquant_qx.wgsl.

const f = Math.fround;

/** ggml's GROUP_MAX_EPS: a group whose largest |x| is below it quantizes to zeros. */
export const GROUP_MAX_EPS = f(1e-15);

const scratchF = new Float32Array(1);
const scratchI = new Int32Array(scratchF.buffer);

/**
 * ggml's nearest_int as its bits compute it: adds 1.5 * 2^23 in float32 and
 * reads the low mantissa bits. Round half to even for |x| <= 4194303; beyond
 * that (ggml only asserts in debug builds) the same wrapped value ggml gets
 * (Inf: -4194304). NaN: 0, what the default NaN of x86-64 and ARM (mantissa
 * 0x400000) gives. Every NaN is read as that one: ggml carries other NaN
 * payloads through its arithmetic in whatever operand order its compiler
 * chose, and GPUs do not carry them at all.
 */
export function nearestIntBits(x: number): number {
  if (x !== x) return 0;
  scratchF[0] = x + 12582912; // the Float32Array store rounds the sum to float32
  return (scratchI[0] & 0x007fffff) - 0x00400000;
}

/** C's 0.1f. */
const TENTH = f(0.1);

// Scratch for one group (n <= 32).
const scratchW = new Float32Array(32);
const scratchWX = new Float32Array(32);
const scratchQ = new Int32Array(32);

const clamp = (v: number, lo: number, hi: number): number => (v < lo ? lo : v > hi ? hi : v);

/**
 * ggml's `if (fabsf(v) > amax) { amax = fabsf(v); max = v; }` over x[off ..
 * off+n): the value of largest magnitude (the first, on ties; 0 if all are 0
 * or NaN) and that magnitude.
 */
export function largestMagnitude(x: ArrayLike<number>, off: number, n: number): { max: number; amax: number } {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[off + i]);
    if (ax > amax) {
      amax = ax;
      max = x[off + i];
    }
  }
  return { max, amax };
}

/**
 * make_qx_quants(n, nmax, x + off, L + off, rmse_type = 1, qw): the scale of
 * one group of `n` values; L[off..off+n) receives quants in [0, 2*nmax).
 * Weights qw[qwOff..qwOff+n) when given (the importance-matrix path), else
 * ggml's x*x (qw = NULL).
 */
export function makeQxQuants(
  n: number,
  nmax: number,
  x: ArrayLike<number>,
  off: number,
  L: Int8Array | Uint8Array,
  qw?: ArrayLike<number>,
  qwOff = 0,
): number {
  const { max, amax } = largestMagnitude(x, off, n);
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[off + i] = 0;
    return 0;
  }
  // The weights w = x*x and w*x, as ggml computes them inside its loops.
  const w = scratchW;
  const wx = scratchWX;
  for (let i = 0; i < n; i++) {
    w[i] = qw ? qw[qwOff + i] : f(x[off + i] * x[off + i]);
    wx[i] = f(w[i] * x[off + i]);
  }
  let iscale = f(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const l = clamp(nearestIntBits(f(iscale * x[off + i])), -nmax, nmax - 1);
    L[off + i] = l + nmax;
    sumlx = f(sumlx + f(wx[i] * l));
    suml2 = f(suml2 + f(f(w[i] * l) * l));
  }
  let scale = suml2 !== 0 ? f(sumlx / suml2) : 0; // C's truthiness: a NaN suml2 divides
  let best = f(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = f(-f(nmax + f(TENTH * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const l = clamp(nearestIntBits(f(iscale * x[off + i])), -nmax, nmax - 1);
      sumlx = f(sumlx + f(wx[i] * l));
      suml2 = f(suml2 + f(f(w[i] * l) * l));
    }
    if (suml2 > 0 && f(sumlx * sumlx) > f(best * suml2)) {
      for (let i = 0; i < n; i++) {
        L[off + i] = nmax + clamp(nearestIntBits(f(iscale * x[off + i])), -nmax, nmax - 1);
      }
      scale = f(sumlx / suml2);
      best = f(scale * sumlx);
    }
  }
  return scale;
}

/**
 * make_q3_quants(n, nmax, x + off, L + off, do_rmse = true): the scale of one
 * group of `n` values, refined by ggml's coordinate search; L[off..off+n)
 * receives quants in [0, 2*nmax) (all 0 for an all-zero group).
 */
export function makeQ3Quants(n: number, nmax: number, x: Float32Array, off: number, L: Int8Array | Uint8Array): number {
  const { max, amax } = largestMagnitude(x, off, n);
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[off + i] = 0;
    return 0;
  }
  const iscale = f(-nmax / max);
  const w = scratchW;
  const wx = scratchWX;
  const q = scratchQ;
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[off + i];
    w[i] = f(xi * xi);
    wx[i] = f(w[i] * xi);
    const l = clamp(nearestIntBits(f(iscale * xi)), -nmax, nmax - 1);
    q[i] = l;
    sumlx = f(sumlx + f(wx[i] * l));
    suml2 = f(suml2 + f(f(w[i] * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      let slx = f(sumlx - f(wx[i] * q[i]));
      if (slx > 0) {
        let sl2 = f(suml2 - f(f(w[i] * q[i]) * q[i]));
        const nl = clamp(nearestIntBits(f(f(x[off + i] * sl2) / slx)), -nmax, nmax - 1);
        if (nl !== q[i]) {
          slx = f(slx + f(wx[i] * nl));
          sl2 = f(sl2 + f(f(w[i] * nl) * nl));
          if (sl2 > 0 && f(f(slx * slx) * suml2) > f(f(sumlx * sumlx) * sl2)) {
            q[i] = nl;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (let i = 0; i < n; i++) L[off + i] = q[i] + nmax;
  return suml2 > 0 ? f(sumlx / suml2) : 0;
}
