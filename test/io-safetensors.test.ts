// safetensors through real files: every dtype round-trips byte for byte, the
// header is what the format says (checked by parsing it here, by hand), sharded
// models save and load through their index, broken files are refused with a
// FormatError naming file and offset, and load() tells the formats apart.
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import {
  ALL_DTYPES,
  array,
  DTYPES,
  DTypeError,
  FormatError,
  fromBytes,
  load,
  loadSafetensors,
  QuantizedArray,
  quantize,
  saveGGUF,
  saveSafetensors,
  WgArray,
  type DType,
} from '../src/index.js';
import { bytes, dir, file, raw, setUpDeviceAndTempDir } from './helpers/files.js';

setUpDeviceAndTempDir('wgarray-io-st-');


/** Parses a safetensors header by the format's description: u64 length, JSON. */
function header(buf: Uint8Array): { n: number; json: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> & { __metadata__?: Record<string, string> } } {
  const n = Number(Buffer.from(buf).readBigUInt64LE(0));
  return { n, json: JSON.parse(Buffer.from(buf.subarray(8, 8 + n)).toString('utf8')) };
}

const ST_NAMES: Record<DType, string> = {
  float64: 'F64', float32: 'F32', float16: 'F16', bfloat16: 'BF16', int64: 'I64', int32: 'I32', int16: 'I16',
  int8: 'I8', uint64: 'U64', uint32: 'U32', uint16: 'U16', uint8: 'U8', bool: 'BOOL',
};

describe('round trips', () => {
  test.each(ALL_DTYPES)('%s: every byte comes back, and the header says what the format says', async (dtype) => {
    const shape = [2, 3, 5];
    const data = dtype === 'bool' ? bytes(30, 3).map((b) => b & 1) : bytes(30 * DTYPES[dtype].bytes, 3);
    const a = fromBytes(data, shape, dtype);
    const path = file(`dt-${dtype}.safetensors`);
    await saveSafetensors(path, { first: array(new Uint8Array([1, 2, 3])), [`t.${dtype}`]: a }, { format: 'pt', note: 'héllo' });
    const buf = new Uint8Array(await readFile(path));
    const h = header(buf);
    expect((8 + h.n) % 8).toBe(0);
    expect(h.json.__metadata__).toEqual({ format: 'pt', note: 'héllo' });
    expect(h.json[`t.${dtype}`]).toEqual({ dtype: ST_NAMES[dtype], shape, data_offsets: [3, 3 + data.length] });
    expect(buf.subarray(8 + h.n + 3)).toEqual(data);
    const f = await loadSafetensors(path);
    expect(f.metadata).toEqual({ format: 'pt', note: 'héllo' });
    const info = f.tensor(`t.${dtype}`);
    expect(info).toMatchObject({ dtype, fileDtype: ST_NAMES[dtype], shape, nbytes: data.length });
    const back = await f.arrays[`t.${dtype}`]();
    expect(back.dtype).toBe(dtype);
    expect(raw(await back.data())).toEqual(data);
    expect(await f.readTensorBytes(`t.${dtype}`)).toEqual(data);
    a.dispose();
    back.dispose();
  });

  test('host and lazy tensors; a QuantizedArray and block types are refused', async () => {
    const path = file('mixed.safetensors');
    const made: WgArray[] = [];
    await saveSafetensors(path, {
      h: { shape: [2], dtype: 'int64', data: new BigInt64Array([-1n, 2n]) },
      g: { shape: [1], type: 'bf16', data: new Uint16Array([0x3f80]) },
      l: { shape: [3], dtype: 'float32', produce: () => { const x = array(new Float32Array([1, 2, 3])); made.push(x); return x; } },
    });
    expect(made[0].disposed).toBe(true);
    const f = await loadSafetensors(path);
    expect(f.tensorInfos.map((t) => [t.name, t.dtype])).toEqual([['h', 'int64'], ['g', 'bfloat16'], ['l', 'float32']]);
    expect(await f.readTensorBytes('l')).toEqual(raw(new Float32Array([1, 2, 3])));
    const q = quantize(array(new Float32Array(32)), 'q8_0');
    await expect(saveSafetensors(path, { q })).rejects.toThrow(DTypeError);
    await expect(saveSafetensors(path, { q: { shape: [32], type: 'q4_0', data: new Uint8Array(18) } })).rejects.toThrow(/block format/);
    await expect(saveSafetensors(path, {}, { n: 1 } as never)).rejects.toThrow(/metadata values are strings/);
    await expect(saveSafetensors(path, { __metadata__: array(new Uint8Array(1)) })).rejects.toThrow(/reserved/);
    q.dispose();
  });

  test('sharded: shards of at most maxShardBytes plus an index; loaded through the index or the folder', async () => {
    const sub = file('sharded');
    await mkdir(sub);
    const tensors: [string, WgArray][] = [];
    for (let i = 0; i < 5; i++) tensors.push([`layer.${i}.weight`, fromBytes(bytes(400, i + 1), [100], 'float32')]);
    const result = await saveSafetensors(join(sub, 'model.safetensors'), tensors, { format: 'pt' }, { maxShardBytes: 1000 });
    expect(result.files.map((p) => p.slice(sub.length + 1))).toEqual([
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
      'model.safetensors.index.json',
    ]);
    const index = JSON.parse(await readFile(join(sub, 'model.safetensors.index.json'), 'utf8'));
    expect(index.metadata.total_size).toBe(2000);
    expect(index.weight_map['layer.4.weight']).toBe('model-00003-of-00003.safetensors');
    for (const where of [join(sub, 'model.safetensors.index.json'), sub]) {
      const f = await loadSafetensors(where);
      expect(f.files).toHaveLength(3);
      expect(f.tensorInfos.map((t) => t.name)).toEqual(tensors.map(([n]) => n));
      expect(f.indexMetadata).toEqual({ format: 'pt', total_size: 2000 });
      for (const [name, a] of tensors) expect(await f.readTensorBytes(name)).toEqual(raw(await a.data()));
    }
    const all = await load(sub);
    expect(all.format).toBe('safetensors');
    expect(Object.keys(all.arrays)).toHaveLength(5);
    for (const a of Object.values(all.arrays)) a.dispose();
    for (const [, a] of tensors) a.dispose();
  });
});

describe('saving over an earlier save of the same model', () => {
  const tensors = (n: number, seed = 1): [string, WgArray][] =>
    Array.from({ length: n }, (_, i) => [`layer.${i}.weight`, fromBytes(bytes(400, seed + i), [100], 'float32')]);
  const listing = async (d: string) => (await readdir(d)).sort();

  test('the new files replace the old ones: other shard counts, single file <-> shards', async () => {
    const sub = file('resave');
    await mkdir(sub);
    const path = join(sub, 'model.safetensors');
    const five = tensors(5);
    await saveSafetensors(path, five, undefined, { maxShardBytes: 1000 });
    expect(await listing(sub)).toEqual([
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
      'model.safetensors.index.json',
    ]);
    // five shards: the three-shard files go
    await saveSafetensors(path, five, undefined, { maxShardBytes: 500 });
    expect(await listing(sub)).toEqual([
      ...[1, 2, 3, 4, 5].map((i) => `model-0000${i}-of-00005.safetensors`),
      'model.safetensors.index.json',
    ]);
    // one file: the index and its shards go
    await saveSafetensors(path, five.slice(0, 2));
    expect(await listing(sub)).toEqual(['model.safetensors']);
    expect((await loadSafetensors(sub)).tensorInfos.map((t) => t.name)).toEqual(['layer.0.weight', 'layer.1.weight']);
    // shards again: the single file goes (loaders would pick it first)
    await saveSafetensors(path, five, undefined, { maxShardBytes: 1000 });
    expect(await listing(sub)).toHaveLength(4);
    expect(await listing(sub)).not.toContain('model.safetensors');
    expect((await loadSafetensors(sub)).tensorInfos).toHaveLength(5);
    for (const [, a] of five) a.dispose();
  });

  test('a sharded save that fails or is aborted part-way leaves the earlier save whole and no temporary files', async () => {
    const sub = file('resave-fail');
    await mkdir(sub);
    const path = join(sub, 'model.safetensors');
    const old = tensors(5, 10);
    await saveSafetensors(path, old, undefined, { maxShardBytes: 1000 });
    const before = new Map<string, Uint8Array>();
    for (const name of await listing(sub)) before.set(name, await readFile(join(sub, name)));
    // the fourth tensor (in the second of five shards) fails to produce its data
    const failing: [string, unknown][] = tensors(5, 20).map(([name, a], i) =>
      i === 3
        ? [name, { shape: [100], dtype: 'float32', produce: async () => { throw new Error('source file vanished'); } }]
        : [name, a],
    );
    await expect(saveSafetensors(path, failing as never, undefined, { maxShardBytes: 500 })).rejects.toThrow(/source file vanished/);
    expect(await listing(sub)).toEqual([...before.keys()]);
    for (const [name, data] of before) expect(await readFile(join(sub, name))).toEqual(data);
    // the same for an abort (Ctrl-C) in the third of five shards
    const ac = new AbortController();
    const fresh = tensors(5, 30);
    const onProgress = (p: { index: number }) => p.index === 2 && ac.abort(new Error('Ctrl-C'));
    await expect(saveSafetensors(path, fresh, undefined, { maxShardBytes: 500, signal: ac.signal, onProgress })).rejects.toThrow(/aborted/);
    expect(await listing(sub)).toEqual([...before.keys()]);
    for (const [name, data] of before) expect(await readFile(join(sub, name))).toEqual(data);
    for (const [, a] of fresh) a.dispose();
    for (const [, a] of [...old, ...failing]) if (a instanceof WgArray) a.dispose();
  });
});

describe('load() picks the format by magic, then by name', () => {
  test('a GGUF with any name, a safetensors with any name, and neither', async () => {
    const x = array(new Float32Array([1, 2, 3]));
    const q = quantize(array(new Float32Array(64).fill(1)), 'q8_0');
    await saveGGUF(file('model.bin'), { x, q }, { 'general.architecture': 'test' });
    await saveSafetensors(file('weights.bin'), { x });
    const g = await load(file('model.bin'));
    expect(g.format).toBe('gguf');
    expect(g.metadata['general.architecture']).toBe('test');
    expect(g.arrays.q).toBeInstanceOf(QuantizedArray);
    expect(await (g.arrays.x as WgArray).data()).toEqual(new Float32Array([1, 2, 3]));
    const s = await load(file('weights.bin'));
    expect(s.format).toBe('safetensors');
    expect(await (s.arrays.x as WgArray).data()).toEqual(new Float32Array([1, 2, 3]));
    await writeFile(file('junk.bin'), 'hello world, not a tensor file');
    await expect(load(file('junk.bin'))).rejects.toThrow(/neither a GGUF file .* nor a safetensors file/);
    for (const a of [x, q, ...Object.values(g.arrays), ...Object.values(s.arrays)]) a.dispose();
  });
});

/** A safetensors file from a header object (or text) and data bytes; the length field may be overridden. */
function st(h: object | string, data: Uint8Array, length?: bigint): Uint8Array {
  const json = Buffer.from(typeof h === 'string' ? h : JSON.stringify(h), 'utf8');
  const out = new Uint8Array(8 + json.length + data.length);
  Buffer.from(out.buffer).writeBigUInt64LE(length ?? BigInt(json.length), 0);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}
const t = (dtype: string, shape: number[], begin: number, end: number) => ({ dtype, shape, data_offsets: [begin, end] });

describe('broken safetensors files', () => {
  const d16 = new Uint8Array(16);
  const CASES: [string, Uint8Array, RegExp][] = [
    ['a 3-byte file', new Uint8Array(3), /the file is 3 bytes; a safetensors file starts with an 8-byte header length/],
    ['a header over 100 MB', st({}, d16, 100_000_001n), /header length 100000001 is over safetensors' limit of 100000000 bytes/],
    ['an absurd header length', st({}, d16, 2n ** 63n), /header length 9223372036854775808 is over/],
    ['a header past the end of the file', st({}, d16, 1000n), /header length 1000 runs past the end of the file/],
    ['a header that is not UTF-8', st('{"\xff"}', d16).map((b, i) => (i === 10 ? 0xff : b)), /not valid UTF-8/],
    ['a header that is not JSON', st('{"a": ', d16), /not valid JSON/],
    ['a header that is a list', st('[1, 2]', d16), /not a JSON object/],
    ['a duplicate tensor name', st('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', d16), /'a' appears twice in the header/],
    ['an unknown dtype', st({ a: t('F8_E4M3', [16], 0, 16) }, d16), /tensor 'a' has dtype "F8_E4M3"; expected one of/],
    ['a negative dimension', st({ a: t('F32', [-4], 0, 16) }, d16), /tensor 'a' has shape \[-4\]/],
    ['offsets backwards', st({ a: t('F32', [4], 16, 0) }, d16), /data_offsets \[16,0\]/],
    ['dtype x shape != bytes', st({ a: t('F32', [3], 0, 16) }, d16), /tensor 'a' \(F32 \[3\]\) needs 12 bytes, but its data_offsets \[0, 16\] span 16/],
    ['a gap between tensors', st({ a: t('F32', [1], 0, 4), b: t('F32', [2], 8, 16) }, d16), /tensor 'b' starts at data offset 8 and leaves a gap of 4 bytes after tensor 'a'/],
    ['overlapping tensors', st({ a: t('F32', [2], 0, 8), b: t('F32', [3], 4, 16) }, d16), /tensor 'b' starts at data offset 4 and overlaps tensor 'a'/],
    ['a tensor past the end of the file', st({ a: t('F32', [8], 0, 32) }, d16), /the tensors need 32 bytes of data, but the file has 16/],
    ['bytes after the last tensor', st({ a: t('F32', [2], 0, 8) }, d16), /8 bytes after the last tensor/],
    ['metadata that is not strings', st({ __metadata__: { a: 1 }, x: t('U8', [16], 0, 16) }, d16), /__metadata__\['a'\] is number/],
  ];
  test.each(CASES)('refuses %s', async (what, buf, message) => {
    const path = file(`bad-${what.replace(/\W+/g, '-')}.safetensors`);
    await writeFile(path, buf);
    const err = await loadSafetensors(path).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as FormatError).file).toBe(path);
    expect((err as FormatError).message).toMatch(new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} at byte \\d+: `));
    expect((err as FormatError).message).toMatch(message);
  });

  test('broken sharded models: a tensor missing from its shard, a name in two shards, a path outside the folder', async () => {
    const sub = file('bad-shards');
    await mkdir(sub);
    await writeFile(join(sub, 'a.safetensors'), st({ x: t('U8', [4], 0, 4) }, new Uint8Array(4)));
    await writeFile(join(sub, 'b.safetensors'), st({ z: t('U8', [4], 0, 4), x: t('U8', [4], 4, 8) }, new Uint8Array(8)));
    const index = (weight_map: object) => writeFile(join(sub, 'model.safetensors.index.json'), JSON.stringify({ weight_map }));
    await index({ x: 'a.safetensors', y: 'a.safetensors' });
    await expect(loadSafetensors(sub)).rejects.toThrow(/weight_map puts tensor 'y' in a.safetensors, which does not hold it/);
    await index({ x: 'a.safetensors', z: 'b.safetensors' });
    await expect(loadSafetensors(sub)).rejects.toThrow(/b.safetensors: tensor 'x' is also in .*a.safetensors; names must be unique across shards/);
    await index({ x: '../a.safetensors' });
    await expect(loadSafetensors(sub)).rejects.toThrow(/expected a file name beside the index/);
    await index({ x: 'missing.safetensors' });
    await expect(loadSafetensors(sub)).rejects.toThrow(/missing.safetensors: cannot open the file for reading: no such file/);
    await writeFile(join(sub, 'model.safetensors.index.json'), '{"weight_map": 3}');
    await expect(loadSafetensors(sub)).rejects.toThrow(/no "weight_map" object/);
    expect((await readdir(sub)).sort()).toEqual(['a.safetensors', 'b.safetensors', 'model.safetensors.index.json']);
  });
});
