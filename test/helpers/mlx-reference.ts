// An independent model of MLX's quantization, written for the tests from the
// semantics of MLX's CPU backend (mlx/backend/cpu/quantized.cpp: `quantize`,
// `extract_bits`, `_qmm`), not from src/quant/mlx-host.ts: float32 arithmetic through a
// Float32Array slot, MLX's own byte layouts (uint32 words with LSB-first fields
// for 2/4/8 bits; 3-byte packs of 8 x 3 bits, 5-byte packs of 8 x 5 bits and
// 3-byte packs of 4 x 6 bits for the others), and MLX's `scale * q + bias`.

const slot = new Float32Array(1);
/** The float32 nearest x (one rounding, as a C float expression). */
function r32(x: number): number {
  slot[0] = x;
  return slot[0];
}

/** C's rint under the default rounding mode: nearest, ties to even. */
function rintEven(x: number): number {
  const fl = Math.floor(x);
  const d = x - fl;
  if (d < 0.5) return fl;
  if (d > 0.5) return fl + 1;
  return fl % 2 === 0 ? fl : fl + 1;
}

export interface RefAffine {
  /** The packed weights as MLX lays out their bytes. */
  bytes: Uint8Array;
  /** float32 scale and bias of each group, before the cast to the weights' dtype. */
  scales: number[];
  biases: number[];
  /** The integer codes, one per element. */
  codes: number[];
}

/** MLX affine quantization of float32 values `w` (whole groups). */
export function refAffineQuantize(w: ArrayLike<number>, groupSize: number, bits: number): RefAffine {
  const levels = 2 ** bits - 1;
  const codes: number[] = [];
  const scales: number[] = [];
  const biases: number[] = [];
  for (let start = 0; start < w.length; start += groupSize) {
    const g = Array.from({ length: groupSize }, (_, k) => w[start + k]);
    const hi = g.reduce((a, b) => (b > a ? b : a), -Infinity);
    const lo = g.reduce((a, b) => (b < a ? b : a), Infinity);
    // The end farther from zero anchors the grid; the scale points from it inward.
    const anchorLow = Math.abs(lo) > Math.abs(hi);
    let step = r32(r32(hi - lo) / levels);
    if (step < r32(1e-7)) step = r32(1e-7);
    let scale = anchorLow ? step : -step;
    const edge = anchorLow ? lo : hi;
    const q0 = rintEven(r32(edge / scale));
    let bias = 0;
    if (q0 !== 0) {
      scale = r32(edge / q0);
      bias = edge;
    }
    for (const x of g) {
      let q = rintEven(r32(r32(x - bias) / scale));
      q = q < 0 ? 0 : q > levels ? levels : q;
      codes.push(q);
    }
    scales.push(scale);
    biases.push(bias);
  }
  return { bytes: refPack(codes, bits), scales, biases, codes };
}

/** MLX's byte layout of `codes`. */
export function refPack(codes: number[], bits: number): Uint8Array {
  const out: number[] = [];
  if (bits === 2 || bits === 4 || bits === 8) {
    const perWord = 32 / bits;
    for (let i = 0; i < codes.length; i += perWord) {
      let word = 0n;
      for (let k = 0; k < perWord; k++) word |= BigInt(codes[i + k]) << BigInt(k * bits);
      for (let b = 0; b < 4; b++) out.push(Number((word >> BigInt(8 * b)) & 0xffn));
    }
  } else {
    const perPack = bits === 6 ? 4 : 8;
    const packBytes = bits === 5 ? 5 : 3;
    for (let i = 0; i < codes.length; i += perPack) {
      let v = 0n;
      for (let k = 0; k < perPack; k++) v |= BigInt(codes[i + k]) << BigInt(k * bits);
      for (let b = 0; b < packBytes; b++) out.push(Number((v >> BigInt(8 * b)) & 0xffn));
    }
  }
  return Uint8Array.from(out);
}

/** MLX's extract_bits for 3/5/6 bits and the shift loop for 2/4/8: the codes of packed bytes. */
export function refUnpack(bytes: Uint8Array, count: number, bits: number): number[] {
  const codes: number[] = [];
  if (bits === 2 || bits === 4 || bits === 8) {
    for (const byte of bytes) {
      let v = byte;
      for (let k = 0; k < 8 / bits; k++) {
        codes.push(v & ((1 << bits) - 1));
        v >>= bits;
      }
    }
  } else if (bits === 3) {
    for (let p = 0; p < bytes.length; p += 3) {
      const [a, b, c] = [bytes[p], bytes[p + 1], bytes[p + 2]];
      codes.push(a & 7, (a & 0x38) >> 3, ((a & 0xc0) >> 6) + ((b & 1) << 2), (b & 0xe) >> 1, (b & 0x70) >> 4, ((b & 0x80) >> 7) + ((c & 3) << 1), (c & 0x1c) >> 2, (c & 0xe0) >> 5);
    }
  } else if (bits === 5) {
    for (let p = 0; p < bytes.length; p += 5) {
      const [a, b, c, d, e] = [bytes[p], bytes[p + 1], bytes[p + 2], bytes[p + 3], bytes[p + 4]];
      codes.push(a & 0x1f, ((a & 0xe0) >> 5) + ((b & 3) << 3), (b & 0x7c) >> 2, ((b & 0x80) >> 7) + ((c & 0xf) << 1), ((c & 0xf0) >> 4) + ((d & 1) << 4), (d & 0x3e) >> 1, ((d & 0xc0) >> 6) + ((e & 7) << 2), (e & 0xf8) >> 3);
    }
  } else {
    for (let p = 0; p < bytes.length; p += 3) {
      const [a, b, c] = [bytes[p], bytes[p + 1], bytes[p + 2]];
      codes.push(a & 0x3f, ((a >> 6) & 3) + ((b & 0xf) << 2), ((b >> 4) & 0xf) + ((c & 3) << 4), (c >> 2) & 0x3f);
    }
  }
  return codes.slice(0, count);
}

/** MLX's decoding `scale * q + bias` in float32, element by element. */
export function refAffineDequantize(bytes: Uint8Array, scales: ArrayLike<number>, biases: ArrayLike<number>, groupSize: number, bits: number): Float32Array {
  const codes = refUnpack(bytes, scales.length * groupSize, bits);
  return Float32Array.from(codes, (q, i) => r32(r32(scales[Math.floor(i / groupSize)] * q) + biases[Math.floor(i / groupSize)]));
}

const E2M1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6];

/** MLX's mxfp4 value of a code and E8M0 scale byte. */
export function refMxfp4Value(code: number, e: number): number {
  const mag = E2M1[code & 7] * (e === 0 ? 2 ** -127 : 2 ** (e - 127));
  return code & 8 ? -mag : mag;
}

/** MLX mxfp4 quantization of float32 values: codes and scale bytes (std::log2 in float, std::round). */
export function refMxfp4Quantize(w: ArrayLike<number>): { codes: number[]; scales: number[] } {
  const codes: number[] = [];
  const scales: number[] = [];
  for (let s = 0; s < w.length; s += 32) {
    let amax = 0;
    for (let k = 0; k < 32; k++) amax = Math.max(amax, Math.abs(w[s + k]));
    const x = r32(amax / 6);
    let e: number;
    if (!Number.isFinite(x)) e = 255;
    else {
      const le = r32(Math.log2(x));
      let n = le < 0 ? -Math.round(-le) : Math.round(le);
      if (n < -127) n = -127;
      if (n > 127) n = 127;
      e = n + 127;
    }
    scales.push(e);
    const scale = e === 0 ? 2 ** -127 : 2 ** (e - 127);
    for (let k = 0; k < 32; k++) {
      const v = r32(w[s + k] / scale);
      const sign = v < 0 || Object.is(v, -0) ? 8 : 0;
      const a = Math.abs(v);
      const c = a > 5 ? 7 : a >= 3.5 ? 6 : a > 2.5 ? 5 : a >= 1.75 ? 4 : a > 1.25 ? 3 : a >= 0.75 ? 2 : a > 0.25 ? 1 : 0;
      codes.push(c | sign);
    }
  }
  return { codes, scales };
}

/** ggml's decoding of Q4_1 / Q5_1 blocks (dequantize_row_q4_1 / _q5_1): d * q + m in float32. */
export function refGgmlDequantize(type: 'q4_1' | 'q5_1' | 'mxfp4', blocks: Uint8Array, f16: (bits: number) => number): Float32Array {
  const size = type === 'q4_1' ? 20 : type === 'q5_1' ? 24 : 17;
  const out: number[] = [];
  const dv = new DataView(blocks.buffer, blocks.byteOffset, blocks.byteLength);
  for (let p = 0; p < blocks.length; p += size) {
    if (type === 'mxfp4') {
      // ggml: kvalues_mxfp4 (doubled E2M1 values as int8: code 8 is +0, not -0) * 2^(e - 128)
      const KV = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];
      const e = blocks[p];
      const lo: number[] = [];
      const hi: number[] = [];
      for (let j = 0; j < 16; j++) {
        lo.push(r32(KV[blocks[p + 1 + j] & 15] * 2 ** (e - 128)));
        hi.push(r32(KV[blocks[p + 1 + j] >> 4] * 2 ** (e - 128)));
      }
      out.push(...lo, ...hi);
      continue;
    }
    const d = f16(dv.getUint16(p, true));
    const m = f16(dv.getUint16(p + 2, true));
    const qh = type === 'q5_1' ? dv.getUint32(p + 4, true) : 0;
    const qs = p + (type === 'q5_1' ? 8 : 4);
    const lo: number[] = [];
    const hi: number[] = [];
    for (let j = 0; j < 16; j++) {
      const a = (blocks[qs + j] & 15) | (((qh >>> j) & 1) << 4);
      const b = (blocks[qs + j] >> 4) | (((qh >>> (j + 16)) & 1) << 4);
      lo.push(r32(r32(d * a) + m));
      hi.push(r32(r32(d * b) + m));
    }
    out.push(...lo, ...hi);
  }
  return Float32Array.from(out);
}
