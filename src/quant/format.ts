// The descriptor of one quantization format: its ggml geometry, its WGSL
// kernels and its CPU reference. src/quant/registry.ts lists them; the
// kernels, the GGUF io and the tests all draw from that list. A descriptor is
// the one source of its format's facts: block size and bytes come from the
// ggml type table (src/runtime/ggml-types.ts, also generated into the WGSL as
// QK / BLOCK_BYTES / BLOCK_WORDS), dispatch geometry reaches the WGSL as
// `override` constants.

import type { GGMLType } from '../runtime/ggml-types.js';

/**
 * What a block holding NaN or ±Inf becomes.
 *   'marked':      every scale field NaN and every quant 0 (MXFP4: exponent 0xff),
 *                  see src/quant/formats/block-helpers.ts; ggml's own bytes are
 *                  undefined there (float -> int conversions of NaN/Inf).
 *   'as-ggml':     ggml's bytes, which are defined (the K-quants convert floats
 *                  to ints only through nearest_int's bit trick).
 */
export type NonFiniteRule = 'marked' | 'as-ggml';

/**
 * How ggml's quantizer uses an importance matrix (per-column weights from
 * llama-imatrix) for this type: 'ignored' (ggml drops it), 'optional' (used
 * when given), 'required' (ggml refuses to quantize without one).
 */
export type ImatrixUse = 'ignored' | 'optional' | 'required';

export interface QuantFormat {
  /** Geometry and id, from the ggml type table. */
  readonly type: GGMLType;
  /**
   * shaders/ file supplying the block functions that the shared entry points
   * of shaders/lib/quant_entry.wgsl call:
   *   fn quantize_blocks(inv: u32, first: u32): invocation `inv` writes blocks
   *     first .. first + blocksPerInvocation - 1 (those below qparams.n_blocks);
   *   fn dequantize_part(b: u32, part: u32): part `part` (of invocationsPerBlock)
   *     of block b.
   * See shaders/lib/quantize_io.wgsl and shaders/lib/dequantize_io.wgsl.
   */
  readonly shader: string;
  /** The quantize dispatch: blocks x typeSize per invocation must fill whole 32-bit words. */
  readonly quantize: { readonly workgroupSize: number; readonly blocksPerInvocation: number };
  /** The dequantize dispatch: invocationsPerBlock divides workgroupSize. */
  readonly dequantize: { readonly workgroupSize: number; readonly invocationsPerBlock: number };
  /** What a block with NaN or ±Inf input becomes (GPU and CPU alike). */
  readonly nonFinite: NonFiniteRule;
  /** ggml's reference quantizer: x.length is a multiple of blockSize; out holds x.length / blockSize blocks. */
  quantizeCpu(x: Float32Array, out: Uint8Array): void;
  /**
   * What ggml_quantize_chunk does with an importance matrix (quant_weights):
   * 'ignored' (Q8_0, MXFP4, TQ1_0, TQ2_0: the same bytes with or without),
   * 'optional' (the _impl paths: weighted searches when given, the reference without),
   * 'required' (the IQ1-IQ3 formats: ggml asserts it is there).
   */
  readonly imatrix: ImatrixUse;
  /**
   * ggml_quantize_chunk with quant_weights: x holds whole rows of nPerRow
   * values, weights nPerRow per-column weights (one row's worth; a 3-D
   * tensor's experts are quantized one call each). Absent where imatrix is 'ignored'.
   */
  quantizeWeightedCpu?(x: Float32Array, out: Uint8Array, nPerRow: number, weights: Float32Array): void;
  /**
   * The shader also has `quantize_weighted` (the same with importance weights,
   * built with the override WEIGHTED = true): bindings 3 weights (array<f32>,
   * row length x experts), 4 WeightParams { blocks_per_row, first_block,
   * blocks_per_expert, pad }. Absent: quantize() with an imatrix has no GPU path for the format.
   */
  readonly weightedKernel?: boolean;
  /**
   * Read-only lookup tables (the IQ formats' grids, kmaps, neighbour lists) as
   * u32 words: one storage buffer, built once per device, that every entry
   * point of the shader binds at @group(1) @binding(0). Absent: no group 1.
   */
  readonly tables?: () => Uint32Array;
  /** ggml's dequantizer: blocks holds whole blocks; out holds blockSize floats per block. */
  dequantizeCpu(blocks: Uint8Array, out: Float32Array): void;
}

/** Blocks one quantize workgroup writes. */
export function quantizeBlocksPerWorkgroup(f: QuantFormat): number {
  return f.quantize.workgroupSize * f.quantize.blocksPerInvocation;
}

/** Blocks one dequantize workgroup reads. */
export function dequantizeBlocksPerWorkgroup(f: QuantFormat): number {
  return f.dequantize.workgroupSize / f.dequantize.invocationsPerBlock;
}
