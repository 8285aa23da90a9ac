// Reductions against a float64 reference on the CPU, over every kind of axis
// set (all, one, several, negative, none), with keepdims, on contiguous and
// strided inputs. Bounds:
//   max, min, argmax, argmin, integer sums: exact
//   float sums: |error| <= 8 * 2^-24 * sum(|x|) (compensated; a plain float32
//     loop can be off by n * 2^-24 * sum(|x|)), plus rounding to the output dtype
//   mean: the same, divided by n; prod: n * 2^-23 relative
//   var/std: 2^-18 relative + 2^-22 * mean(x^2) absolute
import { describe, expect, test } from 'vitest';
import {
  argmax,
  argmin,
  array,
  type Device,
  fromBytes,
  max,
  mean,
  min,
  prod,
  std,
  sum,
  transpose,
  variance,
  full,
  type Axes,
  type DType,
  type TypedArray,
  type WgArray,
} from '../src/index.js';
import { randomRaw, rng, roundTo, size, unravel, valuesOf, encodeValue } from './helpers/ops-ref.js';
import { live, nums, setUpOpsTests, small } from './helpers/ops-setup.js';

setUpOpsTests();

const next = rng(4242);

function input(dtype: DType, shape: number[], device?: Device): { a: WgArray; values: Float64Array } {
  const raw = randomRaw(dtype, size(shape), next, 10);
  if (dtype.includes('int')) for (let i = 0; i < raw.length; i++) raw[i] = encodeValue(dtype, Math.round((next() * 2 - 1) * 100));
  const a = fromBytes(raw, shape, dtype, device);
  live.push(a);
  return { a, values: valuesOf(dtype, raw) };
}

type Op = 'sum' | 'mean' | 'max' | 'min' | 'argmax' | 'argmin' | 'prod' | 'var' | 'std';

/** Groups of reduced elements per output, in row-major order of the kept dims. */
function groups(shape: number[], axes: number[]): number[][] {
  const keptShape = shape.map((n, i) => (axes.includes(i) ? 1 : n));
  const out: number[][] = Array.from({ length: size(keptShape) }, () => []);
  for (let i = 0; i < size(shape); i++) {
    const idx = unravel(shape, i);
    let k = 0;
    for (let d = 0; d < shape.length; d++) k = k * keptShape[d] + (axes.includes(d) ? 0 : idx[d]);
    out[k].push(i);
  }
  return out;
}

function reference(op: Op, xs: number[], ddof = 0): number {
  const n = xs.length;
  switch (op) {
    case 'sum':
      return xs.reduce((a, b) => a + b, 0);
    case 'prod':
      return xs.reduce((a, b) => a * b, 1);
    case 'mean':
      return n ? xs.reduce((a, b) => a + b, 0) / n : NaN;
    case 'max':
      return xs.some(Number.isNaN) ? NaN : Math.max(...xs);
    case 'min':
      return xs.some(Number.isNaN) ? NaN : Math.min(...xs);
    case 'argmax':
    case 'argmin': {
      let best = 0;
      for (let i = 1; i < n; i++) {
        if (Number.isNaN(xs[best])) break;
        if (Number.isNaN(xs[i]) || (op === 'argmax' ? xs[i] > xs[best] : xs[i] < xs[best])) best = i;
      }
      return best;
    }
    case 'var':
    case 'std': {
      if (!n) return NaN;
      const m = xs.reduce((a, b) => a + b, 0) / n;
      const v = xs.reduce((a, b) => a + (b - m) ** 2, 0) / (n - ddof);
      return op === 'var' ? v : Math.sqrt(v);
    }
  }
}

function bound(op: Op, xs: number[], want: number, dtype: DType): number {
  const abs = xs.reduce((a, b) => a + Math.abs(b), 0);
  const out = dtype === 'float16' ? 2 ** -10 : dtype === 'bfloat16' ? 2 ** -7 : 0;
  const rounding = out * Math.abs(want);
  switch (op) {
    case 'sum':
      return 8 * 2 ** -24 * abs + rounding;
    case 'mean':
      return (8 * 2 ** -24 * abs) / Math.max(1, xs.length) + rounding;
    case 'prod':
      return xs.length * 2 ** -23 * Math.abs(want) + rounding;
    case 'var':
    case 'std': {
      const sq = xs.reduce((a, b) => a + b * b, 0) / Math.max(1, xs.length);
      return 2 ** -18 * Math.abs(want) + 2 ** -22 * (op === 'std' ? Math.sqrt(sq) : sq) + rounding;
    }
    default:
      return 0;
  }
}

const run: Record<Op, (a: WgArray, axis: Axes, keepdims: boolean, ddof?: number) => WgArray> = {
  sum: (a, axis, keepdims) => sum(a, axis, { keepdims }),
  mean: (a, axis, keepdims) => mean(a, axis, { keepdims }),
  prod: (a, axis, keepdims) => prod(a, axis, { keepdims }),
  max: (a, axis, keepdims) => max(a, axis, { keepdims }),
  min: (a, axis, keepdims) => min(a, axis, { keepdims }),
  argmax: (a, axis, keepdims) => argmax(a, axis as number | undefined, { keepdims }),
  argmin: (a, axis, keepdims) => argmin(a, axis as number | undefined, { keepdims }),
  var: (a, axis, keepdims, ddof) => variance(a, axis, { keepdims, ddof }),
  std: (a, axis, keepdims, ddof) => std(a, axis, { keepdims, ddof }),
};

function outDType(op: Op, dtype: DType): DType {
  const kind = dtype.startsWith('float') || dtype === 'bfloat16' ? 'float' : dtype.startsWith('u') ? 'uint' : 'int';
  if (op === 'argmax' || op === 'argmin') return 'uint32';
  if (op === 'max' || op === 'min') return dtype;
  if (op === 'sum' || op === 'prod') return kind === 'float' ? dtype : kind === 'uint' ? 'uint32' : 'int32';
  return kind === 'float' ? dtype : 'float32';
}

interface Case {
  op: Op;
  dtype: DType;
  shape: number[];
  axis: Axes;
  keepdims?: boolean;
  transposed?: boolean;
  ddof?: number;
  device?: 'small';
}

const cases: Case[] = [
  { op: 'sum', dtype: 'float32', shape: [7, 9], axis: 1 },
  { op: 'sum', dtype: 'float32', shape: [7, 9], axis: 0, keepdims: true },
  { op: 'sum', dtype: 'float16', shape: [3, 1, 5, 4], axis: [0, 2] },
  { op: 'sum', dtype: 'bfloat16', shape: [300], axis: undefined },
  { op: 'sum', dtype: 'int8', shape: [6, 50], axis: -1 },
  { op: 'sum', dtype: 'uint16', shape: [4, 3, 2], axis: [1, 2], keepdims: true },
  { op: 'sum', dtype: 'float32', shape: [5, 6], axis: [], transposed: true },
  { op: 'sum', dtype: 'float32', shape: [2, 3, 4], axis: 1, transposed: true },
  { op: 'sum', dtype: 'float32', shape: [0, 3], axis: 0 },
  { op: 'sum', dtype: 'float32', shape: [20000], axis: 0 },
  { op: 'mean', dtype: 'float32', shape: [9, 33], axis: 1 },
  { op: 'mean', dtype: 'int16', shape: [9, 33], axis: 0, keepdims: true },
  { op: 'mean', dtype: 'float16', shape: [4, 5, 6], axis: [2, 0], transposed: true },
  { op: 'mean', dtype: 'float32', shape: [3, 0], axis: 1 },
  { op: 'prod', dtype: 'float32', shape: [5, 8], axis: 1 },
  { op: 'prod', dtype: 'int32', shape: [4, 3], axis: 0 },
  { op: 'max', dtype: 'float32', shape: [11, 13], axis: 0 },
  { op: 'max', dtype: 'bfloat16', shape: [2, 3, 70], axis: [0, 2], keepdims: true },
  { op: 'max', dtype: 'int8', shape: [300], axis: undefined },
  { op: 'min', dtype: 'uint8', shape: [17, 5], axis: 1, transposed: true },
  { op: 'min', dtype: 'float16', shape: [6, 7], axis: -2 },
  { op: 'argmax', dtype: 'float32', shape: [8, 301], axis: 1 },
  { op: 'argmax', dtype: 'int16', shape: [40, 6], axis: 0 },
  { op: 'argmax', dtype: 'uint8', shape: [3, 4, 5], axis: undefined },
  { op: 'argmin', dtype: 'float16', shape: [9, 10], axis: 1, keepdims: true, transposed: true },
  { op: 'argmin', dtype: 'int32', shape: [5000], axis: 0 },
  { op: 'var', dtype: 'float32', shape: [6, 40], axis: 1 },
  { op: 'var', dtype: 'float32', shape: [6, 40], axis: 0, ddof: 1 },
  { op: 'var', dtype: 'int8', shape: [3, 4, 5], axis: [0, 2], keepdims: true },
  { op: 'std', dtype: 'bfloat16', shape: [5, 12], axis: undefined },
  { op: 'std', dtype: 'float32', shape: [7, 8], axis: 0, transposed: true, ddof: 1 },
  // Cut into 4 KiB windows: multi-pass partials, strided windows, indices carried between passes.
  { op: 'sum', dtype: 'float32', shape: [300, 70], axis: 0, device: 'small' },
  { op: 'sum', dtype: 'float16', shape: [50, 400], axis: 1, device: 'small' },
  { op: 'argmax', dtype: 'float32', shape: [5000], axis: 0, device: 'small' },
  { op: 'argmin', dtype: 'int8', shape: [40, 90], axis: 0, transposed: true, device: 'small' },
  { op: 'max', dtype: 'uint16', shape: [3, 3000], axis: 1, device: 'small' },
  { op: 'var', dtype: 'float32', shape: [30, 200], axis: 1, transposed: true, device: 'small' },
  // One workgroup per row, 70000 rows: a 2-D dispatch.
  { op: 'sum', dtype: 'float32', shape: [70000, 65], axis: 1 },
];

function name(c: Case): string {
  const ax = c.axis === undefined ? 'all' : JSON.stringify(c.axis);
  return `${c.op} ${c.dtype} [${c.shape}] axis ${ax}${c.keepdims ? ' keepdims' : ''}${c.transposed ? ' of a transposed view' : ''}${c.ddof ? ` ddof ${c.ddof}` : ''}${c.device ? ' (4 KiB windows)' : ''}`;
}

test.each(cases.map((c) => [name(c), c] as const))('%s', async (_, c) => {
  const x = input(c.dtype, c.shape, c.device === 'small' ? small : undefined);
  // A transposed case reduces the transposed view of a [reversed shape] array.
  let view = x.a;
  let shape = c.shape;
  let values = x.values;
  if (c.transposed) {
    const src = input(c.dtype, [...c.shape].reverse(), c.device === 'small' ? small : undefined);
    view = transpose(src.a);
    live.push(view);
    values = new Float64Array(size(shape));
    const rev = [...shape].reverse();
    for (let i = 0; i < values.length; i++) {
      const idx = unravel(shape, i).reverse();
      let k = 0;
      for (let d = 0; d < rev.length; d++) k = k * rev[d] + idx[d];
      values[i] = src.values[k];
    }
  }
  const nd = shape.length;
  const axes = c.axis === undefined || c.axis === null ? [...Array(nd).keys()] : (typeof c.axis === 'number' ? [c.axis] : [...c.axis]).map((a) => (a < 0 ? a + nd : a));
  const out = run[c.op](view, c.axis, !!c.keepdims, c.ddof);
  const wantShape = c.keepdims ? shape.map((n, i) => (axes.includes(i) ? 1 : n)) : c.op.startsWith('arg') && c.axis === undefined ? [] : shape.filter((_, i) => !axes.includes(i));
  expect(out.shape).toEqual(wantShape);
  expect(out.dtype).toBe(outDType(c.op, c.dtype));
  const got = valuesOf(out.dtype, (await out.data()) as TypedArray as ArrayLike<number>);
  out.dispose();
  const g = groups(shape, axes);
  expect(got.length).toBe(g.length);
  for (let k = 0; k < g.length; k++) {
    const xs = g[k].map((i) => values[i]);
    const exact = reference(c.op, xs, c.ddof);
    const isInt = out.dtype.includes('int');
    const want = isInt || c.op.startsWith('arg') ? exact : roundTo(out.dtype, exact);
    const tol = bound(c.op, xs, want, out.dtype);
    const ok = Number.isNaN(want) ? Number.isNaN(got[k]) : Math.abs(got[k] - want) <= tol;
    if (!ok) throw new Error(`output ${k}: got ${got[k]}, want ${want} (bound ${tol}) over ${xs.length} elements`);
  }
});

describe('edge cases', () => {
  test('compensated summation keeps what a float32 loop drops', async () => {
    const n = 1 << 20;
    const x = new Float32Array(n).fill(1e-8);
    x[0] = 1;
    const got = (await nums(sum(array(x))))[0];
    const exact = 1 + (n - 1) * Math.fround(1e-8);
    let naive = 0;
    for (const v of x) naive = Math.fround(naive + v);
    expect(Math.abs(naive - exact)).toBeGreaterThan(0.005);
    // Within one unit in the last place: the compensation survives the shader compiler.
    expect(Math.abs(got - exact)).toBeLessThanOrEqual(2 ** -23 * exact);
  });

  test('NaN: max/min propagate it, argmax/argmin return its first index', async () => {
    const x = array([1, NaN, 5, NaN, -2], { dtype: 'float32' });
    expect((await max(x).data())[0]).toBeNaN();
    expect((await min(x).data())[0]).toBeNaN();
    expect((await nums(argmax(x)))).toEqual([1]);
    expect((await nums(argmin(x)))).toEqual([1]);
  });

  test('ties: the first index wins, also across partials of a long row', async () => {
    const n = 100_000;
    const x = new Int32Array(n);
    x[70_000] = 9;
    x[90_000] = 9;
    x[3] = -1;
    x[99_999] = -1;
    expect((await nums(argmax(array(x))))).toEqual([70_000]);
    expect((await nums(argmin(array(x))))).toEqual([3]);
  });

  test('empty reductions: sum 0, prod 1, mean NaN, max an error', async () => {
    const x = array(new Float32Array(0), { shape: [2, 0] });
    expect((await nums(sum(x, 1)))).toEqual([0, 0]);
    expect((await nums(prod(x, 1)))).toEqual([1, 1]);
    expect((await nums(mean(x, 1)))).toEqual([NaN, NaN]);
    expect(() => max(x, 1)).toThrow(/reduced axes are empty and max has no identity/);
    expect(sum(x, 0).shape).toEqual([0]);
  });

  test('methods on arrays', async () => {
    const x = array([[1, 2, 3], [4, 5, 6]], { dtype: 'float32' });
    expect((await nums(x.sum(0)))).toEqual([5, 7, 9]);
    expect((await nums(x.mean(1, { keepdims: true })))).toEqual([2, 5]);
    expect((await nums(x.T.max(0)))).toEqual([3, 6]);
    expect((await nums(x.argmin(1)))).toEqual([0, 0]);
  });

  test('a sum over more than one 128 MiB binding', async () => {
    const n = 34_000_000;
    const x = full([n], 0.25);
    const s = (await nums(sum(x)))[0];
    const m = await nums(x.reshape(2, n / 2).max(1));
    x.dispose();
    expect(s).toBe(n * 0.25);
    expect(m).toEqual([0.25, 0.25]);
  });
});

describe('bad input is a typed error', () => {
  const x = () => array([[1, 2], [3, 4]], { dtype: 'float32' });
  const cases: { name: string; run: () => unknown; error: RegExp; code: string }[] = [
    { name: 'axis out of range', run: () => sum(x(), 2), error: /axis 2 is out of range for 2 dimensions/, code: 'ARGUMENT' },
    { name: 'repeated axis', run: () => mean(x(), [0, -2]), error: /repeated axis/, code: 'ARGUMENT' },
    { name: 'argmax axis out of range', run: () => argmax(x(), -3), error: /axis -3 is out of range/, code: 'ARGUMENT' },
    { name: 'storage-only dtype', run: () => sum(array([1n], { dtype: 'int64' })), error: /int64 is held as storage only/, code: 'DTYPE' },
    { name: 'max of bool', run: () => max(array([true, false])), error: /cast bool to a number dtype first/, code: 'DTYPE' },
    { name: 'negative ddof', run: () => variance(x(), 0, { ddof: -1 }), error: /ddof -1 must be a number >= 0/, code: 'ARGUMENT' },
  ];
  test.each(cases)('$name', ({ run, error, code }) => {
    let caught: unknown;
    try {
      run();
    } catch (e) {
      caught = e;
    }
    expect((caught as Error)?.message).toMatch(error);
    expect((caught as { code?: string }).code).toBe(code);
  });
});
