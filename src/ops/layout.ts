// Views and layout: reshape, transpose, swapaxes, moveaxis, expand_dims,
// squeeze, slice, broadcast_to, split are views (new shape and strides over
// the same storage, no GPU work); contiguous, take, concatenate and stack copy
// with one strided-copy kernel (src/kernels/copy.ts), never through the CPU.

import { ArgumentError, DTypeError, ShapeError } from '../errors.js';
import { contiguous, copyInto, copyStrided } from '../kernels/copy.js';
import { formatShape, inferShape, shapeSize, WgArray, type Shape } from '../runtime/array.js';
import { DTYPES, isTypedArray, type DType, type TypedArray } from '../runtime/dtype.js';
import { fromBytes } from '../runtime/upload.js';

/** Axis `axis` of an `ndim`-dim array, negative counting from the end; ArgumentError names `what` when out of range. */
export function normalizeAxis(axis: number, ndim: number, what: string): number {
  if (!Number.isInteger(axis) || axis < -ndim || axis >= ndim) {
    throw new ArgumentError(`${what}: axis ${axis} is out of range for ${ndim} dimension${ndim === 1 ? '' : 's'} (valid: ${-ndim} to ${ndim - 1})`);
  }
  return axis < 0 ? axis + ndim : axis;
}

/** Distinct normalized axes. */
export function normalizeAxes(axes: readonly number[], ndim: number, what: string): number[] {
  const out = axes.map((a) => normalizeAxis(a, ndim, what));
  if (new Set(out).size !== out.length) throw new ArgumentError(`${what}: repeated axis in [${axes.join(', ')}]`);
  return out;
}

// contiguous() and copyInto() live beside the strided-copy kernel (src/kernels/copy.ts)
// so that kernels and WgArray's methods reach them without importing ops.
export { contiguous };

/** The same elements in a new shape (one dim may be -1): a view when `a` is contiguous, else a copy. */
export function reshape<D extends DType>(a: WgArray<D>, shape: readonly number[]): WgArray<D> {
  const target = inferShape(shape, a.size, a.describe());
  if (a.isContiguous) return a.view(target, { offset: a.offset });
  const c = contiguous(a);
  try {
    return c.view(target, { offset: c.offset });
  } finally {
    c.dispose();
  }
}

/** All elements in one dim. */
export function flatten<D extends DType>(a: WgArray<D>): WgArray<D> {
  return reshape(a, [a.size]);
}

/** Dims permuted: result dim i is `a`'s dim axes[i] (default: reversed). A view. */
export function transpose<D extends DType>(a: WgArray<D>, axes?: readonly number[]): WgArray<D> {
  const n = a.ndim;
  const order = axes ? normalizeAxes(axes, n, `transpose of ${a.describe()}`) : [...Array(n).keys()].reverse();
  if (order.length !== n) {
    throw new ArgumentError(`transpose of ${a.describe()}: axes [${axes!.join(', ')}] must list each of its ${n} dims once`);
  }
  return a.view(
    order.map((i) => a.shape[i]),
    { strides: order.map((i) => a.strides[i]), offset: a.offset },
  );
}

/** Alias of transpose with explicit axes. */
export const permute = transpose;

/** Dims `axis1` and `axis2` exchanged. A view. */
export function swapaxes<D extends DType>(a: WgArray<D>, axis1: number, axis2: number): WgArray<D> {
  const what = `swapaxes of ${a.describe()}`;
  const i = normalizeAxis(axis1, a.ndim, what);
  const j = normalizeAxis(axis2, a.ndim, what);
  const order = [...Array(a.ndim).keys()];
  [order[i], order[j]] = [order[j], order[i]];
  return transpose(a, order);
}

/** Dims moved from `source` to `destination` positions, the others keeping their order. A view. */
export function moveaxis<D extends DType>(a: WgArray<D>, source: number | readonly number[], destination: number | readonly number[]): WgArray<D> {
  const what = `moveaxis of ${a.describe()}`;
  const src = normalizeAxes(typeof source === 'number' ? [source] : source, a.ndim, what);
  const dst = normalizeAxes(typeof destination === 'number' ? [destination] : destination, a.ndim, what);
  if (src.length !== dst.length) throw new ArgumentError(`${what}: ${src.length} source axes but ${dst.length} destinations`);
  const order = new Array<number>(a.ndim).fill(-1);
  dst.forEach((d, k) => (order[d] = src[k]));
  const rest = [...Array(a.ndim).keys()].filter((i) => !src.includes(i));
  for (let i = 0; i < order.length; i++) if (order[i] < 0) order[i] = rest.shift()!;
  return transpose(a, order);
}

/** New length-1 dims inserted at `axis` (positions in the result). A view. */
export function expand_dims<D extends DType>(a: WgArray<D>, axis: number | readonly number[]): WgArray<D> {
  const list = typeof axis === 'number' ? [axis] : axis;
  const n = a.ndim + list.length;
  const at = normalizeAxes(list, n, `expand_dims of ${a.describe()}`);
  const shape: number[] = [];
  const strides: number[] = [];
  let k = 0;
  for (let i = 0; i < n; i++) {
    if (at.includes(i)) {
      shape.push(1);
      strides.push(0);
    } else {
      shape.push(a.shape[k]);
      strides.push(a.strides[k]);
      k++;
    }
  }
  return a.view(shape, { strides, offset: a.offset });
}

/** Length-1 dims removed (all, or those in `axis`, which must have length 1). A view. */
export function squeeze<D extends DType>(a: WgArray<D>, axis?: number | readonly number[]): WgArray<D> {
  const what = `squeeze of ${a.describe()}`;
  let drop: number[];
  if (axis === undefined) drop = a.shape.flatMap((n, i) => (n === 1 ? [i] : []));
  else {
    drop = normalizeAxes(typeof axis === 'number' ? [axis] : axis, a.ndim, what);
    for (const i of drop) {
      if (a.shape[i] !== 1) throw new ShapeError(`${what}: axis ${i} has length ${a.shape[i]}, not 1`);
    }
  }
  const keep = [...Array(a.ndim).keys()].filter((i) => !drop.includes(i));
  return a.view(
    keep.map((i) => a.shape[i]),
    { strides: keep.map((i) => a.strides[i]), offset: a.offset },
  );
}

/** The shape NumPy broadcasting gives `shapes`; a ShapeError names them all when they do not broadcast. */
export function broadcastShapes(shapes: readonly Shape[], what: string): number[] {
  const n = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(n).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const k = n - s.length + i;
      const m = s[i];
      if (m === out[k] || m === 1) continue;
      if (out[k] === 1) out[k] = m;
      else {
        throw new ShapeError(
          `${what}: shapes ${shapes.map(formatShape).join(' and ')} do not broadcast (dim ${k - n} has lengths ${out[k]} and ${m})`,
        );
      }
    }
  }
  return out;
}

/** `a` repeated along new leading dims and its length-1 dims (NumPy broadcasting). A view with zero strides. */
export function broadcast_to<D extends DType>(a: WgArray<D>, shape: Shape): WgArray<D> {
  shapeSize(shape);
  const lead = shape.length - a.ndim;
  const bad = () => new ShapeError(`cannot broadcast ${a.describe()} to shape ${formatShape(shape)}`);
  if (lead < 0) throw bad();
  const strides = shape.map((n, i) => {
    if (i < lead) return 0;
    const m = a.shape[i - lead];
    if (m === n) return m === 1 ? 0 : a.strides[i - lead];
    if (m === 1) return 0;
    throw bad();
  });
  return a.view(shape, { strides, offset: a.offset });
}

/** One axis's part of a slice: an index (drops the axis), a range, or null / undefined for all of it. */
export type SliceSpec = number | null | undefined | string | readonly (number | null | undefined)[] | SliceRange;

export interface SliceRange {
  start?: number | null;
  stop?: number | null;
  step?: number | null;
}

function parseSpec(spec: SliceSpec, axis: number, what: string): number | SliceRange | null {
  if (spec === null || spec === undefined) return null;
  if (typeof spec === 'number') return spec;
  if (typeof spec === 'string') {
    const parts = spec.split(':').map((s) => s.trim());
    const num = (s: string | undefined): number | null => {
      if (s === undefined || s === '') return null;
      const v = Number(s);
      if (!Number.isInteger(v)) throw new ArgumentError(`${what}: '${spec}' for axis ${axis} is not start:stop:step with integers`);
      return v;
    };
    if (parts.length === 1) {
      const v = num(parts[0]);
      if (v === null) throw new ArgumentError(`${what}: empty slice '${spec}' for axis ${axis}`);
      return v;
    }
    if (parts.length > 3) throw new ArgumentError(`${what}: '${spec}' for axis ${axis} has more than start:stop:step`);
    return { start: num(parts[0]), stop: num(parts[1]), step: num(parts[2]) };
  }
  if (Array.isArray(spec)) {
    const list = spec as readonly (number | null | undefined)[];
    if (list.length > 3) throw new ArgumentError(`${what}: [${list.join(', ')}] for axis ${axis} has more than [start, stop, step]`);
    return { start: list[0], stop: list[1], step: list[2] };
  }
  return spec as SliceRange;
}

/** NumPy's slice.indices: first index, step and count of a slice over `n` elements. */
export function sliceIndices(range: SliceRange, n: number, what: string): { start: number; step: number; count: number } {
  const step = range.step ?? 1;
  for (const v of [range.start, range.stop, range.step]) {
    if (v !== null && v !== undefined && !Number.isInteger(v)) throw new ArgumentError(`${what}: slice bound ${v} is not an integer`);
  }
  if (step === 0) throw new ArgumentError(`${what}: slice step cannot be zero`);
  const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
  let start: number;
  let stop: number;
  if (step > 0) {
    start = range.start == null ? 0 : clamp(range.start < 0 ? range.start + n : range.start, 0, n);
    stop = range.stop == null ? n : clamp(range.stop < 0 ? range.stop + n : range.stop, 0, n);
  } else {
    start = range.start == null ? n - 1 : clamp(range.start < 0 ? range.start + n : range.start, -1, n - 1);
    stop = range.stop == null ? -1 : clamp(range.stop < 0 ? range.stop + n : range.stop, -1, n - 1);
  }
  const count = step > 0 ? Math.max(0, Math.ceil((stop - start) / step)) : Math.max(0, Math.ceil((start - stop) / -step));
  return { start, step, count };
}

/**
 * Basic indexing, as NumPy's a[...]: one spec per leading axis (missing ones
 * take the whole axis). A number picks one index and drops the axis
 * (negative counts from the end; out of range is an error); a range
 * `[start, stop, step]`, `{ start, stop, step }` or 'start:stop:step' keeps it
 * (bounds clamp as in NumPy, negative steps walk backwards). A view.
 */
export function slice<D extends DType>(a: WgArray<D>, ...specs: SliceSpec[]): WgArray<D> {
  const what = `slice of ${a.describe()}`;
  if (specs.length > a.ndim) throw new ArgumentError(`${what}: ${specs.length} indices for ${a.ndim} dimensions`);
  let offset = a.offset;
  const shape: number[] = [];
  const strides: number[] = [];
  for (let i = 0; i < a.ndim; i++) {
    const spec = parseSpec(specs[i], i, what);
    const n = a.shape[i];
    if (spec === null) {
      shape.push(n);
      strides.push(a.strides[i]);
    } else if (typeof spec === 'number') {
      if (!Number.isInteger(spec) || spec < -n || spec >= n) {
        throw new ArgumentError(`${what}: index ${spec} is out of range for axis ${i} of length ${n}`);
      }
      offset += (spec < 0 ? spec + n : spec) * a.strides[i];
    } else {
      const { start, step, count } = sliceIndices(spec, n, what);
      shape.push(count);
      strides.push(a.strides[i] * step);
      if (count > 0) offset += start * a.strides[i];
    }
  }
  return a.view(shape, { strides, offset });
}

/**
 * Splits along `axis` into `sections` equal parts (which must divide the
 * axis), or at the given indices (as NumPy's split). Views.
 */
export function split<D extends DType>(a: WgArray<D>, sections: number | readonly number[], axis = 0): WgArray<D>[] {
  const what = `split of ${a.describe()}`;
  const ax = normalizeAxis(axis, a.ndim, what);
  const n = a.shape[ax];
  let cuts: number[];
  if (typeof sections === 'number') {
    if (!Number.isInteger(sections) || sections <= 0) throw new ArgumentError(`${what}: ${sections} sections; expected a positive integer`);
    if (n % sections !== 0) throw new ShapeError(`${what}: axis ${ax} of length ${n} does not split into ${sections} equal sections`);
    cuts = Array.from({ length: sections - 1 }, (_, i) => ((i + 1) * n) / sections);
  } else {
    cuts = sections.map((c) => {
      if (!Number.isInteger(c)) throw new ArgumentError(`${what}: split index ${c} is not an integer`);
      return Math.min(n, Math.max(0, c < 0 ? c + n : c));
    });
  }
  const bounds = [0, ...cuts, n];
  const out: WgArray<D>[] = [];
  for (let k = 0; k + 1 < bounds.length; k++) {
    const specs: SliceSpec[] = new Array<SliceSpec>(ax).fill(null);
    specs.push([bounds[k], Math.max(bounds[k], bounds[k + 1])]);
    out.push(slice(a, ...specs));
  }
  return out;
}

function checkSameDevice(arrays: readonly WgArray[], what: string): void {
  for (const x of arrays) {
    if (x.device !== arrays[0].device) throw new ArgumentError(`${what}: ${x.describe()} is on another device than ${arrays[0].describe()}`);
  }
}

/**
 * The arrays joined along an existing axis. Dtypes must agree (cast first:
 * concatenation moves bits and works for every dtype); the other dims must match.
 */
export function concatenate<D extends DType>(arrays: readonly WgArray<D>[], axis = 0): WgArray<D> {
  if (arrays.length === 0) throw new ArgumentError('concatenate: needs at least one array');
  const first = arrays[0];
  const what = 'concatenate';
  checkSameDevice(arrays, what);
  const ax = normalizeAxis(axis, first.ndim, `${what} of ${first.describe()}`);
  let total = 0;
  for (const x of arrays) {
    if (x.dtype !== first.dtype) {
      throw new DTypeError(`${what}: ${x.describe()} has dtype ${x.dtype}, ${first.describe()} has ${first.dtype}; cast them to one dtype first`);
    }
    if (x.ndim !== first.ndim || x.shape.some((n, i) => i !== ax && n !== first.shape[i])) {
      throw new ShapeError(
        `${what} along axis ${ax}: shapes ${formatShape(first.shape)} and ${formatShape(x.shape)} differ outside that axis`,
      );
    }
    total += x.shape[ax];
  }
  const shape = [...first.shape];
  shape[ax] = total;
  const out = WgArray.empty(first.device, shape, first.dtype, first.name);
  let at = 0;
  for (const x of arrays) {
    const pos = new Array<number>(shape.length).fill(0);
    pos[ax] = at;
    copyInto(out, x, pos);
    at += x.shape[ax];
  }
  return out;
}

/** The arrays (all of one shape and dtype) joined along a new axis. */
export function stack<D extends DType>(arrays: readonly WgArray<D>[], axis = 0): WgArray<D> {
  if (arrays.length === 0) throw new ArgumentError('stack: needs at least one array');
  const first = arrays[0];
  for (const x of arrays) {
    if (x.ndim !== first.ndim || x.shape.some((n, i) => n !== first.shape[i])) {
      throw new ShapeError(`stack: shapes ${formatShape(first.shape)} and ${formatShape(x.shape)} differ`);
    }
  }
  const ax = normalizeAxis(axis, first.ndim + 1, `stack of ${first.describe()}`);
  const views = arrays.map((x) => expand_dims(x, ax));
  try {
    return concatenate(views, ax);
  } finally {
    for (const v of views) v.dispose();
  }
}

/**
 * Elements at `indices` along `axis` (default: of the flattened array):
 * the result's shape is a.shape[:axis] + indices.shape + a.shape[axis+1:].
 * Indices given as JS numbers / TypedArrays are checked here (negative ones
 * count from the end; out of range is an ArgumentError). Indices already on
 * the GPU (int32 or uint32) cannot be checked without a readback: negative
 * ones count from the end and out-of-range ones are clamped to the axis.
 */
export function take<D extends DType>(
  a: WgArray<D>,
  indices: WgArray | readonly number[] | TypedArray | number,
  axis?: number,
): WgArray<D> {
  const what = `take from ${a.describe()}`;
  if (axis === undefined) {
    const flat = flatten(a);
    try {
      return take(flat, indices, 0);
    } finally {
      flat.dispose();
    }
  }
  const ax = normalizeAxis(axis, a.ndim, what);
  const n = a.shape[ax];
  let idx: WgArray;
  let scalar = false;
  if (indices instanceof WgArray) {
    if (indices.device !== a.device) throw new ArgumentError(`${what}: the indices are on another device`);
    if (indices.dtype === 'int32' || indices.dtype === 'uint32') idx = contiguous(indices);
    else if (DTYPES[indices.dtype].computed && DTYPES[indices.dtype].kind !== 'float') {
      const c = contiguous(indices);
      idx = c.astype('int32');
      c.dispose();
    } else throw new DTypeError(`${what}: indices ${indices.describe()} must have an integer dtype`);
  } else {
    if (typeof indices === 'number') scalar = true;
    const list = typeof indices === 'number' ? [indices] : isTypedArray(indices) ? Array.from(indices as ArrayLike<number | bigint>, Number) : indices;
    const values = new Int32Array(list.length);
    list.forEach((v, k) => {
      if (!Number.isInteger(v) || v < -n || v >= n) throw new ArgumentError(`${what}: index ${v} (position ${k}) is out of range for axis ${ax} of length ${n}`);
      values[k] = v < 0 ? v + n : v;
    });
    const shape = isTypedArray(indices) || typeof indices === 'number' ? [values.length] : [list.length];
    idx = fromBytes(values, shape, 'int32', a.device);
  }
  try {
    if (n === 0 && idx.size > 0) throw new ArgumentError(`${what}: cannot take indices from axis ${ax} of length 0`);
    const idxShape = scalar ? [] : idx.shape;
    const outShape = [...a.shape.slice(0, ax), ...idxShape, ...a.shape.slice(ax + 1)];
    const out = WgArray.empty(a.device, outShape, a.dtype, a.name);
    if (out.size === 0) return out;
    // The copy walks [before, index, after]; the index dim reads the source axis through `indices`.
    const lengths = [...a.shape.slice(0, ax), idx.size, ...a.shape.slice(ax + 1)];
    const strides = [...a.strides.slice(0, ax), 0, ...a.strides.slice(ax + 1)];
    copyStrided(
      a.device,
      DTYPES[a.dtype].bytes,
      { buffer: a.buffer, offset: a.offset, strides },
      lengths,
      { buffer: out.buffer, offset: 0, shape: lengths, at: lengths.map(() => 0) },
      { dim: ax, indices: idx.buffer, indexOffset: idx.offset, signed: idx.dtype === 'int32', axisLength: n, axisStride: a.strides[ax] },
    );
    return out;
  } finally {
    idx.dispose();
  }
}
