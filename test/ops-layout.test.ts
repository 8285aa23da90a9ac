// Views and layout ops against a CPU reference: every case builds seeded raw
// elements, applies the op on the GPU and compares the elements bit for bit
// with the reference's rearrangement (copies move bits, so equality is exact).
// The cases cover every dtype, size-1 and empty dims, odd sizes (packed 8- and
// 16-bit words shared across rows), the tiled-transpose and general kernels,
// and, on a device whose binding limit is shrunk to a few KiB, the splitting
// of copies into windows. One real copy is larger than lavapipe's 128 MiB binding.
import { describe, expect, test } from 'vitest';
import {
  ALL_DTYPES,
  arange,
  array,
  concatenate,
  contiguous,
  type Device,
  expand_dims,
  fromBytes,
  moveaxis,
  reshape,
  slice,
  split,
  squeeze,
  stack,
  swapaxes,
  take,
  transpose,
  broadcast_to,
  type DType,
  type TypedArray,
  type WgArray,
} from '../src/index.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadGGUF, loadSafetensors, quantize, saveGGUF, saveSafetensors } from '../src/index.js';
import { gather, randomRaw, rng, size, unravel } from './helpers/ops-ref.js';
import { setUpOpsTests, small } from './helpers/ops-setup.js';

setUpOpsTests();

const next = rng(1234);

function source(dtype: DType, shape: number[], device?: Device): { a: WgArray; raw: TypedArray } {
  const raw = randomRaw(dtype, size(shape), next);
  return { a: fromBytes(raw, shape, dtype, device), raw };
}

async function expectRaw(got: WgArray, want: TypedArray, shape: readonly number[]): Promise<void> {
  expect(got.shape).toEqual(shape);
  const data = (await got.data()) as TypedArray;
  expect(data.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (data[i] !== want[i]) {
      throw new Error(`element ${i} (index [${unravel(shape, i).join(', ')}]): got ${data[i]}, want ${want[i]}`);
    }
  }
}

/** Source multi-index of a slice's output index, from per-axis index lists. */
function sliceMap(lists: (number[] | number)[]) {
  return (idx: number[]) => {
    let k = 0;
    return lists.map((l) => (typeof l === 'number' ? l : l[idx[k++]]));
  };
}

interface ViewCase {
  name: string;
  dtype: DType;
  shape: number[];
  op: (a: WgArray) => WgArray;
  outShape: number[];
  map: (idx: number[]) => number[];
}

const perm = (axes: number[]) => (idx: number[]) => {
  const src = new Array<number>(axes.length);
  axes.forEach((a, i) => (src[a] = idx[i]));
  return src;
};

const viewCases: ViewCase[] = [
  // Matrix transposes: tiled kernel where rows are whole words, the general one elsewhere.
  { name: 'transpose 2-D f32 (tiled)', dtype: 'float32', shape: [37, 53], op: (a) => transpose(a), outShape: [53, 37], map: perm([1, 0]) },
  // 4 x 4 blocks in registers (transpose_4x4): 32-bit elements, both dims multiples of 4
  { name: 'transpose 2-D f32 (4 x 4 blocks)', dtype: 'float32', shape: [36, 52], op: (a) => transpose(a), outShape: [52, 36], map: perm([1, 0]) },
  { name: 'batched transpose int32 (4 x 4 blocks)', dtype: 'int32', shape: [3, 8, 20], op: (a) => swapaxes(a, 1, 2), outShape: [3, 20, 8], map: perm([0, 2, 1]) },
  { name: 'transpose 2-D uint8, odd rows (general)', dtype: 'uint8', shape: [33, 61], op: (a) => a.T, outShape: [61, 33], map: perm([1, 0]) },
  { name: 'transpose 2-D uint8 (tiled)', dtype: 'uint8', shape: [64, 36], op: (a) => a.T, outShape: [36, 64], map: perm([1, 0]) },
  { name: 'transpose 2-D int16 odd (general)', dtype: 'int16', shape: [17, 30], op: (a) => a.T, outShape: [30, 17], map: perm([1, 0]) },
  { name: 'transpose 2-D float16 (tiled)', dtype: 'float16', shape: [50, 40], op: (a) => a.T, outShape: [40, 50], map: perm([1, 0]) },
  { name: 'batched transpose bfloat16', dtype: 'bfloat16', shape: [3, 31, 20], op: (a) => swapaxes(a, 1, 2), outShape: [3, 20, 31], map: perm([0, 2, 1]) },
  { name: 'batched transpose int8 (tiled)', dtype: 'int8', shape: [5, 8, 12], op: (a) => transpose(a, [0, 2, 1]), outShape: [5, 12, 8], map: perm([0, 2, 1]) },
  { name: 'permute 4-D int32', dtype: 'int32', shape: [2, 3, 4, 5], op: (a) => transpose(a, [3, 1, 0, 2]), outShape: [5, 3, 2, 4], map: perm([3, 1, 0, 2]) },
  { name: 'reverse 3-D int64', dtype: 'int64', shape: [3, 4, 5], op: (a) => transpose(a), outShape: [5, 4, 3], map: perm([2, 1, 0]) },
  { name: 'reverse 3-D float64 with a length-1 dim', dtype: 'float64', shape: [4, 1, 3], op: (a) => transpose(a), outShape: [3, 1, 4], map: perm([2, 1, 0]) },
  { name: 'transpose bool', dtype: 'bool', shape: [5, 7], op: (a) => a.T, outShape: [7, 5], map: perm([1, 0]) },
  { name: 'transpose uint64', dtype: 'uint64', shape: [6, 2], op: (a) => a.T, outShape: [2, 6], map: perm([1, 0]) },
  { name: 'moveaxis uint16', dtype: 'uint16', shape: [2, 3, 5], op: (a) => moveaxis(a, 0, -1), outShape: [3, 5, 2], map: perm([1, 2, 0]) },
  { name: 'empty dim', dtype: 'float32', shape: [0, 5], op: (a) => a.T, outShape: [5, 0], map: perm([1, 0]) },
  { name: 'all length-1 dims', dtype: 'uint8', shape: [1, 1, 7], op: (a) => swapaxes(a, 0, 2), outShape: [7, 1, 1], map: perm([2, 1, 0]) },
  { name: 'a 0-d array', dtype: 'int16', shape: [], op: (a) => transpose(a), outShape: [], map: () => [] },
  // Slices, NumPy semantics: negative indices, negative steps, clamped bounds.
  {
    name: 'slice int16 1:-1, ::-2',
    dtype: 'int16',
    shape: [7, 9],
    op: (a) => slice(a, '1:-1', '::-2'),
    outShape: [5, 5],
    map: sliceMap([[1, 2, 3, 4, 5], [8, 6, 4, 2, 0]]),
  },
  {
    name: 'slice uint8 ::3, index -1, 10:0:-3',
    dtype: 'uint8',
    shape: [10, 4, 5],
    op: (a) => slice(a, [null, null, 3], -1, '10:0:-3'),
    outShape: [4, 2],
    map: sliceMap([[0, 3, 6, 9], 3, [4, 1]]),
  },
  {
    name: 'slice float32 {start, stop, step} and a missing trailing spec',
    dtype: 'float32',
    shape: [6, 5, 3],
    op: (a) => a.slice({ start: -1, stop: -7, step: -1 }, { start: 1, stop: 100 }),
    outShape: [6, 4, 3],
    map: (i) => [[5, 4, 3, 2, 1, 0][i[0]], i[1] + 1, i[2]],
  },
  { name: 'slice to empty', dtype: 'int32', shape: [5, 4], op: (a) => slice(a, '3:1'), outShape: [0, 4], map: (i) => i },
  { name: 'slice bfloat16 :-10 (empty) on one axis', dtype: 'bfloat16', shape: [5, 3], op: (a) => slice(a, null, ':-10'), outShape: [5, 0], map: (i) => i },
  // Broadcast, expand, squeeze, reshape of views.
  { name: 'broadcast_to uint8', dtype: 'uint8', shape: [3], op: (a) => broadcast_to(a, [4, 3]), outShape: [4, 3], map: (i) => [i[1]] },
  { name: 'broadcast_to float16 middle dim', dtype: 'float16', shape: [5, 1], op: (a) => broadcast_to(a, [2, 5, 6]), outShape: [2, 5, 6], map: (i) => [i[1], 0] },
  { name: 'expand_dims then transpose', dtype: 'int8', shape: [3, 4], op: (a) => expand_dims(a, [0, 3]).transpose(3, 2, 1, 0), outShape: [1, 4, 3, 1], map: (i) => [i[2], i[1]] },
  { name: 'squeeze a transposed view', dtype: 'int16', shape: [3, 1, 5], op: (a) => squeeze(a.T), outShape: [5, 3], map: (i) => [i[1], 0, i[0]] },
  { name: 'reshape of a transposed view copies', dtype: 'float32', shape: [4, 6], op: (a) => reshape(a.T, [2, 12]), outShape: [2, 12], map: (i) => { const f = i[0] * 12 + i[1]; return [f % 4, Math.floor(f / 4)]; } },
  { name: 'flatten a sliced view', dtype: 'uint16', shape: [5, 7], op: (a) => a.slice('1:4', '::3').flatten(), outShape: [9], map: (i) => [1 + Math.floor(i[0] / 3), 3 * (i[0] % 3)] },
  // take along an axis.
  { name: 'take float32 axis 1, negative index', dtype: 'float32', shape: [6, 7], op: (a) => take(a, [5, 0, -1, 2], 1), outShape: [6, 4], map: (i) => [i[0], [5, 0, 6, 2][i[1]]] },
  { name: 'take uint8 axis 0 repeated', dtype: 'uint8', shape: [9, 5], op: (a) => a.take([8, 8, 0], 0), outShape: [3, 5], map: (i) => [[8, 8, 0][i[0]], i[1]] },
  { name: 'take int64 rows', dtype: 'int64', shape: [4, 3], op: (a) => take(a, new Int32Array([3, 1]), 0), outShape: [2, 3], map: (i) => [[3, 1][i[0]], i[1]] },
  { name: 'take flattened', dtype: 'int16', shape: [3, 4], op: (a) => take(a, [11, 0, 5]), outShape: [3], map: (i) => unravel([3, 4], [11, 0, 5][i[0]]) },
  { name: 'take a scalar index drops the axis', dtype: 'bfloat16', shape: [3, 4, 2], op: (a) => take(a, 2, 1), outShape: [3, 2], map: (i) => [i[0], 2, i[1]] },
  { name: 'take from a transposed view', dtype: 'uint8', shape: [5, 6], op: (a) => take(a.T, [4, 1, 1, 0], 1), outShape: [6, 4], map: (i) => [[4, 1, 1, 0][i[1]], i[0]] },
];

describe('views made contiguous equal the reference, bit for bit', () => {
  test.each(viewCases)('$name', async ({ dtype, shape, op, outShape, map }) => {
    const { a, raw } = source(dtype, shape);
    const v = op(a);
    await expectRaw(v, gather(raw, shape, outShape, map), outShape);
    const c = contiguous(v);
    expect(c.isContiguous).toBe(true);
    await expectRaw(c, gather(raw, shape, outShape, map), outShape);
  });
});

describe('the same copies cut into 4 KiB windows', () => {
  const bigger: ViewCase[] = [
    { name: 'transpose f32 [100, 70]', dtype: 'float32', shape: [100, 70], op: (a) => a.T, outShape: [70, 100], map: perm([1, 0]) },
    { name: 'transpose uint8 [130, 77]', dtype: 'uint8', shape: [130, 77], op: (a) => a.T, outShape: [77, 130], map: perm([1, 0]) },
    { name: 'transpose int16 [45, 91]', dtype: 'int16', shape: [45, 91], op: (a) => a.T, outShape: [91, 45], map: perm([1, 0]) },
    { name: 'permute int64 [6, 30, 11]', dtype: 'int64', shape: [6, 30, 11], op: (a) => transpose(a, [2, 0, 1]), outShape: [11, 6, 30], map: perm([2, 0, 1]) },
    { name: 'slice uint8 with a negative step', dtype: 'uint8', shape: [90, 101], op: (a) => slice(a, '::-1', '3::2'), outShape: [90, 49], map: (i) => [89 - i[0], 3 + 2 * i[1]] },
    { name: 'broadcast int8', dtype: 'int8', shape: [1, 333], op: (a) => broadcast_to(a, [40, 333]), outShape: [40, 333], map: (i) => [0, i[1]] },
    { name: 'take bfloat16 columns', dtype: 'bfloat16', shape: [70, 90], op: (a) => take(a, [89, 3, 3, 0, 45], 1), outShape: [70, 5], map: (i) => [i[0], [89, 3, 3, 0, 45][i[1]]] },
  ];
  test.each(bigger)('$name', async ({ dtype, shape, op, outShape, map }) => {
    const { a, raw } = source(dtype, shape, small);
    await expectRaw(op(a), gather(raw, shape, outShape, map), outShape);
  });

  test('concatenate uint8 along odd-width columns', async () => {
    const parts = [5, 2, 7, 1, 300].map((w) => source('uint8', [30, w], small));
    const out = concatenate(parts.map((p) => p.a), 1);
    const total = 315;
    const starts = [0, 5, 7, 14, 15];
    const want = new Uint8Array(30 * total);
    for (let r = 0; r < 30; r++) {
      parts.forEach((p, k) => {
        const w = p.a.shape[1];
        for (let c = 0; c < w; c++) want[r * total + starts[k] + c] = p.raw[r * w + c] as number;
      });
    }
    await expectRaw(out, want, [30, total]);
  });
});

describe('concatenate, stack, split', () => {
  const dtypes: DType[] = ['uint8', 'int16', 'float16', 'float32', 'int64', 'bool'];
  test.each(dtypes)('%s: concatenate along each axis, then split back', async (dtype) => {
    const shapes = [
      [3, 5, 2],
      [3, 1, 2],
      [3, 0, 2],
      [3, 7, 2],
    ];
    const parts = shapes.map((s) => source(dtype, s));
    const joined = concatenate(parts.map((p) => p.a), 1);
    expect(joined.shape).toEqual([3, 13, 2]);
    const back = split(joined, [5, 6, 6], 1);
    expect(back.length).toBe(4);
    for (let k = 0; k < 4; k++) await expectRaw(back[k], parts[k].raw, shapes[k]);
    // Along the first axis the copy is one byte range.
    const rows = [source(dtype, [2, 3]), source(dtype, [1, 3]), source(dtype, [3, 3])];
    const r = concatenate(rows.map((p) => p.a), 0);
    const want = new (rows[0].raw.constructor as new (n: number) => TypedArray)(18);
    let at = 0;
    for (const p of rows) {
      for (let i = 0; i < p.raw.length; i++) want[at++] = p.raw[i];
    }
    await expectRaw(r, want, [6, 3]);
    // And along the last axis, negative index.
    const cols = [source(dtype, [2, 3]), source(dtype, [2, 1])];
    const c = concatenate(cols.map((p) => p.a), -1);
    const cw = new (cols[0].raw.constructor as new (n: number) => TypedArray)(8);
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 3; j++) cw[i * 4 + j] = cols[0].raw[i * 3 + j];
      cw[i * 4 + 3] = cols[1].raw[i];
    }
    await expectRaw(c, cw, [2, 4]);
  });

  test.each([0, 1, 2, -1])('stack uint8 along axis %i', async (axis) => {
    const parts = [0, 1, 2].map(() => source('uint8', [3, 5]));
    const s = stack(parts.map((p) => p.a), axis);
    const ax = axis < 0 ? axis + 3 : axis;
    const outShape = [3, 5];
    outShape.splice(ax, 0, 3);
    expect(s.shape).toEqual(outShape);
    const want = new Uint8Array(45);
    for (let i = 0; i < 45; i++) {
      const idx = unravel(outShape, i);
      const k = idx[ax];
      const rest = idx.filter((_, d) => d !== ax);
      want[i] = parts[k].raw[rest[0] * 5 + rest[1]] as number;
    }
    await expectRaw(s, want, outShape);
  });

  test('split into equal sections and at indices (views of one storage)', async () => {
    const { a, raw } = source('int32', [6, 4]);
    const parts = split(a, 3);
    expect(parts.map((p) => p.shape)).toEqual([
      [2, 4],
      [2, 4],
      [2, 4],
    ]);
    for (const p of parts) expect(p.storage).toBe(a.storage);
    await expectRaw(parts[2], raw.slice(16), [2, 4]);
    const cols = split(a, [1, -1], 1);
    expect(cols.map((p) => p.shape[1])).toEqual([1, 2, 1]);
    await expectRaw(cols[1], gather(raw, [6, 4], [6, 2], (i) => [i[0], i[1] + 1]), [6, 2]);
  });
});

describe('properties', () => {
  const cases = Array.from({ length: 12 }, (_, k) => {
    const r = rng(900 + k);
    const ndim = 1 + Math.floor(r() * 4);
    const shape = Array.from({ length: ndim }, () => 1 + Math.floor(r() * 6));
    const axes = [...Array(ndim).keys()].sort(() => r() - 0.5);
    const dtype = ALL_DTYPES[k % ALL_DTYPES.length];
    return { shape, axes, dtype };
  });
  test.each(cases)('transpose twice is the identity: $dtype $shape by $axes', async ({ shape, axes, dtype }) => {
    const { a, raw } = source(dtype, shape);
    const inverse = new Array<number>(axes.length);
    axes.forEach((ax, i) => (inverse[ax] = i));
    const once = contiguous(transpose(a, axes));
    const twice = transpose(once, inverse);
    await expectRaw(twice, raw, shape);
  });

  test.each(cases)('concatenate then split returns the parts: $dtype $shape', async ({ shape, dtype }) => {
    const axis = shape.length - 1;
    const parts = [source(dtype, shape), source(dtype, shape.map((n, i) => (i === axis ? n + 2 : n)))];
    const back = split(concatenate(parts.map((p) => p.a), axis), [shape[axis]], axis);
    await expectRaw(back[0], parts[0].raw, parts[0].a.shape);
    await expectRaw(back[1], parts[1].raw, parts[1].a.shape);
  });
});

test('astype and quantize-ready reads of views go through one GPU copy', async () => {
  const x = arange(0, 12, { dtype: 'float32' }).reshape(3, 4);
  const h = x.T.astype('float16');
  expect(h.isContiguous).toBe(true);
  expect(Array.from(await h.toFloat32())).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
  const i = x.slice(null, '::-1').astype('int8');
  expect(Array.from(await i.data())).toEqual([3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8]);
});

test('quantizing a view quantizes its elements in row-major order', async () => {
  const { a } = source('float32', [64, 96]);
  const view = a.T;
  const copy = contiguous(view);
  const fromView = await quantize(view, 'q8_0').data();
  const fromCopy = await quantize(copy, 'q8_0').data();
  expect(fromView.length).toBe(96 * 2 * 34);
  expect(Buffer.from(fromView).equals(Buffer.from(fromCopy))).toBe(true);
});

test('views saved to GGUF and safetensors are written in row-major order (one GPU copy each)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wgarray-views-'));
  try {
    const { a, raw } = source('float16', [6, 10]);
    const t = a.T;
    const s = slice(a, '::-2', '1:9:3');
    const want = {
      t: gather(raw, [6, 10], [10, 6], (i) => [i[1], i[0]]),
      s: gather(raw, [6, 10], [3, 3], (i) => [5 - 2 * i[0], 1 + 3 * i[1]]),
    };
    const g = join(dir, 'views.gguf');
    await saveGGUF(g, { t, s });
    const gf = await loadGGUF(g);
    expect(gf.tensor('t').shape).toEqual([10, 6]);
    expect(Array.from(new Uint16Array((await gf.readTensorBytes('t')).slice().buffer))).toEqual(Array.from(want.t as Uint16Array));
    expect(Array.from(new Uint16Array((await gf.readTensorBytes('s')).slice().buffer))).toEqual(Array.from(want.s as Uint16Array));
    const st = join(dir, 'views.safetensors');
    await saveSafetensors(st, { t, s });
    const sf = await loadSafetensors(st);
    expect(Array.from(new Uint16Array((await sf.readTensorBytes('t')).slice().buffer))).toEqual(Array.from(want.t as Uint16Array));
    expect(Array.from(new Uint16Array((await sf.readTensorBytes('s')).slice().buffer))).toEqual(Array.from(want.s as Uint16Array));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('take with indices on the GPU: negative ones count from the end, out-of-range ones clamp', async () => {
  const x = array([10, 20, 30, 40], { dtype: 'int32' });
  const idx = array([-1, 0, 7, -9], { dtype: 'int32' });
  expect(Array.from(await take(x, idx, 0).data())).toEqual([40, 10, 40, 10]);
  const u = array([3, 1], { dtype: 'uint8' });
  expect(Array.from(await take(x, u, 0).data())).toEqual([40, 20]);
  const twoD = array([[0, 1], [3, 2]], { dtype: 'int32' });
  const t = take(x, twoD, 0);
  expect(t.shape).toEqual([2, 2]);
  expect(Array.from(await t.data())).toEqual([10, 20, 40, 30]);
});

test('a copy larger than one 128 MiB binding (int32 transpose, 144 MB)', async () => {
  const n = 6000;
  const x = arange(0, n * n, { dtype: 'int32' }).reshape(n, n);
  const t = contiguous(x.T);
  x.dispose();
  const got = (await t.data()) as Int32Array;
  t.dispose();
  let bad = -1;
  for (let j = 0; j < n && bad < 0; j++) {
    for (let i = 0; i < n; i++) {
      if (got[j * n + i] !== i * n + j) {
        bad = j * n + i;
        break;
      }
    }
  }
  expect(bad).toBe(-1);
});

test('a packed copy dispatched in 2-D (> 65535 workgroups): uint8 columns 1: of [8300, 8300]', async () => {
  const n = 8300;
  const bytes = new Uint8Array(n * n);
  for (let i = 0; i < bytes.length; i++) bytes[i] = i & 255;
  const x = fromBytes(bytes, [n, n], 'uint8');
  const c = contiguous(slice(x, null, '1:'));
  x.dispose();
  const got = (await c.data()) as Uint8Array;
  c.dispose();
  let bad = -1;
  for (let r = 0; r < n && bad < 0; r++) {
    for (let k = 0; k < n - 1; k++) {
      if (got[r * (n - 1) + k] !== ((r * n + k + 1) & 255)) {
        bad = r * (n - 1) + k;
        break;
      }
    }
  }
  expect(bad).toBe(-1);
});

describe('bad input is a typed error naming the array and the axis', () => {
  const a = () => arange(0, 6).reshape(2, 3);
  const cases: { name: string; run: () => unknown; error: RegExp; code: string }[] = [
    { name: 'transpose axis out of range', run: () => transpose(a(), [0, 2]), error: /axis 2 is out of range for 2 dimensions/, code: 'ARGUMENT' },
    { name: 'transpose repeated axis', run: () => transpose(a(), [1, 1]), error: /repeated axis/, code: 'ARGUMENT' },
    { name: 'transpose too few axes', run: () => transpose(a(), [1]), error: /must list each of its 2 dims once/, code: 'ARGUMENT' },
    { name: 'swapaxes', run: () => swapaxes(a(), 0, -3), error: /axis -3 is out of range/, code: 'ARGUMENT' },
    { name: 'squeeze a dim that is not 1', run: () => squeeze(a(), 1), error: /axis 1 has length 3, not 1/, code: 'SHAPE' },
    { name: 'slice index out of range', run: () => slice(a(), 2), error: /index 2 is out of range for axis 0 of length 2/, code: 'ARGUMENT' },
    { name: 'slice step 0', run: () => slice(a(), '::0'), error: /step cannot be zero/, code: 'ARGUMENT' },
    { name: 'slice too many specs', run: () => slice(a(), 0, 0, 0), error: /3 indices for 2 dimensions/, code: 'ARGUMENT' },
    { name: 'slice bad string', run: () => slice(a(), 'a:b'), error: /not start:stop:step/, code: 'ARGUMENT' },
    { name: 'broadcast_to incompatible', run: () => broadcast_to(a(), [3, 3]), error: /cannot broadcast array \(shape \[2, 3\], int32\) to shape \[3, 3\]/, code: 'SHAPE' },
    { name: 'reshape to a wrong size', run: () => reshape(a().T, [4, 2]), error: /cannot reshape/, code: 'SHAPE' },
    { name: 'concatenate shapes differ', run: () => concatenate([a(), arange(0, 4).reshape(2, 2)], 0), error: /shapes \[2, 3\] and \[2, 2\] differ outside that axis/, code: 'SHAPE' },
    { name: 'concatenate dtypes differ', run: () => concatenate([a(), a().astype('float32')]), error: /cast them to one dtype first/, code: 'DTYPE' },
    { name: 'concatenate nothing', run: () => concatenate([]), error: /at least one array/, code: 'ARGUMENT' },
    { name: 'stack shapes differ', run: () => stack([a(), a().T]), error: /shapes \[2, 3\] and \[3, 2\] differ/, code: 'SHAPE' },
    { name: 'split unequal', run: () => split(a(), 4, 1), error: /axis 1 of length 3 does not split into 4 equal sections/, code: 'SHAPE' },
    { name: 'take index out of range', run: () => take(a(), [0, 3], 1), error: /index 3 \(position 1\) is out of range for axis 1 of length 3/, code: 'ARGUMENT' },
    { name: 'take float indices', run: () => take(a(), a().astype('float32'), 0), error: /must have an integer dtype/, code: 'DTYPE' },
    { name: 'moveaxis counts differ', run: () => moveaxis(a(), [0, 1], [1]), error: /2 source axes but 1 destinations/, code: 'ARGUMENT' },
  ];
  test.each(cases)('$name', ({ run, error, code }) => {
    let caught: unknown;
    try {
      run();
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(Error);
    expect((caught as Error).message).toMatch(error);
    expect((caught as { code?: string }).code).toBe(code);
  });
});
