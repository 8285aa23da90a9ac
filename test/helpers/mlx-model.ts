// A tiny MLX-LM quantized model for the tests (src/convert/mlx/synthetic.ts), and the model
// with MLX's dequantized values for the float64 reference forward pass.
import type { SyntheticModel } from '../../src/convert/synthetic.js';
import { writeMlxSynthetic, type MlxSyntheticOptions } from '../../src/convert/mlx/synthetic.js';

/** Writes `model` MLX-quantized into `dir`; returns the model with MLX's dequantized weights. */
export function writeMlxModel(dir: string, model: SyntheticModel, o: Omit<MlxSyntheticOptions, 'keepDequantized'>): Promise<SyntheticModel> {
  return writeMlxSynthetic(dir, model, { ...o, keepDequantized: true });
}
