// Reading a LoRA adapter's folder: which trainer wrote it (PEFT or MLX-LM),
// its adapter_config.json, and how each of its tensor names maps to a module
// of the base model. No tensor data is read here.
//
// PEFT (Hugging Face): adapter_config.json { peft_type: "LORA", r, lora_alpha,
// use_rslora, fan_in_fan_out, rank_pattern, alpha_pattern, ... } and
// adapter_model.safetensors with
//   base_model.model.<module>.lora_A.weight            [r, in]
//   base_model.model.<module>.lora_B.weight            [out, r]
//   base_model.model.<module>.lora_embedding_A         [r, num_embeddings]
//   base_model.model.<module>.lora_embedding_B         [dim, r]
//   base_model.model.<module>.weight                   modules_to_save (a whole new tensor)
// and scale = lora_alpha / r (lora_alpha / sqrt(r) with use_rslora), r and
// alpha looked up per module in rank_pattern / alpha_pattern first.
//
// MLX-LM: adapter_config.json { fine_tune_type: "lora", lora_parameters: { rank,
// scale, ... } } and adapters.safetensors with
//   <module>.lora_a   [in, r]    (linear; embedding: [num_embeddings, r]; experts: [E, r, in])
//   <module>.lora_b   [r, out]   (embedding: [r, dim]; experts: [E, out, r])
// transposed against PEFT: a linear layer's delta is scale * lora_b^T @ lora_a^T.
// scale is lora_parameters.scale itself (default 20); configs written before
// mlx-lm dropped `alpha` (June 2024) used scale * alpha / rank.

import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FileError, FormatError } from '../errors.js';
import { refuseNonRegular } from '../io/source.js';

export type LoraFormat = 'peft' | 'mlx';

/** One factor of a module's delta: adapter tensor `a` or `b`, read as is or transposed (last two dims). */
export interface Factor {
  tensor: 'a' | 'b';
  transpose: boolean;
}

/** How a module's delta is formed from its two adapter tensors: delta = scale * left @ right. */
export type LayerKind = 'linear' | 'linear-fan-in-fan-out' | 'embedding' | 'experts';

export const PRODUCTS: Record<LoraFormat, Record<LayerKind, [Factor, Factor]>> = {
  peft: {
    // B [out, r] @ A [r, in]
    linear: [
      { tensor: 'b', transpose: false },
      { tensor: 'a', transpose: false },
    ],
    // GPT-2 Conv1D stores W as [in, out]: (B @ A)^T = A^T @ B^T
    'linear-fan-in-fan-out': [
      { tensor: 'a', transpose: true },
      { tensor: 'b', transpose: true },
    ],
    // A [r, V], B [D, r]: (B @ A)^T = A^T @ B^T, [V, D]
    embedding: [
      { tensor: 'a', transpose: true },
      { tensor: 'b', transpose: true },
    ],
    experts: [
      { tensor: 'b', transpose: false },
      { tensor: 'a', transpose: false },
    ],
  },
  mlx: {
    // a [in, r], b [r, out]: (a @ b)^T = b^T @ a^T, [out, in]
    linear: [
      { tensor: 'b', transpose: true },
      { tensor: 'a', transpose: true },
    ],
    'linear-fan-in-fan-out': [
      { tensor: 'a', transpose: false },
      { tensor: 'b', transpose: false },
    ],
    // a [V, r] @ b [r, D]
    embedding: [
      { tensor: 'a', transpose: false },
      { tensor: 'b', transpose: false },
    ],
    // b [E, out, r] @ a [E, r, in]
    experts: [
      { tensor: 'b', transpose: false },
      { tensor: 'a', transpose: false },
    ],
  },
};

/** What one adapter tensor name says. */
export type KeyMeaning =
  | { kind: 'factor'; module: string; which: 'a' | 'b'; embedding: boolean }
  | { kind: 'replacement'; target: string }
  | { kind: 'unsupported'; why: string };

const PEFT_PREFIX = 'base_model.model.';

/** Parses a PEFT adapter tensor name. */
export function peftKey(key: string): KeyMeaning {
  const name = key.startsWith(PEFT_PREFIX) ? key.slice(PEFT_PREFIX.length) : key;
  // An adapter name may remain between the factor and 'weight' ('lora_A.default.weight').
  let m = /^(.+)\.lora_([AB])(?:\.[^.]+)?\.(weight|bias)$/.exec(name);
  if (m) {
    if (m[3] === 'bias') return { kind: 'unsupported', why: 'a LoRA bias (lora_bias=True)' };
    return { kind: 'factor', module: m[1], which: m[2] === 'A' ? 'a' : 'b', embedding: false };
  }
  m = /^(.+)\.lora_embedding_([AB])(?:\.[^.]+)?$/.exec(name);
  if (m) return { kind: 'factor', module: m[1], which: m[2] === 'A' ? 'a' : 'b', embedding: true };
  if (/\.lora_magnitude_vector(\.|$)/.test(name)) return { kind: 'unsupported', why: 'a DoRA magnitude vector (use_dora=True)' };
  if (/\.(trainable_tokens_delta|token_adapter)(\.|$)/.test(name)) return { kind: 'unsupported', why: 'trainable tokens' };
  if (/\.lora_/.test(name)) return { kind: 'unsupported', why: 'an unknown LoRA parameter' };
  if (/\.(weight|bias)$/.test(name)) return { kind: 'replacement', target: name };
  return { kind: 'unsupported', why: 'neither a LoRA factor nor a whole tensor' };
}

/** Parses an MLX-LM adapter tensor name (`full`: a full fine-tune, every tensor replaces the base's). */
export function mlxKey(key: string, full: boolean): KeyMeaning {
  if (full) return { kind: 'replacement', target: key };
  const m = /^(.+)\.lora_([ab])$/.exec(key);
  if (m) return { kind: 'factor', module: m[1], which: m[2] as 'a' | 'b', embedding: false };
  if (/\.m$/.test(key)) return { kind: 'unsupported', why: 'a DoRA magnitude vector (fine_tune_type "dora")' };
  return { kind: 'unsupported', why: 'neither lora_a nor lora_b' };
}

export interface AdapterFiles {
  format: LoraFormat;
  configFile: string;
  weightsFile: string;
  config: Record<string, unknown>;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Finds the adapter's config and weights in `dir` and tells PEFT from MLX-LM. */
export async function locateAdapter(dir: string, format?: LoraFormat): Promise<AdapterFiles> {
  try {
    if (!(await stat(dir)).isDirectory()) throw new FileError(dir, 'a LoRA adapter is a folder holding adapter_config.json and its safetensors weights');
  } catch (e) {
    if (e instanceof FileError) throw e;
    throw new FileError(dir, `cannot open the LoRA adapter folder: ${(e as Error).message}`, { cause: e });
  }
  const configFile = join(dir, 'adapter_config.json');
  let text: string;
  await refuseNonRegular(configFile);
  try {
    text = await readFile(configFile, 'utf8');
  } catch (e) {
    throw new FileError(configFile, `cannot read the adapter's config (a PEFT or MLX-LM adapter folder has one): ${(e as Error).message}`, { cause: e });
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (e) {
    throw new FormatError(configFile, undefined, `not valid JSON: ${(e as Error).message}`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new FormatError(configFile, undefined, 'expected a JSON object');
  }
  const c = config as Record<string, unknown>;
  const peftWeights = join(dir, 'adapter_model.safetensors');
  const mlxWeights = join(dir, 'adapters.safetensors');
  let detected: LoraFormat | undefined = format;
  if (!detected) {
    if ('lora_parameters' in c || 'fine_tune_type' in c) detected = 'mlx';
    else if ('peft_type' in c || 'lora_alpha' in c || 'target_modules' in c) detected = 'peft';
    else if (await exists(mlxWeights)) detected = 'mlx';
    else if (await exists(peftWeights)) detected = 'peft';
    else {
      throw new FormatError(
        configFile,
        undefined,
        'neither a PEFT config (peft_type, r, lora_alpha, target_modules) nor an MLX-LM one (fine_tune_type, lora_parameters)',
      );
    }
  }
  const weightsFile = detected === 'peft' ? peftWeights : mlxWeights;
  if (!(await exists(weightsFile))) {
    const bin = join(dir, 'adapter_model.bin');
    const hint =
      detected === 'peft' && (await exists(bin))
        ? ': only adapter_model.bin (a pickle) is there; re-save the adapter with safe_serialization=True'
        : '';
    throw new FileError(weightsFile, `the ${detected === 'peft' ? 'PEFT' : 'MLX-LM'} adapter's weights are missing${hint}`);
  }
  return { format: detected, configFile, weightsFile, config: c };
}

function num(config: Record<string, unknown>, key: string, file: string, fallback: number): number {
  const v = config[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new FormatError(file, undefined, `'${key}' is ${JSON.stringify(v)}; expected a number`);
  return v;
}

function table(config: Record<string, unknown>, key: string, file: string): Record<string, number> {
  const v = config[key];
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new FormatError(file, undefined, `'${key}' is ${JSON.stringify(v)}; expected an object`);
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'number' || !Number.isFinite(x)) throw new FormatError(file, undefined, `'${key}.${k}' is ${JSON.stringify(x)}; expected a number`);
  }
  return v as Record<string, number>;
}

/** PEFT's pattern lookup: the first key k (in order) with `(.*\.)?k$` matching the whole module name. */
function patternValue(patterns: Record<string, number>, module: string, file: string, what: string): number | undefined {
  for (const [key, value] of Object.entries(patterns)) {
    let re: RegExp;
    try {
      re = new RegExp(`^(?:.*\\.)?(?:${key})$`);
    } catch (e) {
      throw new FormatError(file, undefined, `${what} key '${key}' is not a valid pattern: ${(e as Error).message}`);
    }
    if (re.test(module)) return value;
  }
  return undefined;
}

/** The settings that decide each module's scale. */
export interface ScaleRule {
  /** The rank the config gives this module (checked against the tensors), or undefined when it gives none. */
  rank(module: string): number | undefined;
  /** The module's scale, for rank `r` (the tensors' own). */
  scale(module: string, r: number): number;
  /** Conventions applied that a reader should know about. */
  notes: string[];
  /** True for a PEFT GPT-2-style adapter whose base stores linear weights as [in, out]. */
  fanInFanOut: boolean;
  /** MLX-LM full fine-tune: the file holds whole tensors. */
  full: boolean;
}

export function scaleRule(files: AdapterFiles): ScaleRule {
  const { config: c, configFile: file } = files;
  if (files.format === 'peft') {
    const type = c.peft_type;
    if (type !== undefined && type !== 'LORA') {
      throw new FormatError(file, undefined, `peft_type is ${JSON.stringify(type)}; only LoRA adapters ("LORA") can be fused`);
    }
    if (c.use_dora === true) throw new FormatError(file, undefined, 'a DoRA adapter (use_dora: true): only plain LoRA can be fused');
    const r = num(c, 'r', file, 8);
    const alpha = num(c, 'lora_alpha', file, 8);
    const ranks = table(c, 'rank_pattern', file);
    const alphas = table(c, 'alpha_pattern', file);
    const rslora = c.use_rslora === true;
    return {
      rank: (module) => patternValue(ranks, module, file, 'rank_pattern') ?? r,
      scale: (module, rank) => {
        const a = patternValue(alphas, module, file, 'alpha_pattern') ?? alpha;
        return rslora ? a / Math.sqrt(rank) : a / rank;
      },
      notes: rslora ? ['rsLoRA: scale = lora_alpha / sqrt(r)'] : [],
      fanInFanOut: c.fan_in_fan_out === true,
      full: false,
    };
  }
  const type = c.fine_tune_type ?? 'lora';
  if (type === 'dora' || c.use_dora === true) {
    throw new FormatError(file, undefined, 'a DoRA adapter (fine_tune_type "dora"): only plain LoRA can be fused');
  }
  if (type !== 'lora' && type !== 'full') {
    throw new FormatError(file, undefined, `fine_tune_type is ${JSON.stringify(type)}; expected "lora" or "full"`);
  }
  const lp = c.lora_parameters ?? {};
  if (typeof lp !== 'object' || lp === null || Array.isArray(lp)) {
    throw new FormatError(file, undefined, `lora_parameters is ${JSON.stringify(lp)}; expected an object`);
  }
  const p = lp as Record<string, unknown>;
  const configRank = p.rank === undefined ? undefined : num(p, 'rank', file, 8);
  const legacyAlpha = p.alpha === undefined ? undefined : num(p, 'alpha', file, 16);
  const notes: string[] = [];
  let scale: (r: number) => number;
  if (legacyAlpha !== undefined) {
    // mlx-lm before June 2024: LoRALinear(scale=10, alpha=16) used scale * alpha / r.
    const s = num(p, 'scale', file, 10);
    scale = (r) => (s * legacyAlpha) / r;
    notes.push(`lora_parameters has 'alpha': mlx-lm's older convention, scale = scale * alpha / rank = ${s} * ${legacyAlpha} / rank`);
  } else {
    const s = num(p, 'scale', file, 20);
    scale = () => s;
  }
  return {
    rank: () => configRank,
    scale: (_module, r) => scale(r),
    notes,
    fanInFanOut: false,
    full: type === 'full',
  };
}
