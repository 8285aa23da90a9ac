// llama-quantize's per-tensor type choice (src/quant/presets.ts) on a synthetic
// 8-layer llama, against the rules of llama.cpp's llama-quant.cpp worked by
// hand. With 8 layers, use_more_bits(i, 8) holds for layers 0, 3, 6 and 7.
// test/llama-quantize.test.ts checks the same choice against llama.cpp itself.
import { describe, expect, test } from 'vitest';
import { ggmlType } from '../src/runtime/ggml-types.js';
import {
  LLAMA_QUANT_PRESETS,
  missingFormats,
  chooseTensorTypes,
  parseTensorType,
  quantPreset,
  type ModelShape,
  type TensorInfo,
  type TypeChoiceOptions,
} from '../src/quant/presets.js';

const UNMADE = LLAMA_QUANT_PRESETS.find((p) => missingFormats(p).length > 0);

const N_LAYER = 8;
const EMBD = 256;
const FF = 512;

function llamaTensors({ tied = false, ffnRow = FF }: { tied?: boolean; ffnRow?: number } = {}): TensorInfo[] {
  const f32 = ggmlType('f32');
  const f16 = ggmlType('f16');
  const out: TensorInfo[] = [
    { name: 'token_embd.weight', shape: [1000, EMBD], type: f16 },
    { name: 'output_norm.weight', shape: [EMBD], type: f32 },
  ];
  if (!tied) out.push({ name: 'output.weight', shape: [1000, EMBD], type: f16 });
  for (let i = 0; i < N_LAYER; i++) {
    out.push(
      { name: `blk.${i}.attn_norm.weight`, shape: [EMBD], type: f32 },
      { name: `blk.${i}.attn_q.weight`, shape: [EMBD, EMBD], type: f16 },
      { name: `blk.${i}.attn_k.weight`, shape: [EMBD / 4, EMBD], type: f16 },
      { name: `blk.${i}.attn_v.weight`, shape: [EMBD / 4, EMBD], type: f16 },
      { name: `blk.${i}.attn_output.weight`, shape: [EMBD, EMBD], type: f16 },
      { name: `blk.${i}.ffn_norm.weight`, shape: [EMBD], type: f32 },
      { name: `blk.${i}.ffn_gate.weight`, shape: [FF, EMBD], type: f16 },
      { name: `blk.${i}.ffn_up.weight`, shape: [FF, EMBD], type: f16 },
      { name: `blk.${i}.ffn_down.weight`, shape: [EMBD, ffnRow], type: f16 },
    );
  }
  return out;
}

const GQA4: ModelShape = { arch: 'llama', nLayer: N_LAYER, nHead: 8, nHeadKv: 2, nExpert: 0 };
const MHA: ModelShape = { ...GQA4, nHeadKv: 8 };
const MORE_BITS = '(0|3|6|7)';

interface Case {
  preset: string;
  model?: ModelShape;
  tied?: boolean;
  ffnRow?: number;
  options?: TypeChoiceOptions;
  /** First matching pattern gives the expected type; every tensor must match one. */
  expect: [RegExp, string][];
}

const norms: [RegExp, string] = [/norm\.weight$/, 'f32'];

const CASES: Record<string, Case> = {
  'Q4_K_M': {
    preset: 'Q4_K_M',
    expect: [norms, [/^output\.weight/, 'q6_K'], [new RegExp(`^blk\\.${MORE_BITS}\\.(attn_v|ffn_down)`), 'q6_K'], [/./, 'q4_K']],
  },
  'Q4_K is Q4_K_M (alias, lower case)': {
    preset: 'q4_k',
    expect: [norms, [/^output\.weight/, 'q6_K'], [new RegExp(`^blk\\.${MORE_BITS}\\.(attn_v|ffn_down)`), 'q6_K'], [/./, 'q4_K']],
  },
  'Q4_K_M tied embeddings: token_embd gets the output type': {
    preset: 'Q4_K_M',
    tied: true,
    expect: [norms, [/^token_embd/, 'q6_K'], [new RegExp(`^blk\\.${MORE_BITS}\\.(attn_v|ffn_down)`), 'q6_K'], [/./, 'q4_K']],
  },
  'Q4_K_S': {
    preset: 'Q4_K_S',
    expect: [norms, [/^output\.weight/, 'q6_K'], [/^blk\.[0-3]\.attn_v/, 'q5_K'], [/^blk\.0\.ffn_down/, 'q5_K'], [/./, 'q4_K']],
  },
  'Q5_K_M': {
    preset: 'Q5_K_M',
    expect: [norms, [/^output\.weight/, 'q6_K'], [new RegExp(`^blk\\.${MORE_BITS}\\.(attn_v|ffn_down)`), 'q6_K'], [/./, 'q5_K']],
  },
  'Q5_K_S': { preset: 'Q5_K_S', expect: [norms, [/^output\.weight/, 'q6_K'], [/./, 'q5_K']] },
  'Q3_K_S': { preset: 'Q3_K_S', expect: [norms, [/^output\.weight/, 'q6_K'], [/./, 'q3_K']] },
  'Q3_K_M': {
    preset: 'Q3_K_M',
    expect: [
      norms,
      [/^output\.weight/, 'q6_K'],
      [/^blk\.[01]\.attn_v/, 'q5_K'],
      [/attn_v|ffn_down|attn_output/, 'q4_K'],
      [/./, 'q3_K'],
    ],
  },
  'Q3_K_L': {
    preset: 'Q3_K_L',
    expect: [norms, [/^output\.weight/, 'q6_K'], [/attn_v|ffn_down|attn_output/, 'q5_K'], [/./, 'q3_K']],
  },
  'Q2_K with grouped-query attention (n_gqa 4)': {
    preset: 'Q2_K',
    expect: [norms, [/^output\.weight/, 'q6_K'], [/attn_v/, 'q4_K'], [/ffn_down|attn_output/, 'q3_K'], [/./, 'q2_K']],
  },
  'Q2_K without (n_gqa 1)': {
    preset: 'Q2_K',
    model: MHA,
    expect: [norms, [/^output\.weight/, 'q6_K'], [/attn_v|ffn_down|attn_output/, 'q3_K'], [/./, 'q2_K']],
  },
  'Q6_K': { preset: 'Q6_K', expect: [norms, [/./, 'q6_K']] },
  'Q8_0: output stays Q8_0': { preset: 'Q8_0', expect: [norms, [/./, 'q8_0']] },
  'Q4_0: output to Q6_K': { preset: 'Q4_0', expect: [norms, [/^output\.weight/, 'q6_K'], [/./, 'q4_0']] },
  'Q4_1': { preset: 'Q4_1', expect: [norms, [/^output\.weight/, 'q6_K'], [/./, 'q4_1']] },
  'Q5_0': { preset: 'Q5_0', expect: [norms, [/^output\.weight/, 'q6_K'], [/./, 'q5_0']] },
  'Q5_1': { preset: 'Q5_1', expect: [norms, [/^output\.weight/, 'q6_K'], [/./, 'q5_1']] },
  'IQ4_NL with n_gqa 4': {
    preset: 'IQ4_NL',
    expect: [norms, [/^output\.weight/, 'q6_K'], [/attn_v|^blk\.0\.ffn_down/, 'q5_K'], [/./, 'iq4_nl']],
  },
  'IQ4_XS with n_gqa 1': {
    preset: 'IQ4_XS',
    model: MHA,
    expect: [norms, [/^output\.weight/, 'q6_K'], [/^blk\.0\.ffn_down/, 'q5_K'], [/./, 'iq4_xs']],
  },
  'TQ1_0: token_embd to Q4_K': { preset: 'TQ1_0', expect: [norms, [/^output\.weight/, 'q6_K'], [/^token_embd/, 'q4_K'], [/./, 'tq1_0']] },
  'TQ2_0': { preset: 'TQ2_0', expect: [norms, [/^output\.weight/, 'q6_K'], [/^token_embd/, 'q4_K'], [/./, 'tq2_0']] },
  'MXFP4 on a dense model: Q8_0 everywhere': { preset: 'MXFP4', expect: [norms, [/./, 'q8_0']] },
  'F16: all weights, output too': { preset: 'F16', expect: [norms, [/./, 'f16']] },
  'BF16': { preset: 'BF16', expect: [norms, [/./, 'bf16']] },
  'F32': { preset: 'F32', expect: [[/./, 'f32']] },
  'COPY keeps every type': { preset: 'COPY', expect: [norms, [/./, 'f16']] },
  '--pure Q4_K_M: one type, output included': { preset: 'Q4_K_M', options: { pure: true }, expect: [norms, [/./, 'q4_K']] },
  '--leave-output-tensor': {
    preset: 'Q4_K_M',
    options: { leaveOutputTensor: true },
    expect: [norms, [/^output\.weight/, 'f16'], [new RegExp(`^blk\\.${MORE_BITS}\\.(attn_v|ffn_down)`), 'q6_K'], [/./, 'q4_K']],
  },
  '--output-tensor-type / --token-embedding-type': {
    preset: 'Q4_K_M',
    options: { outputTensorType: ggmlType('q8_0'), tokenEmbeddingType: ggmlType('q5_0') },
    expect: [
      norms,
      [/^output\.weight/, 'q8_0'],
      [/^token_embd/, 'q5_0'],
      [new RegExp(`^blk\\.${MORE_BITS}\\.(attn_v|ffn_down)`), 'q6_K'],
      [/./, 'q4_K'],
    ],
  },
  '--tensor-type: first matching pattern wins, mixes skipped for it': {
    preset: 'Q4_K_M',
    options: {
      tensorTypes: [
        { pattern: 'attn_v', type: ggmlType('q8_0') },
        { pattern: 'blk\\.[0-3]\\.ffn', type: ggmlType('q5_K') },
        { pattern: 'ffn_down', type: ggmlType('q2_K') },
      ],
    },
    expect: [
      norms,
      [/^output\.weight/, 'q6_K'],
      [/attn_v/, 'q8_0'],
      [/^blk\.[0-3]\.ffn/, 'q5_K'],
      [/ffn_down/, 'q2_K'],
      [/./, 'q4_K'],
    ],
  },
  'row length 288 (not 256-divisible): K-quant fallbacks': {
    preset: 'Q4_K_M',
    ffnRow: 288,
    // use_more_bits layers' ffn_down: Q6_K -> Q8_0; the others: Q4_K -> Q5_0
    expect: [
      norms,
      [/^output\.weight/, 'q6_K'],
      [new RegExp(`^blk\\.${MORE_BITS}\\.ffn_down`), 'q8_0'],
      [/ffn_down/, 'q5_0'],
      [new RegExp(`^blk\\.${MORE_BITS}\\.attn_v`), 'q6_K'],
      [/./, 'q4_K'],
    ],
  },
  'row length 288: Q5_K -> Q5_1, Q3_K -> Q4_0': {
    preset: 'Q3_K_L',
    ffnRow: 288,
    expect: [norms, [/^output\.weight/, 'q6_K'], [/ffn_down/, 'q5_1'], [/attn_v|attn_output/, 'q5_K'], [/./, 'q3_K']],
  },
  'row length 100 (not 32-divisible): F16': {
    preset: 'Q4_0',
    ffnRow: 100,
    expect: [norms, [/^output\.weight/, 'q6_K'], [/ffn_down/, 'f16'], [/./, 'q4_0']],
  },
  'row length 100 with IQ4_XS: IQ4_NL would not fit either, F16': {
    preset: 'IQ4_XS',
    ffnRow: 100,
    model: MHA,
    expect: [norms, [/^output\.weight/, 'q6_K'], [/ffn_down/, 'f16'], [/./, 'iq4_xs']],
  },
};

describe('llama-quantize tensor types', () => {
  test.each(Object.entries(CASES))('%s', (_, c) => {
    const tensors = llamaTensors({ tied: c.tied, ffnRow: c.ffnRow });
    const choices = chooseTensorTypes(tensors, quantPreset(c.preset), c.model ?? GQA4, c.options);
    expect(choices.map((x) => x.name)).toEqual(tensors.map((t) => t.name));
    const got = Object.fromEntries(choices.map((x) => [x.name, x.to.name]));
    const want = Object.fromEntries(
      tensors.map((t) => {
        const rule = c.expect.find(([re]) => re.test(t.name));
        if (!rule) throw new Error(`no expectation for ${t.name}`);
        return [t.name, rule[1]];
      }),
    );
    expect(got).toEqual(want);
  });
});

describe('presets', () => {
  test.each([
    ['Q4_K_M', 15],
    ['q4_k', 15],
    ['Q5_K', 17],
    ['Q3_K', 12],
    ['q8_0', 7],
    ['F16', 1],
    ['bf16', 32],
    ['F32', 0],
    ['COPY', 0],
    ['MXFP4', 38],
    ['15', 15],
    ['IQ4_XS', 30],
    ['TQ2_0', 37],
  ])('%s has llama.cpp ftype %d', (name, ftype) => {
    expect(quantPreset(name).ftype).toBe(ftype);
  });

  test.each([
    ['Q7_K', /unknown quantization type 'Q7_K'/],
    // a llama-quantize preset whose blocks are not all in the registry, while there is one
    ...(UNMADE ? [[UNMADE.name, new RegExp(`${UNMADE.name} is not supported: its ${missingFormats(UNMADE).map((t) => t.name.toUpperCase()).join('/')} blocks are not implemented`)] as [string, RegExp]] : []),
    ['', /unknown quantization type/],
  ])('%s is refused', (name, message) => {
    expect(() => quantPreset(name)).toThrow(message);
  });

  test('a quantized source needs --allow-requantize', () => {
    const tensors: TensorInfo[] = [{ name: 'blk.0.attn_q.weight', shape: [256, 256], type: ggmlType('q8_0') }];
    expect(() => chooseTensorTypes(tensors, quantPreset('Q4_0'), GQA4)).toThrow(/blk\.0\.attn_q\.weight.*already quantized \(q8_0\).*--allow-requantize/);
    expect(chooseTensorTypes(tensors, quantPreset('Q4_0'), GQA4, { allowRequantize: true })[0].to.name).toBe('q4_0');
    // the same type is a copy, not a requantization
    expect(chooseTensorTypes(tensors, quantPreset('Q8_0'), GQA4)[0].to.name).toBe('q8_0');
  });

  test('bad --tensor-type values', () => {
    expect(() => parseTensorType('q9_9', '--output-tensor-type')).toThrow(/--output-tensor-type: unknown ggml type 'q9_9'/);
    const tensors = llamaTensors();
    expect(() => chooseTensorTypes(tensors, quantPreset('Q4_0'), GQA4, { tensorTypes: [{ pattern: '(', type: ggmlType('q8_0') }] })).toThrow(
      /--tensor-type: '\(' is not a regular expression/,
    );
  });
});
