// matmul / addmm against a float64 CPU reference computed from the exact
// input values (after rounding to their dtype), on shapes that hit the
// kernel's edges: size 1, odd sizes across tile borders, vectors, batches,
// broadcast batches, transposed views, empty dimensions, and chunking forced
// by a small binding limit.
//
// Error bound, per output element, with u the unit roundoff of the output
// dtype (float32 2^-24, float16 2^-11, bfloat16 2^-8):
//     |got - exact| <= ((K + 2) * 2^-24 + u) * (|alpha| * sum_k |a_ik * b_kj| + |beta * c_ij|)
// float32 accumulation of K products contributes the first term (the classic
// gamma_K bound), rounding the result once to the output dtype the second.
// A wrong index or a dropped tile errs by the size of the terms themselves,
// far outside the bound.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { array, close, init, ShapeError, DTypeError, LimitError, type WgArray } from '../src/index.js';
import { addmm, matmul, matrixTranspose, type MatmulDType } from '../src/ops/linalg.js';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../src/runtime/half.js';

beforeAll(async () => {
  await init();
});
afterAll(async () => {
  await close();
});

const UNIT: Record<MatmulDType, number> = { float32: 2 ** -24, float16: 2 ** -11, bfloat16: 2 ** -8 };

/** Deterministic values in [-1, 1) (with some exact zeros), already rounded to `dtype`. */
function values(n: number, seed: number, dtype: MatmulDType): { exact: Float64Array; data: Float32Array | Uint16Array } {
  const exact = new Float64Array(n);
  const data = dtype === 'float32' ? new Float32Array(n) : new Uint16Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const x = s % 17 === 0 ? 0 : s / 2 ** 31 - 1;
    if (dtype === 'float32') {
      data[i] = x;
      exact[i] = data[i];
    } else if (dtype === 'float16') {
      data[i] = f32ToF16Bits(x);
      exact[i] = f16BitsToF32(data[i]);
    } else {
      data[i] = f32ToBf16Bits(x);
      exact[i] = bf16BitsToF32(data[i]);
    }
  }
  return { exact, data };
}

/** A host-side strided tensor: exact values and strides, to read any element. */
interface HostTensor {
  shape: number[];
  strides: number[];
  exact: Float64Array;
  /** Index of element [0, ...] in exact (views). */
  offset?: number;
}

function contiguous(shape: number[]): number[] {
  const st = new Array<number>(shape.length);
  for (let i = shape.length - 1, s = 1; i >= 0; i--) {
    st[i] = s;
    s *= shape[i];
  }
  return st;
}

interface Operand {
  gpu: WgArray;
  host: HostTensor;
}

/**
 * An operand of logical shape `shape`. `transposed`: stored as the transpose
 * of its last two dimensions and handed to matmul as a transposed view.
 */
function operand(shape: number[], dtype: MatmulDType, seed: number, transposed = false): Operand {
  const stored = [...shape];
  if (transposed) [stored[stored.length - 2], stored[stored.length - 1]] = [stored[stored.length - 1], stored[stored.length - 2]];
  const n = stored.reduce((x, y) => x * y, 1);
  const { exact, data } = values(n, seed, dtype);
  const gpu = array(data, { shape: stored, dtype });
  const strides = contiguous(stored);
  if (!transposed) return { gpu, host: { shape, strides, exact } };
  const view = matrixTranspose(gpu);
  gpu.dispose();
  const st = [...strides];
  [st[st.length - 2], st[st.length - 1]] = [st[st.length - 1], st[st.length - 2]];
  return { gpu: view, host: { shape, strides: st, exact } };
}

function at(t: HostTensor, index: number[]): number {
  // index is right-aligned against t's shape; size-1 dimensions broadcast.
  let off = t.offset ?? 0;
  const lead = index.length - t.shape.length;
  for (let d = 0; d < t.shape.length; d++) {
    const i = t.shape[d] === 1 ? 0 : index[lead + d];
    off += i * t.strides[d];
  }
  return t.exact[off];
}

/** Reference alpha * a @ b + beta * c in float64 with NumPy's shape rules; returns values and bound scales. */
function reference(
  a: HostTensor,
  b: HostTensor,
  c: HostTensor | null,
  alpha: number,
  beta: number,
): { shape: number[]; value: Float64Array; magnitude: Float64Array; k: number } {
  const A: HostTensor = a.shape.length === 1 ? { ...a, shape: [1, a.shape[0]], strides: [0, a.strides[0]] } : a;
  const B: HostTensor = b.shape.length === 1 ? { ...b, shape: [b.shape[0], 1], strides: [b.strides[0], 0] } : b;
  const m = A.shape[A.shape.length - 2];
  const k = A.shape[A.shape.length - 1];
  const n = B.shape[B.shape.length - 1];
  const ab = A.shape.slice(0, -2);
  const bb = B.shape.slice(0, -2);
  const nb = Math.max(ab.length, bb.length);
  const batch: number[] = [];
  for (let i = 0; i < nb; i++) {
    const p = ab[ab.length - nb + i] ?? 1;
    batch.push(p === 1 ? (bb[bb.length - nb + i] ?? 1) : p);
  }
  const full = [...batch, m, n];
  const shape = [...batch, ...(a.shape.length === 1 ? [] : [m]), ...(b.shape.length === 1 ? [] : [n])];
  const total = full.reduce((x, y) => x * y, 1);
  const value = new Float64Array(total);
  const magnitude = new Float64Array(total);
  const idx = new Array<number>(full.length).fill(0);
  for (let o = 0; o < total; o++) {
    let rest = o;
    for (let d = full.length - 1; d >= 0; d--) {
      idx[d] = rest % full[d];
      rest = Math.floor(rest / full[d]);
    }
    const bi = idx.slice(0, nb);
    const i = idx[nb];
    const j = idx[nb + 1];
    let sum = 0;
    let mag = 0;
    for (let kk = 0; kk < k; kk++) {
      const p = at(A, [...bi, i, kk]) * at(B, [...bi, kk, j]);
      sum += p;
      mag += Math.abs(p);
    }
    let v = alpha * sum;
    mag = Math.abs(alpha) * mag;
    if (c) {
      // c is aligned with the squeezed result shape.
      const ci = [...bi, ...(a.shape.length === 1 ? [] : [i]), ...(b.shape.length === 1 ? [] : [j])];
      const cv = at(c, ci);
      if (beta !== 0) {
        v += beta * cv;
        mag += Math.abs(beta * cv);
      }
    }
    value[o] = v;
    magnitude[o] = mag;
  }
  return { shape, value, magnitude, k };
}

async function expectClose(got: WgArray, want: ReturnType<typeof reference>, dtype: MatmulDType): Promise<void> {
  expect(got.shape).toEqual(want.shape);
  expect(got.dtype).toBe(dtype);
  const data = await got.toFloat32();
  const tol = (want.k + 2) * 2 ** -24 + UNIT[dtype];
  let worst = { excess: 0, at: -1, got: 0, want: 0, bound: 0 };
  for (let i = 0; i < data.length; i++) {
    const bound = tol * want.magnitude[i] + 1e-30;
    const err = Math.abs(data[i] - want.value[i]);
    if (!(err <= bound) && (worst.at < 0 || err / bound > worst.excess)) {
      worst = { excess: err / bound, at: i, got: data[i], want: want.value[i], bound };
    }
  }
  expect(worst.at, `element ${worst.at}: got ${worst.got}, want ${worst.want} within ${worst.bound}`).toBe(-1);
}

interface Case {
  name: string;
  a: number[];
  b: number[];
  dtypes?: [MatmulDType, MatmulDType];
  out?: MatmulDType;
  transposeA?: boolean;
  transposeB?: boolean;
  bindingBytes?: number;
}

const cases: Case[] = [
  { name: 'size 1', a: [1, 1], b: [1, 1] },
  { name: 'vector . vector', a: [7], b: [7] },
  { name: 'vector @ matrix', a: [5], b: [5, 3] },
  { name: 'matrix @ vector', a: [4, 5], b: [5] },
  { name: 'odd sizes', a: [3, 5], b: [5, 7] },
  { name: 'across tile edges', a: [129, 67], b: [67, 131] },
  { name: 'long depth', a: [9, 1000], b: [1000, 11] },
  { name: 'batched', a: [3, 4, 5], b: [3, 5, 6] },
  { name: 'broadcast batch', a: [2, 1, 4, 5], b: [3, 5, 6] },
  { name: 'batch @ matrix', a: [2, 3, 17, 9], b: [9, 10] },
  { name: 'vector @ batch', a: [6], b: [2, 6, 3] },
  { name: 'transposed a', a: [33, 20], b: [20, 18], transposeA: true },
  { name: 'transposed b', a: [12, 40], b: [40, 35], transposeB: true },
  { name: 'both transposed, batched', a: [2, 15, 9], b: [2, 9, 14], transposeA: true, transposeB: true },
  { name: 'float16 inputs', a: [37, 70], b: [70, 29], dtypes: ['float16', 'float16'] },
  { name: 'bfloat16 inputs', a: [37, 70], b: [70, 29], dtypes: ['bfloat16', 'bfloat16'] },
  { name: 'float16 @ float32 -> float32', a: [10, 21], b: [21, 13], dtypes: ['float16', 'float32'] },
  { name: 'bfloat16 @ float16 -> float32', a: [10, 21], b: [21, 13], dtypes: ['bfloat16', 'float16'] },
  { name: 'float32 -> float16 output, odd rows share words', a: [5, 3], b: [3, 7], out: 'float16' },
  { name: 'float32 -> bfloat16 output', a: [9, 30], b: [30, 11], out: 'bfloat16' },
  { name: 'empty depth gives zeros', a: [3, 0], b: [0, 4] },
  { name: 'empty rows', a: [0, 3], b: [3, 4] },
  { name: 'empty batch', a: [0, 2, 3], b: [3, 4] },
  { name: 'chunked rows (small binding limit)', a: [70, 8], b: [8, 9], bindingBytes: 1024 },
  { name: 'chunked depth (small binding limit)', a: [3, 600], b: [600, 2], bindingBytes: 1024 },
  { name: 'chunked depth, float16 output', a: [3, 600], b: [600, 2], out: 'float16', bindingBytes: 1024 },
  { name: 'batches one by one (small binding limit)', a: [5, 6, 7], b: [5, 7, 8], bindingBytes: 1024 },
  { name: 'transposed and chunked', a: [40, 30], b: [30, 3], transposeA: true, bindingBytes: 2048 },
];

describe('matmul', () => {
  test.each(cases)('$name', async (t) => {
    const [da, db] = t.dtypes ?? ['float32', 'float32'];
    const a = operand(t.a, da, 1, t.transposeA);
    const b = operand(t.b, db, 2, t.transposeB);
    const out = matmul(a.gpu, b.gpu, { dtype: t.out, bindingBytes: t.bindingBytes });
    const dtype = t.out ?? (da === db ? da : 'float32');
    await expectClose(out, reference(a.host, b.host, null, 1, 0), dtype);
    for (const x of [a.gpu, b.gpu, out]) x.dispose();
  });

  test('views: negative strides (reversed rows), odd float16 offsets, a column slice', async () => {
    // storage [9, 13] of float16; a = rows 7..1 reversed, columns 1..11 (offset odd, row stride -13)
    const { exact, data } = values(9 * 13, 11, 'float16');
    const store = array(data, { shape: [9, 13], dtype: 'float16' });
    const a = store.view([7, 11], { strides: [-13, 1], offset: 7 * 13 + 1 });
    const aHost: HostTensor = { shape: [7, 11], strides: [-13, 1], exact, offset: 7 * 13 + 1 };
    // b: every other row of a [22, 5] float32 storage, starting at row 1 ([11, 5], row stride 10)
    const bv = values(22 * 5, 12, 'float32');
    const bStore = array(bv.data, { shape: [22, 5] });
    const b = bStore.view([11, 5], { strides: [10, 1], offset: 5 });
    const bHost: HostTensor = { shape: [11, 5], strides: [10, 1], exact: bv.exact, offset: 5 };
    await expectClose(matmul(a, b), reference(aHost, bHost, null, 1, 0), 'float32');
    // c: a column of a float16 storage, broadcast along rows ([7, 1] at an odd offset)
    const cv = values(7 * 3, 13, 'float16');
    const cStore = array(cv.data, { shape: [7, 3], dtype: 'float16' });
    const c = cStore.view([7, 1], { strides: [3, 1], offset: 1 });
    const cHost: HostTensor = { shape: [7, 1], strides: [3, 1], exact: cv.exact, offset: 1 };
    await expectClose(addmm(c, a, b, { alpha: -1.5, beta: 0.25, dtype: 'float16' }), reference(aHost, bHost, cHost, -1.5, 0.25), 'float16');
  });

  test('inner dimensions that differ name both shapes', () => {
    const a = array(new Float32Array(6), { shape: [2, 3], name: 'x' });
    const b = array(new Float32Array(8), { shape: [4, 2], name: 'w' });
    expect(() => matmul(a, b)).toThrow(ShapeError);
    expect(() => matmul(a, b)).toThrow(/array 'x' \(shape \[2, 3\], float32\) @ array 'w' \(shape \[4, 2\], float32\): a has 3 columns, b has 4 rows/);
  });

  test('batch dimensions that do not broadcast name both shapes', () => {
    const a = array(new Float32Array(2 * 2 * 3), { shape: [2, 2, 3] });
    const b = array(new Float32Array(3 * 3 * 2), { shape: [3, 3, 2] });
    expect(() => matmul(a, b)).toThrow(/batch dimensions \[2\] of .*shape \[2, 2, 3\].* and \[3\] of .*shape \[3, 3, 2\].* do not broadcast/);
  });

  test('integer and scalar operands are refused', () => {
    const i = array(new Int32Array(4), { shape: [2, 2] });
    const f = array(new Float32Array(4), { shape: [2, 2] });
    const s = array(new Float32Array(1), { shape: [] });
    expect(() => matmul(i, f)).toThrow(DTypeError);
    expect(() => matmul(f, s)).toThrow(ShapeError);
  });

  test('a row too large for one binding is a LimitError', () => {
    const a = array(new Float32Array(2 * 300), { shape: [2, 300] });
    const b = array(new Float32Array(300 * 300), { shape: [300, 300] });
    expect(() => matmul(a, b, { bindingBytes: 512 })).toThrow(LimitError);
  });
});

interface AddmmCase extends Case {
  c: number[];
  cDtype?: MatmulDType;
  alpha?: number;
  beta?: number;
}

const addmmCases: AddmmCase[] = [
  { name: 'c + a @ b', a: [6, 5], b: [5, 7], c: [6, 7] },
  { name: 'alpha and beta', a: [6, 5], b: [5, 7], c: [6, 7], alpha: 0.37, beta: -2 },
  { name: 'bias row broadcast', a: [20, 9], b: [9, 11], c: [11] },
  { name: 'column broadcast', a: [20, 9], b: [9, 11], c: [20, 1] },
  { name: 'batched with shared c', a: [3, 8, 9], b: [3, 9, 10], c: [8, 10] },
  {
    name: 'LoRA shape: W(bf16) + s * B @ A, output in W dtype',
    a: [96, 8],
    b: [8, 72],
    c: [96, 72],
    cDtype: 'bfloat16',
    out: 'bfloat16',
    alpha: 2,
  },
  { name: 'float16 c, transposed operands', a: [30, 4], b: [4, 50], c: [30, 50], cDtype: 'float16', out: 'float16', transposeA: true, transposeB: true },
  { name: 'matrix @ vector + vector', a: [7, 5], b: [5], c: [7] },
  { name: 'chunked rows and depth', a: [50, 300], b: [300, 3], c: [50, 3], bindingBytes: 1024, alpha: 0.5 },
];

describe('addmm', () => {
  test.each(addmmCases)('$name', async (t) => {
    const [da, db] = t.dtypes ?? ['float32', 'float32'];
    const a = operand(t.a, da, 3, t.transposeA);
    const b = operand(t.b, db, 4, t.transposeB);
    const c = operand(t.c, t.cDtype ?? 'float32', 5);
    const alpha = t.alpha ?? 1;
    const beta = t.beta ?? 1;
    const out = addmm(c.gpu, a.gpu, b.gpu, { alpha, beta, dtype: t.out, bindingBytes: t.bindingBytes });
    await expectClose(out, reference(a.host, b.host, c.host, alpha, beta), t.out ?? 'float32');
    for (const x of [a.gpu, b.gpu, c.gpu, out]) x.dispose();
  });

  test('beta = 0 ignores c, NaN included', async () => {
    const c = array(new Float32Array([NaN, NaN, NaN, NaN]), { shape: [2, 2] });
    const a = array(new Float32Array([1, 2, 3, 4]), { shape: [2, 2] });
    const b = array(new Float32Array([1, 0, 0, 1]), { shape: [2, 2] });
    const out = addmm(c, a, b, { beta: 0, alpha: 2 });
    expect([...(await out.toFloat32())]).toEqual([2, 4, 6, 8]);
  });

  test('c that does not broadcast to the product names the shapes', () => {
    const c = array(new Float32Array(6), { shape: [3, 2], name: 'bias' });
    const a = array(new Float32Array(4), { shape: [2, 2] });
    const b = array(new Float32Array(4), { shape: [2, 2] });
    expect(() => addmm(c, a, b)).toThrow(/array 'bias' \(shape \[3, 2\], float32\) does not broadcast to the product's shape \[2, 2\]/);
  });
});
