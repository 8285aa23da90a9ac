// Strided copy: contiguous(), concatenate, take. Run by src/kernels/copy.ts.
//
// Copies a box of elements (lengths len[d]) from a strided source into a
// row-major destination. Elements are ELEM_BYTES bytes (1, 2, 4 or 8: a copy
// moves bits and needs no arithmetic, so every dtype works). Positions are
// relative to the bound windows; strides are two's complement u32, so the
// wrapping sums below give the right index for negative strides too.
//
// The box is walked as rows: the dims before ROW_DIMS index rows, the dims
// from ROW_DIMS on form one segment that is contiguous in the destination
// (dim ROW_DIMS may be partial, the later ones are whole). One invocation
// writes one whole destination word. For 1- and 2-byte elements a word can
// hold the end of one row's segment and the start of the next: the word
// belongs to the row of its first element in the box, which also fills the
// next row's lanes and keeps lanes outside the box as they were.
//
// take_dim (when < 16) is the dim whose index goes through `indices`
// (int32/uint32, negative ones counted from the end, then clamped to the axis).

//#include lib/grid.wgsl

override ELEM_BYTES: u32 = 4u;

struct Params {
  ndim: u32,
  row_dims: u32,
  // invocations per row, rows * wpr invocations in all
  wpr: u32,
  total: u32,
  seg_len: u32,
  rows: u32,
  // destination / source element index of the box's origin in its window
  dst_origin: u32,
  src_origin: u32,
  // take: source axis length and stride, first index of the box in `indices`
  take_len: u32,
  take_stride: u32,
  take_base: u32,
  // take_dim: bits 0-7 the dim (16: none), bit 8 set for signed indices
  take: u32,
  // the last dim's length and source stride (read per element: kept out of the arrays)
  last_len: u32,
  last_stride: u32,
  _pad: vec2<u32>,
  len: array<vec4<u32>, 4>,
  dstride: array<vec4<u32>, 4>,
  sstride: array<vec4<u32>, 4>,
}

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read> indices: array<u32>;

fn len_at(d: u32) -> u32 { return params.len[d >> 2u][d & 3u]; }
fn dstride_at(d: u32) -> u32 { return params.dstride[d >> 2u][d & 3u]; }
fn sstride_at(d: u32) -> u32 { return params.sstride[d >> 2u][d & 3u]; }

// Source offset of index i along dim d.
fn src_step(d: u32, i: u32) -> u32 {
  if (d == (params.take & 0xffu)) {
    let signed = (params.take & 0x100u) != 0u;
    var j = indices[params.take_base + i];
    if (signed && bitcast<i32>(j) < 0) { j = j + params.take_len; }
    if (signed && bitcast<i32>(j) < 0) { j = 0u; }
    j = min(j, params.take_len - 1u);
    return j * params.take_stride;
  }
  return i * sstride_at(d);
}

// Destination and source positions of row r's first element.
fn row_start(r: u32) -> vec2<u32> {
  var dpos = params.dst_origin;
  var spos = params.src_origin;
  var rem = r;
  for (var k = params.row_dims; k > 0u; k = k - 1u) {
    let d = k - 1u;
    let n = len_at(d);
    let i = rem % n;
    rem = rem / n;
    dpos = dpos + i * dstride_at(d);
    spos = spos + src_step(d, i);
  }
  return vec2<u32>(dpos, spos);
}

// Element q of a segment: its index w along the last dim, and the source
// offset of the other segment dims (from the segment's first element).
fn seg_decode(q: u32) -> vec2<u32> {
  var rem = q;
  var spos = 0u;
  var w = 0u;
  let last = params.ndim - 1u;
  for (var d = last; d >= params.row_dims; d = d - 1u) {
    let n = len_at(d);
    let i = rem % n;
    rem = rem / n;
    if (d == last) { w = i; } else { spos = spos + src_step(d, i); }
    if (d == 0u) { break; }
  }
  return vec2<u32>(spos, w);
}

// Walks a segment from element q on: source offsets step along the last dim
// and are decoded afresh (divisions) only where that dim wraps.
struct Walker {
  q: u32,
  base: u32,
  w: u32,
}

fn walk_from(q: u32) -> Walker {
  let d = seg_decode(q);
  return Walker(q, d.x, d.y);
}

fn walk_src(it: Walker) -> u32 {
  let last = params.ndim - 1u;
  if (last == (params.take & 0xffu)) { return it.base + src_step(last, it.w); }
  return it.base + it.w * params.last_stride;
}

fn walk_next(it: Walker) -> Walker {
  if (it.w + 1u < params.last_len) { return Walker(it.q + 1u, it.base, it.w + 1u); }
  return walk_from(it.q + 1u);
}

// Bits of one element; 8-bit arithmetic on the width keeps the shift in range for every ELEM_BYTES.
fn elem_mask() -> u32 {
  return select(0xffffffffu, (1u << ((ELEM_BYTES * 8u) & 31u)) - 1u, ELEM_BYTES < 4u);
}

// Element at source position s, zero-extended (ELEM_BYTES < 4).
fn load_packed(s: u32) -> u32 {
  let byte = s * ELEM_BYTES;
  return (src[byte >> 2u] >> ((byte & 3u) * 8u)) & elem_mask();
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let inv = linear_index(wid, nwg, lid);
  if (inv >= params.total) { return; }
  var r = 0u;
  var k = inv;
  var row = vec2<u32>(params.dst_origin, params.src_origin);
  if (params.rows > 1u) {
    r = inv / params.wpr;
    k = inv % params.wpr;
    row = row_start(r);
  }
  let seg = params.seg_len;

  if (ELEM_BYTES >= 4u) {
    // Up to four elements of this row's segment per invocation.
    let q0 = k * 4u;
    var it = walk_from(q0);
    let words = ELEM_BYTES / 4u;
    for (var j = 0u; j < 4u; j = j + 1u) {
      if (q0 + j >= seg) { break; }
      let s = row.y + walk_src(it);
      let d = row.x + q0 + j;
      for (var h = 0u; h < words; h = h + 1u) { dst[d * words + h] = src[s * words + h]; }
      it = walk_next(it);
    }
    return;
  }

  let lanes = 4u / ELEM_BYTES;
  let w = (row.x / lanes) + k;
  let p0 = w * lanes;
  let seg_end = row.x + seg;
  if (p0 >= seg_end) { return; }
  // A word starting before this row's segment may belong to the previous row.
  if (p0 < row.x && r > 0u) {
    let prev = row_start(r - 1u);
    if (prev.x + seg > p0) { return; }
  }
  var next = vec2<u32>(0xffffffffu, 0u);
  if (p0 + lanes > seg_end && r + 1u < params.rows) { next = row_start(r + 1u); }
  let width = ELEM_BYTES * 8u;
  let mask = elem_mask();
  var word = 0u;
  var keep = 0u;
  var it = walk_from(max(p0, row.x) - row.x);
  for (var j = 0u; j < lanes; j = j + 1u) {
    let p = p0 + j;
    let shift = j * width;
    if (p >= row.x && p < seg_end) {
      word = word | (load_packed(row.y + walk_src(it)) << shift);
      it = walk_next(it);
    } else if (p >= next.x && p - next.x < seg) {
      let d = seg_decode(p - next.x);
      word = word | (load_packed(next.y + d.x + src_step(params.ndim - 1u, d.y)) << shift);
    } else {
      keep = keep | (mask << shift);
    }
  }
  if (keep != 0u) { word = word | (dst[w] & keep); }
  dst[w] = word;
}

// ---- Tiled transpose ----------------------------------------------------
// The common case of a copy: the destination's last dim N walks the source
// with a stride while its second-to-last dim M is contiguous in the source (a
// matrix transpose, possibly batched). A workgroup moves one 64 x 64 tile:
// it reads source columns (contiguous) into workgroup memory and writes
// destination rows (contiguous), whole words at a time. Needs N a multiple
// of the elements per word and 4-byte-aligned destination rows.

struct TileParams {
  batch_dims: u32,
  m: u32,
  n: u32,
  tiles_m: u32,
  tiles_n: u32,
  tiles: u32,
  dst_origin: u32,
  src_origin: u32,
  // source stride of dim N, destination stride of dim M (row pitch)
  src_stride_n: u32,
  dst_pitch: u32,
  _pad: vec2<u32>,
  len: array<vec4<u32>, 4>,
  dstride: array<vec4<u32>, 4>,
  sstride: array<vec4<u32>, 4>,
}

@group(0) @binding(2) var<uniform> tparams: TileParams;

const TILE = 64u;
var<workgroup> tile: array<u32, 4160>;

fn tile_load(s: u32) -> u32 {
  if (ELEM_BYTES == 4u) { return src[s]; }
  return load_packed(s);
}

// Where batch `batch` (the leading dimensions, row-major) starts: (destination, source) element offsets.
fn batch_bases(batch: u32) -> vec2<u32> {
  var b = batch;
  var dbase = tparams.dst_origin;
  var sbase = tparams.src_origin;
  for (var k = tparams.batch_dims; k > 0u; k = k - 1u) {
    let d = k - 1u;
    let n = tparams.len[d >> 2u][d & 3u];
    let i = b % n;
    b = b / n;
    dbase = dbase + i * tparams.dstride[d >> 2u][d & 3u];
    sbase = sbase + i * tparams.sstride[d >> 2u][d & 3u];
  }
  return vec2<u32>(dbase, sbase);
}

@compute @workgroup_size(256)
fn transpose_tiles(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
  let t = wid.y * nwg.x + wid.x;
  if (t >= tparams.tiles) { return; }
  let tn = t % tparams.tiles_n;
  let rest = t / tparams.tiles_n;
  let tm = rest % tparams.tiles_m;
  let bases = batch_bases(rest / tparams.tiles_m);
  let dbase = bases.x;
  let sbase = bases.y;
  let m0 = tm * TILE;
  let n0 = tn * TILE;
  let ml = lid % TILE;
  for (var k = 0u; k < TILE / 4u; k = k + 1u) {
    let nl = lid / TILE + 4u * k;
    if (m0 + ml < tparams.m && n0 + nl < tparams.n) {
      tile[nl * (TILE + 1u) + ml] = tile_load(sbase + (m0 + ml) + (n0 + nl) * tparams.src_stride_n);
    }
  }
  workgroupBarrier();
  let lanes = 4u / ELEM_BYTES;
  let row_words = TILE / lanes;
  let mask = elem_mask();
  for (var k = 0u; k < TILE * TILE / 256u / lanes; k = k + 1u) {
    let wi = lid + 256u * k;
    let row = wi / row_words;
    let nf = (wi % row_words) * lanes;
    if (m0 + row < tparams.m && n0 + nf < tparams.n) {
      var word = 0u;
      for (var j = 0u; j < lanes; j = j + 1u) {
        word = word | ((tile[(nf + j) * (TILE + 1u) + row] & mask) << (j * ELEM_BYTES * 8u));
      }
      dst[(dbase + (m0 + row) * tparams.dst_pitch + n0 + nf) / lanes] = word;
    }
  }
}

// ---- 4 x 4 register transpose --------------------------------------------
// The tiled transpose's case with 4-byte elements, M and N multiples of 4 and
// every source column / destination row starting on a 16-byte vector
// (src/kernels/copy.ts checks): each invocation moves one 4 x 4 block with
// four vector loads and four vector stores, and no workgroup memory or
// barrier (which CPU drivers run slowly). tiles_m / tiles_n / tiles count
// 4 x 4 blocks here.

@group(0) @binding(0) var<storage, read> src4: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> dst4: array<vec4<u32>>;

@compute @workgroup_size(256)
fn transpose_4x4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let t = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (t >= tparams.tiles) { return; }
  let bm = t % tparams.tiles_m;
  let rest = t / tparams.tiles_m;
  let bn = rest % tparams.tiles_n;
  let bases = batch_bases(rest / tparams.tiles_n);
  let dbase = bases.x;
  let sbase = bases.y;
  let m0 = bm * 4u;
  let n0 = bn * 4u;
  // source column n holds elements m0 .. m0 + 3 contiguously
  let s = sbase + m0 + n0 * tparams.src_stride_n;
  let c0 = src4[s >> 2u];
  let c1 = src4[(s + tparams.src_stride_n) >> 2u];
  let c2 = src4[(s + 2u * tparams.src_stride_n) >> 2u];
  let c3 = src4[(s + 3u * tparams.src_stride_n) >> 2u];
  let d = dbase + m0 * tparams.dst_pitch + n0;
  dst4[d >> 2u] = vec4<u32>(c0.x, c1.x, c2.x, c3.x);
  dst4[(d + tparams.dst_pitch) >> 2u] = vec4<u32>(c0.y, c1.y, c2.y, c3.y);
  dst4[(d + 2u * tparams.dst_pitch) >> 2u] = vec4<u32>(c0.z, c1.z, c2.z, c3.z);
  dst4[(d + 3u * tparams.dst_pitch) >> 2u] = vec4<u32>(c0.w, c1.w, c2.w, c3.w);
}
