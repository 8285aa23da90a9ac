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
  /**
   * The quantize dispatch: blocks x typeSize per invocation must fill whole 32-bit words.
   * `errorSums`: the kernel also writes the report's error sums, one vec4 per workgroup,
   * at @group(0) @binding(6), from every entry point, weighted or not
   * (shaders/lib/quantize_error_sums.wgsl; src/kernels/quant-error.ts quantizeMeasured).
   */
  readonly quantize: { readonly workgroupSize: number; readonly blocksPerInvocation: number; readonly errorSums?: boolean };
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
   * The GPU path with importance weights (absent: quantize() with an imatrix
   * has none for the format; the CPU reference gives ggml's bytes). Both read
   * bindings 3 (weights: row length x experts f32, padded to 16 bytes) and 4
   * (WeightParams { blocks_per_row, first_block, blocks_per_expert, weighted }):
   *   'own-entry':    a `quantize_weighted` entry point, built with the override WEIGHTED = true;
   *   'shared-entry': the `quantize` entry point itself (lib/imatrix_weights.wgsl),
   *                   bound with a placeholder and weighted 0 when there are no weights,
   *                   so that one pipeline (one lavapipe compile) serves both;
   *   'row-entry':    a `quantize_weighted` entry point (lib/legacy_weighted.wgsl) that
   *                   also reads binding 5: each row's sigma2 = sum x^2 / row length,
   *                   computed first by shaders/imatrix_sigma2.wgsl (the legacy formats'
   *                   row-wide sigma2), and with quantize.errorSums writes binding 6.
   */
  readonly weightedKernel?: 'own-entry' | 'shared-entry' | 'row-entry';
  /**
   * ggml's quantizer asserts (aborts the process) on some finite blocks whose
   * largest |x| is at or above this: their float32 distance sums overflow
   * (IQ3: |x|^3 past FLT_MAX; IQ2: "point not on grid"). wgarray writes defined
   * bytes there (the format's file says which); ggml has none to compare. Absent: none.
   */
  readonly ggmlAbortsFrom?: number;
  /**
   * Static lookup tables the kernels read at @group(1) @binding(0) (the IQ
   * grids, kmaps and neighbour lists; whole 16-byte vectors): uploaded once per
   * device and kept, bound once per pipeline (src/kernels/quantize.ts).
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
