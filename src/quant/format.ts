// The descriptor of one quantization format: its ggml geometry, its WGSL
// kernels and its CPU reference. src/quant/registry.ts lists them; the
// kernels, the GGUF io and the tests all draw from that list.

import type { GGMLType } from './ggml-types.js';

export interface QuantFormat {
  /** Geometry and id, from the ggml type table. */
  readonly type: GGMLType;
  /**
   * shaders/ file with two entry points:
   *   quantize:   bindings 0 src (array<u32>, float32/float16/bfloat16 per QuantParams.src_kind),
   *               1 dst (array<u32>, blocks), 2 params (QuantParams);
   *               one workgroup writes `quantizeBlocksPerWorkgroup` whole blocks.
   *   dequantize: bindings 0 blocks (array<u32>), 1 out (array<f32>), 2 params;
   *               one workgroup reads `dequantizeBlocksPerWorkgroup` blocks.
   * See shaders/lib/quantize_io.wgsl and shaders/lib/dequantize_io.wgsl.
   */
  readonly shader: string;
  /** Blocks one quantize workgroup writes; blocks x typeSize must fill whole 32-bit words per invocation. */
  readonly quantizeBlocksPerWorkgroup: number;
  readonly dequantizeBlocksPerWorkgroup: number;
  /** ggml's reference quantizer: x.length is a multiple of blockSize; out holds x.length / blockSize blocks. */
  quantizeCpu(x: Float32Array, out: Uint8Array): void;
  /**
   * What ggml_quantize_chunk does with an importance matrix (quant_weights):
   * 'ignored' (Q8_0, MXFP4, TQ1_0, TQ2_0: the same bytes with or without),
   * 'optional' (the _impl paths: weighted searches when given, the reference without),
   * 'required' (the IQ1-IQ3 formats: ggml asserts it is there).
   */
  readonly imatrix: 'ignored' | 'optional' | 'required';
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
  /** ggml's dequantizer: blocks holds whole blocks; out holds blockSize floats per block. */
  dequantizeCpu(blocks: Uint8Array, out: Float32Array): void;
}
