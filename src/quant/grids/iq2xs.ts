// The E8 lattice grids of ggml's IQ2_XXS (256 points), IQ2_XS (512), IQ2_S (1024)
// and IQ1_S/IQ1_M (2048), with what ggml's iq2xs_init_impl derives from them for
// the quantizers: kmap (a point's 2-bit code -> its grid index, or where its
// neighbour list starts) and the neighbour lists (the grid points nearest to each
// code that is not on the grid). The grids come from src/quant/grids/iq2xs-data.ts
// (generated from ggml's sources by scripts/gen-iq2xs-grids.mjs); the kmap and
// neighbours are computed here on first use, as ggml computes them in
// ggml_quantize_init: 1.6 MB even compressed, well under a second to compute.

import { GRID_256, GRID_512, GRID_1024, GRID_2048, KGRID_256, KGRID_512, KGRID_1024, KGRID_2048, KMASK_IQ2XS, KSIGNS_IQ2XS } from './iq2xs-data.js';

export type Iq2xsGridSize = 256 | 512 | 1024 | 2048;

/** kmap's length in ggml: codes 0 .. 0xaaab (8 digits of at most 2, plus slack). */
export const IQ2XS_KMAP_SIZE = 43692;

export interface Iq2xsGrid {
  readonly size: Iq2xsGridSize;
  /** ggml-quants.c kgrid_*: point k's eight coordinates as 2-bit codes l (bits 2i..2i+1). */
  readonly codes: Uint16Array;
  /** ggml-common.h's grid (iq2xxs_grid, iq2xs_grid, iq2s_grid, iq1s_grid): point k as 8 signed bytes at 8k. */
  readonly grid: Int8Array;
  /** The same bytes as u32 pairs (little-endian), for a GPU storage buffer. */
  readonly gridWords: Uint32Array;
  /** iq2xs_init_impl's grid: point k's coordinates as 2l + 1 (1, 3, 5, 7) at 8k. */
  readonly positions: Int8Array;
  /**
   * iq2xs_init_impl's kmap, indexed by a code (8 two-bit digits): the grid index
   * (>= 0) of a code on the grid; otherwise -(o + 1), o the offset in `neighbours`
   * of its list.
   */
  readonly map: Int32Array;
  /** iq2xs_init_impl's neighbour lists: at each offset a count n, then n grid indices. */
  readonly neighbours: Uint16Array;
}

/** ggml-common.h ksigns_iq2xs: 7 sign bits plus the parity bit that makes their count even. */
export const KSIGNS_IQ2XS_TABLE: Uint8Array = Uint8Array.from(KSIGNS_IQ2XS);
/** ggml-common.h kmask_iq2xs. */
export const KMASK_IQ2XS_TABLE: Uint8Array = Uint8Array.from(KMASK_IQ2XS);

const SOURCES: Record<Iq2xsGridSize, { codes: string; grid: string; nwant: number }> = {
  256: { codes: KGRID_256, grid: GRID_256, nwant: 2 },
  512: { codes: KGRID_512, grid: GRID_512, nwant: 2 },
  1024: { codes: KGRID_1024, grid: GRID_1024, nwant: 1 },
  2048: { codes: KGRID_2048, grid: GRID_2048, nwant: 3 },
};

function decodeBase64(s: string): Uint8Array {
  const b = Buffer.from(s, 'base64');
  // a copy: aligned for the typed views below, not shared with Buffer's pool
  return new Uint8Array(b);
}

function littleEndianU16(bytes: Uint8Array): Uint16Array {
  const out = new Uint16Array(bytes.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = bytes[2 * i] | (bytes[2 * i + 1] << 8);
  return out;
}

const cache = new Map<Iq2xsGridSize, Iq2xsGrid>();

/** The grid of `size` points with its kmap and neighbour lists (computed once, then cached). */
export function iq2xsGrid(size: Iq2xsGridSize): Iq2xsGrid {
  let g = cache.get(size);
  if (!g) {
    const src = SOURCES[size];
    if (!src) throw new RangeError(`no iq2xs grid of ${size} points (256, 512, 1024, 2048)`);
    const codes = littleEndianU16(decodeBase64(src.codes));
    const gridBytes = decodeBase64(src.grid);
    const words = new Uint32Array(gridBytes.length / 4);
    for (let i = 0; i < words.length; i++) {
      words[i] = (gridBytes[4 * i] | (gridBytes[4 * i + 1] << 8) | (gridBytes[4 * i + 2] << 16) | (gridBytes[4 * i + 3] << 24)) >>> 0;
    }
    const { map, neighbours } = iq2xsNeighbours(codes, src.nwant);
    g = {
      size,
      codes,
      grid: new Int8Array(gridBytes.buffer, gridBytes.byteOffset, gridBytes.length),
      gridWords: words,
      positions: iq2xsPositions(codes),
      map,
      neighbours,
    };
    cache.set(size, g);
  }
  return g;
}

/** iq2xs_init_impl's grid: coordinate i of point k is 2 * ((codes[k] >> 2i) & 3) + 1. */
export function iq2xsPositions(codes: Uint16Array): Int8Array {
  const pos = new Int8Array(codes.length * 8);
  for (let k = 0; k < codes.length; k++) {
    for (let i = 0; i < 8; i++) pos[8 * k + i] = 2 * ((codes[k] >> (2 * i)) & 3) + 1;
  }
  return pos;
}

/**
 * iq2xs_init_impl's kmap and neighbour lists. For each code not on the grid,
 * ggml sorts all grid points by (squared distance, index) and keeps every point
 * whose distance is among the `nwant` smallest distinct distances, in that order;
 * lists are laid out by ascending code. Here the same lists come from a distance
 * histogram (distances are small integers) instead of a sort, and the distances
 * from two 4-coordinate halves looked up in a table.
 */
export function iq2xsNeighbours(codes: Uint16Array, nwant: number): { map: Int32Array; neighbours: Uint16Array } {
  const G = codes.length;
  const map = new Int32Array(IQ2XS_KMAP_SIZE).fill(-1);
  // (pos - 1) / 2 of each coordinate rebuilds the code itself
  for (let k = 0; k < G; k++) map[codes[k]] = k;

  // half[a * 256 + b]: squared distance between the 4-coordinate halves with codes a and b
  const half = new Uint16Array(256 * 256);
  for (let a = 0; a < 256; a++) {
    for (let b = 0; b < 256; b++) {
      let d2 = 0;
      for (let i = 0; i < 4; i++) {
        const d = 2 * (((a >> (2 * i)) & 3) - ((b >> (2 * i)) & 3));
        d2 += d * d;
      }
      half[a * 256 + b] = d2;
    }
  }
  const lo = new Int32Array(G);
  const hi = new Int32Array(G);
  for (let j = 0; j < G; j++) {
    lo[j] = (codes[j] & 255) * 256;
    hi[j] = (codes[j] >> 8) * 256;
  }

  const MAX_D2 = 8 * 36;
  const count = new Int32Array(MAX_D2 + 1);
  const dist = new Uint16Array(G);
  const chosen = new Int32Array(nwant);
  const lists: Uint16Array[] = [];
  let total = 0;
  for (let i = 0; i < IQ2XS_KMAP_SIZE; i++) {
    if (map[i] >= 0) continue;
    const pl = i & 255;
    const ph = i >> 8;
    count.fill(0);
    for (let j = 0; j < G; j++) {
      const d2 = half[lo[j] + pl] + half[hi[j] + ph];
      dist[j] = d2;
      count[d2]++;
    }
    let nchosen = 0;
    let n = 0;
    for (let d2 = 0; d2 <= MAX_D2 && nchosen < nwant; d2++) {
      if (count[d2] > 0) {
        chosen[nchosen++] = d2;
        n += count[d2];
      }
    }
    const list = new Uint16Array(n + 1);
    list[0] = n;
    let at = 1;
    for (let c = 0; c < nchosen; c++) {
      const want = chosen[c];
      for (let j = 0; j < G; j++) if (dist[j] === want) list[at++] = j;
    }
    map[i] = -(total + 1);
    lists.push(list);
    total += n + 1;
  }
  const neighbours = new Uint16Array(total);
  let at = 0;
  for (const l of lists) {
    neighbours.set(l, at);
    at += l.length;
  }
  return { map, neighbours };
}

const gpuCache = new Map<Iq2xsGridSize, Uint32Array>();

/** Where the neighbour lists start in iq2xsGpuTables, in 16-byte units (vec4 of u32). */
export function iq2xsGpuListsAt(size: Iq2xsGridSize): number {
  return Math.ceil((size + IQ2XS_KMAP_SIZE) / 4);
}

/**
 * The grid of `size` points as one storage buffer for the IQ2 kernels
 * (shaders/lib/iq2_search.wgsl, read as vec4<u32>): the 2-bit codes (one word
 * each), kmap (43692 words, i32), then from iq2xsGpuListsAt(size) * 16 bytes the
 * neighbour lists (u16, little-endian), each list's count followed by its points'
 * codes rather than their indices (the kernel needs the levels; kmap gives the
 * winner's index back). Each list starts on a 16-byte boundary, so the search
 * reads eight entries per vec4 load (lavapipe runs a vec4 load at about the
 * cost of one u32 load); kmap's entry for a code off the grid is -(v + 1), v
 * its list's vec4 offset.
 */
export function iq2xsGpuTables(size: Iq2xsGridSize): Uint32Array {
  let words = gpuCache.get(size);
  if (!words) {
    const g = iq2xsGrid(size);
    // each list padded to a multiple of 8 entries (count included)
    const listVec4 = new Map<number, number>();
    let vec4s = 0;
    for (let o = 0; o < g.neighbours.length; o += g.neighbours[o] + 1) {
      listVec4.set(o, vec4s);
      vec4s += Math.ceil((g.neighbours[o] + 1) / 8);
    }
    const listsAt = 4 * iq2xsGpuListsAt(size);
    words = new Uint32Array(listsAt + 4 * vec4s);
    words.set(g.codes, 0);
    for (let u = 0; u < g.map.length; u++) {
      const m = g.map[u];
      words[size + u] = (m >= 0 ? m : -(listVec4.get(-m - 1)! + 1)) >>> 0;
    }
    const entries = new Uint16Array(8 * vec4s);
    for (let o = 0; o < g.neighbours.length; o += g.neighbours[o] + 1) {
      const e = 8 * listVec4.get(o)!;
      entries[e] = g.neighbours[o];
      for (let j = 1; j <= g.neighbours[o]; j++) entries[e + j] = g.codes[g.neighbours[o + j]];
    }
    for (let i = 0; i < entries.length; i++) words[listsAt + (i >> 1)] |= entries[i] << (16 * (i & 1));
    gpuCache.set(size, words);
  }
  return words;
}
