// Elementwise ops against a float64 reference on the CPU. Each case draws
// seeded operands, runs the op on the GPU (broadcast, strided and scalar
// operands included) and checks every element within the op's stated bound:
//
//   exact (the float64 result rounded to float32, then once to the output
//   dtype): add, subtract, multiply, maximum, minimum, negative, abs, sign,
//   square, floor, ceil, round, clip, where, comparisons, integer ops (wrapping)
//   float32 relative error: divide, reciprocal, sqrt, rsqrt 2^-22;
//   exp, expm1, log, log1p, log2, log10, tanh, sigmoid 2^-19 (+ 2^-22 absolute near 0);
//   sin, cos 2^-19 absolute on |x| <= 10; power 2^-16
//   float16 / bfloat16 outputs: one unit in the last place of the output dtype on top.
import { describe, expect, test } from 'vitest';
import {
  add,
  array,
  clip,
  type Device,
  divide,
  equal,
  fromBytes,
  greater,
  less_equal,
  maximum,
  minimum,
  multiply,
  not_equal,
  power,
  promoteTypes,
  subtract,
  where,
  floor_divide,
  remainder,
  transpose,
  slice,
  type DType,
  type Operand,
  type TypedArray,
  type WgArray,
} from '../src/index.js';
import * as ops from '../src/ops/elementwise.js';
import { encodeValue, randomRaw, rng, roundTo, size, unravel, valuesOf } from './helpers/ops-ref.js';
import { live, nums, setUpOpsTests, small } from './helpers/ops-setup.js';

setUpOpsTests();

const next = rng(77);

interface Input {
  a: WgArray;
  values: Float64Array;
  shape: number[];
}

interface InputOptions {
  device?: Device;
  /** Values in (-scale, scale); integer dtypes use their whole range unless `small`. */
  scale?: number;
  small?: boolean;
  positive?: boolean;
  nonzero?: boolean;
  /** Powers of two (exact quotients): for floor_divide / remainder. */
  pow2?: boolean;
}

function input(dtype: DType, shape: number[], opts: InputOptions = {}): Input {
  const scale = opts.scale ?? 10;
  const raw = randomRaw(dtype, size(shape), next, scale);
  for (let i = 0; i < raw.length; i++) {
    let v = valuesOf(dtype, [raw[i]])[0];
    if (opts.small && dtype.includes('int')) v = Math.round((next() * 2 - 1) * scale);
    if (opts.pow2) v = (next() < 0.5 ? -1 : 1) * 2 ** Math.floor(next() * 6 - 2);
    if (opts.positive) v = Math.abs(v) + (dtype.includes('int') ? 1 : 0.5);
    if (opts.nonzero && v === 0) v = 1;
    raw[i] = encodeValue(dtype, v);
  }
  const a = fromBytes(raw, shape, dtype, opts.device);
  live.push(a);
  return { a, values: valuesOf(dtype, raw), shape };
}

/** The value of element `i` of an output of `shape` in operand `x` broadcast to it. */
function at(x: Input, shape: readonly number[], i: number): number {
  const idx = unravel(shape, i);
  const lead = shape.length - x.shape.length;
  let k = 0;
  for (let d = 0; d < x.shape.length; d++) k = k * x.shape[d] + (x.shape[d] === 1 ? 0 : idx[lead + d]);
  return x.values[k];
}

function wrapTo(dtype: DType, v: number): number {
  const bytes = { int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4 }[dtype as 'int8'];
  const bits = bytes * 8;
  const m = BigInt.asUintN(bits, BigInt(Math.trunc(v)));
  return dtype.startsWith('u') ? Number(m) : Number(BigInt.asIntN(bits, m));
}

function outValues(dtype: DType, raw: TypedArray): Float64Array {
  return valuesOf(dtype, raw as ArrayLike<number>);
}

const ULP: Partial<Record<DType, number>> = { float32: 2 ** -23, float16: 2 ** -10, bfloat16: 2 ** -7 };

/** |got - want| within rel * |want| + abs, plus one output ulp for 16-bit floats; NaN equals NaN. */
function close_(got: number, want: number, dtype: DType, rel: number, abs: number): boolean {
  if (Number.isNaN(want)) return Number.isNaN(got);
  if (!Number.isFinite(want)) return got === want;
  const extra = dtype === 'float16' || dtype === 'bfloat16' ? ULP[dtype]! * Math.abs(want) + 2 ** -24 : 0;
  return Math.abs(got - want) <= rel * Math.abs(want) + abs + extra;
}

async function check(out: WgArray, shape: number[], want: (i: number) => number, rel = 0, abs = 0): Promise<void> {
  expect(out.shape).toEqual(shape);
  const got = outValues(out.dtype, (await out.data()) as TypedArray);
  out.dispose();
  for (let i = 0; i < got.length; i++) {
    const w = want(i);
    const ok = rel === 0 && abs === 0 ? Object.is(got[i], w) || got[i] === w || (Number.isNaN(got[i]) && Number.isNaN(w)) : close_(got[i], w, out.dtype, rel, abs);
    if (!ok) throw new Error(`${out.dtype} element ${i} [${unravel(shape, i).join(', ')}]: got ${got[i]}, want ${w}`);
  }
}

type BinaryRef = (x: number, y: number, dtype: DType) => number;

interface BinaryCase {
  op: string;
  fn: (a: Operand, b: Operand) => WgArray;
  ref: BinaryRef;
  rel?: number;
  /** Keep y away from 0 / a power of two / x positive where the op needs it. */
  yNonzero?: boolean;
  yPow2?: boolean;
  xPositive?: boolean;
  /** Another dtype to run besides float32 (integers wrap). */
  other: DType;
}

const floorDiv = (x: number, y: number) => Math.floor(x / y);
const pyMod = (x: number, y: number) => x - Math.floor(x / y) * y;

// Integer products in BigInt: int32 values need more than 53 bits.
const product: BinaryRef = (x, y, dtype) => (dtype.includes('int') ? Number(BigInt.asIntN(32, BigInt(x) * BigInt(y))) : x * y);

const binaryCases: BinaryCase[] = [
  { op: 'add', fn: add, ref: (x, y) => x + y, other: 'float16' },
  { op: 'add', fn: add, ref: (x, y) => x + y, other: 'uint8' },
  { op: 'subtract', fn: subtract, ref: (x, y) => x - y, other: 'int16' },
  { op: 'multiply', fn: multiply, ref: (x, y) => x * y, other: 'bfloat16' },
  { op: 'multiply', fn: multiply, ref: product, other: 'int32' },
  { op: 'divide', fn: divide, ref: (x, y) => x / y, rel: 2 ** -22, yNonzero: true, other: 'float16' },
  { op: 'maximum', fn: maximum, ref: (x, y) => Math.max(x, y), other: 'int8' },
  { op: 'minimum', fn: minimum, ref: (x, y) => Math.min(x, y), other: 'uint16' },
  { op: 'power', fn: power, ref: (x, y) => x ** y, rel: 2 ** -16, xPositive: true, other: 'bfloat16' },
  { op: 'floor_divide', fn: floor_divide, ref: floorDiv, yPow2: true, other: 'int32' },
  { op: 'remainder', fn: remainder, ref: pyMod, yPow2: true, other: 'int16' },
];

const shapePairs: [number[], number[]][] = [
  [[7, 9], [7, 9]],
  [[3, 1, 5], [4, 1]],
  [[], [2, 3]],
  [[0, 3], [1, 3]],
  [[33], [1]],
  [[2, 1, 3, 1], [1, 5, 1, 7]],
];

describe.each(binaryCases)('$op (and $other)', (c) => {
  const runs: [DType, [number[], number[]][]][] = [
    ['float32', shapePairs],
    [c.other, shapePairs.slice(0, 3)],
  ];
  test.each(runs)('%s, broadcast shapes', async (dtype, pairs) => {
    const intIn = dtype.includes('int');
    for (const [sa, sb] of pairs) {
      const scale = c.op === 'power' ? 3 : 10;
      const x = input(dtype, sa, { positive: c.xPositive, scale, small: intIn && c.op === 'remainder' });
      const y = input(dtype, sb, { nonzero: c.yNonzero || (intIn && c.yPow2), pow2: c.yPow2 && !intIn, scale, small: intIn && c.op === 'remainder' });
      const out = c.fn(x.a, y.a);
      const intOut = out.dtype.includes('int');
      const shape = out.shape as number[];
      await check(
        out,
        shape,
        (i) => {
          const v = c.ref(at(x, shape, i), at(y, shape, i), dtype);
          return intOut ? wrapTo(out.dtype, v) : roundTo(out.dtype, v);
        },
        intOut ? 0 : (c.rel ?? 0),
      );
    }
  });
});

test('integer ops wrap, divide by zero gives 0 for floor_divide and remainder', async () => {
  const x = array([127, -128, 7, -7, 5], { dtype: 'int8' });
  const y = array([1, -1, 0, 2, -3], { dtype: 'int8' });
  expect((await nums(add(x, y)))).toEqual([-128, 127, 7, -5, 2]);
  expect((await nums(floor_divide(x, y)))).toEqual([127, -128, 0, -4, -2]);
  expect((await nums(remainder(x, y)))).toEqual([0, 0, 0, 1, -1]);
  expect((await nums(power(array([2, -3, 1, -1, 5], { dtype: 'int32' }), array([10, 3, -4, -3, -1], { dtype: 'int32' }))))).toEqual([1024, -27, 1, -1, 0]);
  // true division of integers is float32
  const d = divide(array([7, -7], { dtype: 'int32' }), 2);
  expect(d.dtype).toBe('float32');
  expect((await nums(d))).toEqual([3.5, -3.5]);
});

test('float special values: NaN propagates through maximum/minimum, pow edge cases', async () => {
  const x = array([NaN, 1, -Infinity, 0, -8, -8, 0, -0], { dtype: 'float32' });
  const y = array([1, NaN, 3, NaN, 1 / 3, 3, -1, -3], { dtype: 'float32' });
  expect((await nums(maximum(x, y)))).toEqual([NaN, NaN, 3, NaN, 1 / 3, 3, 0, -0].map(Math.fround));
  expect((await nums(minimum(x, y)))).toEqual([NaN, NaN, -Infinity, NaN, -8, -8, -1, -3]);
  const p = await power(x, y).data();
  expect(p[3]).toBeNaN();
  expect(p[4]).toBeNaN(); // negative base, non-integer exponent
  expect(p[5]).toBe(-512);
  expect(p[6]).toBe(Infinity);
  expect(p[7]).toBe(-Infinity);
});

interface UnaryCase {
  op: keyof typeof ops;
  ref: (x: number) => number;
  rel?: number;
  abs?: number;
  positive?: boolean;
  scale?: number;
  /** Another dtype to run besides float32; integer inputs of float functions give float32. */
  other: DType;
}

const erfLess = 2 ** -19;
const unaryCases: UnaryCase[] = [
  { op: 'negative', ref: (x) => -x, other: 'int16' },
  { op: 'abs', ref: Math.abs, other: 'int8' },
  { op: 'sign', ref: Math.sign, other: 'float16' },
  { op: 'square', ref: (x) => x * x, other: 'uint8' },
  { op: 'floor', ref: Math.floor, other: 'bfloat16' },
  { op: 'ceil', ref: Math.ceil, other: 'int32' },
  { op: 'round', ref: (x) => { const r = Math.round(x); return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r; }, other: 'float16' },
  { op: 'sqrt', ref: Math.sqrt, rel: 2 ** -22, positive: true, other: 'int32' },
  { op: 'rsqrt', ref: (x) => 1 / Math.sqrt(x), rel: 2 ** -22, positive: true, other: 'float16' },
  { op: 'reciprocal', ref: (x) => 1 / x, rel: 2 ** -22, positive: true, other: 'bfloat16' },
  { op: 'exp', ref: Math.exp, rel: erfLess, scale: 20, other: 'float16' },
  { op: 'expm1', ref: Math.expm1, rel: erfLess, abs: 2 ** -22, scale: 0.01, other: 'bfloat16' },
  { op: 'log', ref: Math.log, rel: erfLess, abs: 2 ** -22, positive: true, other: 'uint8' },
  { op: 'log1p', ref: Math.log1p, rel: erfLess, abs: 2 ** -22, positive: true, scale: 0.01, other: 'float16' },
  { op: 'log2', ref: Math.log2, rel: erfLess, abs: 2 ** -22, positive: true, other: 'bfloat16' },
  { op: 'log10', ref: Math.log10, rel: erfLess, abs: 2 ** -22, positive: true, other: 'int16' },
  { op: 'sin', ref: Math.sin, abs: erfLess, other: 'float16' },
  { op: 'cos', ref: Math.cos, abs: erfLess, other: 'int32' },
  { op: 'tanh', ref: Math.tanh, rel: erfLess, abs: 2 ** -22, scale: 12, other: 'bfloat16' },
  { op: 'sigmoid', ref: (x) => 1 / (1 + Math.exp(-x)), rel: erfLess, abs: 2 ** -22, scale: 30, other: 'float16' },
];

describe.each(unaryCases)('$op', (c) => {
  test.each(['float32', c.other] as DType[])('%s, strided input', async (dtype) => {
    const shape = [13, 7];
    const x = input(dtype, shape, { positive: c.positive, scale: c.scale ?? 10, small: true });
    // Read through a transposed view: the kernel walks strides.
    const out = (ops[c.op] as (a: WgArray) => WgArray)(transpose(x.a));
    const outShape = [7, 13];
    const sameDType = ['negative', 'abs', 'sign', 'square', 'floor', 'ceil', 'round'].includes(c.op);
    expect(out.dtype).toBe(sameDType || !dtype.includes('int') ? dtype : 'float32');
    const intOut = out.dtype.includes('int');
    await check(
      out,
      outShape,
      (i) => {
        const [r, k] = unravel(outShape, i);
        const v = c.ref(x.values[k * 7 + r]);
        return intOut ? wrapTo(out.dtype, v) : roundTo(out.dtype, v);
      },
      intOut ? 0 : (c.rel ?? 0),
      intOut ? 0 : (c.abs ?? 0),
    );
  });
});

test('unary functions at their edges', async () => {
  const x = array([0, -0, 1e-8, -1e-8, 20, -20, 100, -100], { dtype: 'float32' });
  const e = await ops.expm1(x).data();
  expect(e[2]).toBe(Math.fround(1e-8));
  expect((await nums(ops.tanh(x))).slice(4)).toEqual([1, -1, 1, -1]);
  const s = await ops.sigmoid(x).data();
  expect(s[6]).toBe(1);
  expect(s[7]).toBeGreaterThanOrEqual(0);
  expect(s[7]).toBeLessThan(1e-40);
  const l = await ops.log1p(x).data();
  expect(l[2]).toBe(Math.fround(1e-8));
  expect((await nums(ops.round(array([0.5, 1.5, 2.5, -0.5, -1.5], { dtype: 'float32' }))))).toEqual([0, 2, 2, -0, -2]);
  const sg = await nums(ops.sign(array([NaN, -0, 3, -7], { dtype: 'float32' })));
  expect(sg[0]).toBeNaN();
  expect(sg.slice(1).map((v) => v + 0)).toEqual([0, 1, -1]);
});

describe('comparisons, where, clip', () => {
  test('comparisons give bool; NaN compares false except !=', async () => {
    const x = array([1, NaN, 3, -2], { dtype: 'float32' });
    const y = array([1, 1, NaN, 5], { dtype: 'float32' });
    const cases: [WgArray, number[]][] = [
      [equal(x, y), [1, 0, 0, 0]],
      [not_equal(x, y), [0, 1, 1, 1]],
      [greater(x, y), [0, 0, 0, 0]],
      [less_equal(x, y), [1, 0, 0, 1]],
      [greater(array([200, 3], { dtype: 'uint8' }), array([-1, 4], { dtype: 'int8' })), [1, 0]],
      [less_equal(array([-5, 3], { dtype: 'int16' }), 3), [1, 1]],
    ];
    for (const [got, want] of cases) {
      expect(got.dtype).toBe('bool');
      expect((await nums(got))).toEqual(want);
    }
  });

  test('where broadcasts and promotes; NaN conditions are true', async () => {
    const c = input('float32', [4, 1]);
    const x = input('float16', [1, 5]);
    const out = where(greater(c.a, 0), x.a, -1.5);
    expect(out.dtype).toBe('float16');
    await check(out, [4, 5], (i) => {
      const [r, k] = unravel([4, 5], i);
      return c.values[r] > 0 ? x.values[k] : -1.5;
    });
    const nanCond = array([NaN, 0, -0, 2], { dtype: 'float32' });
    expect((await nums(where(nanCond, 1, 0)))).toEqual([1, 0, 0, 1]);
    const mixed = where(array([1, 0], { dtype: 'uint8' }), array([1, 2], { dtype: 'int8' }), array([300, 400], { dtype: 'int16' }));
    expect(mixed.dtype).toBe('int16');
    expect((await nums(mixed))).toEqual([1, 400]);
    expect((await nums(where(true, array([1, 2], { dtype: 'int32' }), 0)))).toEqual([1, 2]);
  });

  test('clip with scalar, one-sided and array bounds', async () => {
    const x = input('float32', [6, 5]);
    await check(clip(x.a, -2, 3.5), [6, 5], (i) => Math.min(3.5, Math.max(-2, x.values[i])));
    await check(clip(x.a, null, 0), [6, 5], (i) => Math.min(0, x.values[i]));
    const lo = input('float32', [5]);
    await check(clip(x.a, lo.a, 4), [6, 5], (i) => Math.min(4, Math.max(lo.values[i % 5], x.values[i])));
    const ints = array([-5, 0, 200], { dtype: 'int16' });
    expect((await nums(clip(ints, 0, 100)))).toEqual([0, 0, 100]);
    const h = array([0.1, 70000], { dtype: 'float32' }).astype('float16');
    expect(Array.from(await clip(h, 0.3, 1000).toFloat32())).toEqual([0.300048828125, 1000]);
  });
});

describe('type promotion (MLX rules)', () => {
  const pairs: [DType, DType, DType][] = [
    ['uint8', 'int8', 'int16'],
    ['uint16', 'int8', 'int32'],
    ['uint8', 'int32', 'int32'],
    ['uint32', 'int8', 'int64'],
    ['uint64', 'int8', 'float32'],
    ['int16', 'float16', 'float16'],
    ['uint32', 'bfloat16', 'bfloat16'],
    ['float16', 'bfloat16', 'float32'],
    ['float16', 'float32', 'float32'],
    ['bool', 'int8', 'int8'],
    ['bool', 'bool', 'bool'],
    ['float64', 'float16', 'float64'],
  ];
  test.each(pairs)('%s with %s -> %s', (a, b, want) => {
    expect(promoteTypes(a, b)).toBe(want);
    expect(promoteTypes(b, a)).toBe(want);
  });

  const scalarCases: { name: string; make: () => WgArray; dtype: DType; values: number[] }[] = [
    { name: 'int8 + 3 stays int8 (and wraps)', make: () => add(array([126, 1], { dtype: 'int8' }), 3), dtype: 'int8', values: [-127, 4] },
    { name: 'int8 + 2.5 is float32', make: () => add(array([1, 2], { dtype: 'int8' }), 2.5), dtype: 'float32', values: [3.5, 4.5] },
    { name: 'float16 * 0.1 stays float16, scalar rounded to float16 first', make: () => multiply(array([1, 3], { dtype: 'float32' }).astype('float16'), 0.1), dtype: 'float16', values: [0.0999755859375, 0.2998046875] },
    { name: '3 - bfloat16 array', make: () => subtract(3, array([0.5, 1], { dtype: 'float32' }).astype('bfloat16')), dtype: 'bfloat16', values: [2.5, 2] },
    { name: 'uint8 array with int8 array', make: () => add(array([200, 1], { dtype: 'uint8' }), array([-1, -2], { dtype: 'int8' })), dtype: 'int16', values: [199, -1] },
    { name: 'float16 with bfloat16 arrays', make: () => add(array([1], { dtype: 'float32' }).astype('float16'), array([2], { dtype: 'float32' }).astype('bfloat16')), dtype: 'float32', values: [3] },
    { name: 'bool + 1 is int32', make: () => add(array([true, false]), 1), dtype: 'int32', values: [2, 1] },
    { name: 'bool + bool is or', make: () => add(array([true, false, false]), array([true, true, false])), dtype: 'bool', values: [1, 1, 0] },
    { name: 'int16 * Infinity is float32', make: () => multiply(array([1, -1], { dtype: 'int16' }), Infinity), dtype: 'float32', values: [Infinity, -Infinity] },
    { name: 'two scalars', make: () => add(2, 3), dtype: 'int32', values: [5] },
  ];
  test.each(scalarCases)('$name', async ({ make, dtype, values }) => {
    const out = make();
    expect(out.dtype).toBe(dtype);
    const got = outValues(out.dtype, (await out.data()) as TypedArray);
    expect(Array.from(got)).toEqual(values);
  });
});

describe('windows: operands cut into 4 KiB bindings', () => {
  test('broadcast add of a transposed float32 matrix and a row', async () => {
    const x = input('float32', [70, 90], { device: small });
    const row = input('float32', [70], { device: small });
    const out = add(transpose(x.a), row.a);
    await check(out, [90, 70], (i) => {
      const [r, k] = unravel([90, 70], i);
      return Math.fround(x.values[k * 90 + r] + row.values[k]);
    });
  });
  test('uint8 where over sliced operands', async () => {
    const c = input('uint8', [50, 41], { device: small });
    const x = input('uint8', [50, 82], { device: small });
    const out = where(c.a, slice(x.a, null, '::2'), 7);
    await check(out, [50, 41], (i) => {
      const [r, k] = unravel([50, 41], i);
      return c.values[i] !== 0 ? x.values[r * 82 + 2 * k] : 7;
    });
  });
  test('int16 multiply, reversed operand', async () => {
    const x = input('int16', [3000], { device: small });
    const out = multiply(x.a, slice(x.a, '::-1'));
    await check(out, [3000], (i) => wrapTo('int16', x.values[i] * x.values[2999 - i]));
  });
});

test('operands larger than one 128 MiB binding, dispatched in 2-D (> 65535 workgroups)', async () => {
  const n = 135_000_000;
  const x = fromBytes(new Uint8Array(n).fill(200), [n], 'uint8');
  const out = add(x, x);
  x.dispose();
  const got = (await out.data()) as Uint8Array;
  out.dispose();
  let bad = -1;
  for (let i = 0; i < n; i++) {
    if (got[i] !== 144) {
      bad = i;
      break;
    }
  }
  expect(bad).toBe(-1);
});

describe('bad input is a typed error', () => {
  const cases: { name: string; run: () => unknown; error: RegExp; code: string }[] = [
    {
      name: 'shapes that do not broadcast name both',
      run: () => add(array([1, 2, 3]), array([1, 2])),
      error: /shapes \[3\] and \[2\] do not broadcast/,
      code: 'SHAPE',
    },
    { name: 'int32 with uint32 promotes to storage-only int64', run: () => add(array([1], { dtype: 'int32' }), array([1], { dtype: 'uint32' })), error: /promote to int64, which is held as storage only/, code: 'DTYPE' },
    { name: 'storage-only operand', run: () => multiply(array([1n], { dtype: 'int64' }), 2), error: /int64, which is held as storage only/, code: 'DTYPE' },
    { name: 'bool subtract', run: () => subtract(array([true]), array([false])), error: /subtract of two bool operands/, code: 'DTYPE' },
    { name: 'unary on bool', run: () => ops.sqrt(array([true])), error: /is bool/, code: 'DTYPE' },
    { name: 'clip without bounds', run: () => clip(array([1]), null, null), error: /give min, max or both/, code: 'ARGUMENT' },
    { name: 'a non-numeric operand', run: () => add(array([1]), '2' as unknown as number), error: /neither an array nor a number/, code: 'DTYPE' },
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
