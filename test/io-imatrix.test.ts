// Importance matrices in both of llama.cpp's formats: the GGUF one llama-imatrix
// writes (tensors <name>.in_sum2 [row length, experts] and <name>.counts [1,
// experts], laid out as tools/imatrix/imatrix.cpp saves them) and the legacy
// .dat; converted to weights as llama-quantize does (in_sum2 / count per
// expert, values / ncall, in float32); malformed files refused with the file,
// the tensor and the expected size.
import { writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../src/errors.js';
import { saveGGUF } from '../src/io/index.js';
import { imatrixWeights, loadImatrix } from '../src/io/imatrix.js';
import { file, setUpDeviceAndTempDir } from './helpers/files.js';

setUpDeviceAndTempDir('wgarray-imatrix-');

const f = Math.fround;

/** An imatrix GGUF as llama-imatrix writes it: per tensor, sums [experts][ne0] and counts [experts][1]. */
async function writeImatrixGGUF(
  path: string,
  entries: Record<string, { sums: Float32Array; counts: number[] }>,
  meta: Record<string, unknown> = {
    'general.type': 'imatrix',
    'imatrix.datasets': ['wiki.train.raw'],
    'imatrix.chunk_count': 12,
    'imatrix.chunk_size': 512,
  },
): Promise<void> {
  const tensors: [string, { shape: number[]; dtype: 'float32'; data: Float32Array }][] = [];
  for (const [name, { sums, counts }] of Object.entries(entries)) {
    const nmat = counts.length;
    tensors.push([`${name}.in_sum2`, { shape: [nmat, sums.length / nmat], dtype: 'float32', data: sums }]);
    tensors.push([`${name}.counts`, { shape: [nmat, 1], dtype: 'float32', data: new Float32Array(counts) }]);
    // newer llama-imatrix also writes the activations' sums; quantization does not use them
    tensors.push([`${name}.in_sum`, { shape: [nmat, sums.length / nmat], dtype: 'float32', data: sums.map((v) => -v) }]);
  }
  await saveGGUF(path, tensors, meta as never);
}

/** A legacy .dat: entries of (name, ncall, values), then optionally the trailer. */
function legacyDat(entries: { name: string; ncall: number; values: number[] }[], trailer?: { chunks: number; dataset: string }): Uint8Array {
  const parts: number[] = [];
  const i32 = (v: number) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, v, true);
    parts.push(...b);
  };
  i32(entries.length);
  for (const e of entries) {
    const name = new TextEncoder().encode(e.name);
    i32(name.length);
    parts.push(...name);
    i32(e.ncall);
    i32(e.values.length);
    parts.push(...new Uint8Array(new Float32Array(e.values).buffer));
  }
  if (trailer) {
    i32(trailer.chunks);
    const d = new TextEncoder().encode(trailer.dataset);
    i32(d.length);
    parts.push(...d);
  }
  return new Uint8Array(parts);
}

describe('imatrix GGUF (llama-imatrix)', () => {
  it('reads the metadata and divides each expert\'s sums by its count in float32; a zero count gives weights 1', async () => {
    const p = file('a.imatrix.gguf');
    const sums = new Float32Array([1, 2, 3, 10, 0.7, 1e-3, 5, 6, 7]);
    await writeImatrixGGUF(p, {
      'blk.0.attn_q.weight': { sums: new Float32Array([3, 6, 9, 1.5]), counts: [3] },
      'blk.0.ffn_up_exps.weight': { sums, counts: [7, 3, 0] },
    });
    const im = await loadImatrix(p);
    expect(im.format).toBe('gguf');
    expect(im.datasets).toEqual(['wiki.train.raw']);
    expect(im.chunkCount).toBe(12);
    expect(im.chunkSize).toBe(512);
    expect([...im.entries.keys()].sort()).toEqual(['blk.0.attn_q.weight', 'blk.0.ffn_up_exps.weight']);
    expect([...im.entries.get('blk.0.attn_q.weight')!]).toEqual([1, 2, 3, f(1.5 / 3)]);
    const exps = imatrixWeights(im, 'blk.0.ffn_up_exps.weight', 3, 3)!;
    expect([...exps]).toEqual([f(1 / 7), f(2 / 7), f(3 / 7), f(10 / 3), f(f(0.7) / 3), f(f(1e-3) / 3), 1, 1, 1]);
    expect(imatrixWeights(im, 'output.weight', 3)).toBeUndefined();
  });

  it('counts are rounded to whole tokens first (lround), as llama.cpp stores them', async () => {
    const p = file('round.imatrix.gguf');
    await writeImatrixGGUF(p, { t: { sums: new Float32Array([5, 5]), counts: [2.5] } });
    const im = await loadImatrix(p);
    expect([...im.entries.get('t')!]).toEqual([f(5 / 3), f(5 / 3)]);
  });

  it('refuses bad files with the file, the tensor and what was expected', async () => {
    const noMeta = file('nometa.gguf');
    await writeImatrixGGUF(noMeta, { t: { sums: new Float32Array([1]), counts: [1] } }, { 'general.type': 'imatrix' });
    await expect(loadImatrix(noMeta)).rejects.toThrow(/nometa\.gguf.*missing key imatrix\.datasets/);

    const lone = file('lone.gguf');
    await saveGGUF(lone, [['t.in_sum2', { shape: [1, 2], dtype: 'float32', data: new Float32Array([1, 2]) }]], {
      'general.type': 'imatrix',
      'imatrix.datasets': ['x'],
      'imatrix.chunk_count': 1,
      'imatrix.chunk_size': 1,
    } as never);
    await expect(loadImatrix(lone)).rejects.toThrow(/tensor 't': t\.counts is missing/);

    const neg = file('neg.gguf');
    await writeImatrixGGUF(neg, { 'blk.1.ffn_down.weight': { sums: new Float32Array([1, -2]), counts: [1] } });
    const e = await loadImatrix(neg).catch((x) => x);
    expect(e).toBeInstanceOf(FormatError);
    expect(e.message).toMatch(/neg\.gguf.*'blk\.1\.ffn_down\.weight': weight 1 is -2; expected finite, non-negative values \(2 of them\)/);

    const nan = file('nan.gguf');
    await writeImatrixGGUF(nan, { t: { sums: new Float32Array([NaN, 1]), counts: [1] } });
    await expect(loadImatrix(nan)).rejects.toThrow(/'t': weight 0 is NaN/);

    const ragged = file('ragged.gguf');
    await writeImatrixGGUF(ragged, { t: { sums: new Float32Array([1, 2, 3]), counts: [1] } });
    const im = await loadImatrix(ragged);
    expect(() => imatrixWeights(im, 't', 4)).toThrow(/ragged\.gguf: tensor 't': the importance matrix has 3 weights, expected 4 \(row length 4\)/);
    expect(() => imatrixWeights(im, 't', 1, 2)).toThrow(/expected 2 \(row length 1 x 2 experts\)/);

    const trunc = file('trunc.gguf');
    const { readFile } = await import('node:fs/promises');
    const whole = await readFile(ragged);
    await writeFile(trunc, whole.subarray(0, whole.length - 40));
    await expect(loadImatrix(trunc)).rejects.toBeInstanceOf(FormatError);
  });
});

describe('imatrix .dat (legacy)', () => {
  it('reads entries and the optional trailer; weights are values / ncall in float32', async () => {
    const p = file('a.dat');
    await writeFile(
      p,
      legacyDat(
        [
          { name: 'blk.0.attn_k.weight', ncall: 3, values: [3, 1, 0.1] },
          { name: 'blk.0.attn_v.weight', ncall: 0, values: [2, 4] },
        ],
        { chunks: 100, dataset: 'calib.txt' },
      ),
    );
    const im = await loadImatrix(p);
    expect(im.format).toBe('dat');
    expect(im.chunkCount).toBe(100);
    expect(im.datasets).toEqual(['calib.txt']);
    expect([...im.entries.get('blk.0.attn_k.weight')!]).toEqual([1, f(1 / 3), f(f(0.1) / 3)]);
    expect([...im.entries.get('blk.0.attn_v.weight')!]).toEqual([2, 4]);

    const bare = file('bare.dat');
    await writeFile(bare, legacyDat([{ name: 'x', ncall: 2, values: [4] }]));
    const b = await loadImatrix(bare);
    expect(b.chunkCount).toBe(0);
    expect(b.datasets).toEqual([]);
    expect([...b.entries.get('x')!]).toEqual([2]);
  });

  it('refuses truncated and malformed files, naming the tensor and the expected size', async () => {
    const good = legacyDat([{ name: 'blk.3.ffn_gate.weight', ncall: 1, values: [1, 2, 3, 4] }]);
    const p = file('trunc.dat');
    await writeFile(p, good.subarray(0, good.length - 3));
    const e = await loadImatrix(p).catch((x) => x);
    expect(e).toBeInstanceOf(FormatError);
    expect(e.message).toMatch(/trunc\.dat at byte \d+: tensor 'blk\.3\.ffn_gate\.weight': the file ends inside its 4 values \(expected 16 bytes, 13 left/);

    const empty = file('empty.dat');
    await writeFile(empty, new Uint8Array([0, 0, 0, 0]));
    await expect(loadImatrix(empty)).rejects.toThrow(/empty\.dat at byte 0: entry count 0/);

    const tiny = file('tiny.dat');
    await writeFile(tiny, new Uint8Array([1, 0]));
    await expect(loadImatrix(tiny)).rejects.toThrow(/tiny\.dat at byte 0: the file ends here, inside the entry count/);

    const inf = file('inf.dat');
    await writeFile(inf, legacyDat([{ name: 'w', ncall: 1, values: [Infinity] }]));
    await expect(loadImatrix(inf)).rejects.toThrow(/'w': weight 0 is Infinity/);

    await expect(loadImatrix(file('missing.dat'))).rejects.toThrow(/missing\.dat/);
  });
});
