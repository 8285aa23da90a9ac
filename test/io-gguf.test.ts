// GGUF round trips through real files on real WebGPU (lavapipe): every dtype,
// every ggml block type as raw blocks, every metadata value type, standard key
// typing, alignment, lazy and host tensors; cross-checked with the independent
// parser @huggingface/gguf and with files built byte by byte from the spec.
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { gguf as hfParse } from '@huggingface/gguf';
import { describe, expect, test } from 'vitest';
import {
  ArgumentError,
  array,
  DisposedError,
  DTYPES,
  DTypeError,
  fromBytes,
  GGML_TYPES,
  gguf,
  loadGGUF,
  QuantizedArray,
  saveGGUF,
  ShapeError,
  WgArray,
  type DType,
  type GGUFType,
  type SaveProgress,
} from '../src/index.js';
import { bytes, dir, file, raw, setUpDeviceAndTempDir } from './helpers/files.js';
import { build, f32, f64, i32, kvString, kvU32, pad, str, T, u32, u64, u8 } from './fixtures/io/gguf-build.js';

setUpDeviceAndTempDir('wgarray-io-gguf-');



/** Plain JS for comparing with @huggingface/gguf: TypedArrays as lists. */
function norm(v: unknown): unknown {
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<unknown>);
  if (Array.isArray(v)) return v.map(norm);
  return v;
}

describe('tensors', () => {
  const STORABLE: [DType, string][] = [
    ['float32', 'f32'],
    ['float16', 'f16'],
    ['bfloat16', 'bf16'],
    ['int8', 'i8'],
    ['int16', 'i16'],
    ['int32', 'i32'],
    ['int64', 'i64'],
    ['float64', 'f64'],
  ];

  test.each(STORABLE)('a %s WgArray round-trips as ggml %s, byte for byte', async (dtype, ggmlName) => {
    const shape = [3, 5];
    const data = bytes(15 * DTYPES[dtype].bytes, 7);
    const a = fromBytes(data, shape, dtype);
    const path = file(`dtype-${dtype}.gguf`);
    await saveGGUF(path, { w: a });
    const f = await loadGGUF(path);
    expect(f.tensorInfos).toHaveLength(1);
    const info = f.tensorInfos[0];
    expect(info).toMatchObject({ name: 'w', shape, ne: [5, 3], nbytes: data.length, offset: 0 });
    expect(info.type.name).toBe(ggmlName);
    expect(await f.readTensorBytes('w')).toEqual(data);
    const back = await f.arrays.w();
    expect(back).toBeInstanceOf(WgArray);
    expect((back as WgArray).dtype).toBe(dtype);
    expect([...back.shape]).toEqual(shape);
    expect(raw(await (back as WgArray).data())).toEqual(data);
    a.dispose();
    back.dispose();
  });

  test.each(['uint8', 'uint16', 'uint32', 'uint64', 'bool'] as DType[])('a %s WgArray is refused (GGUF has no such tensor type)', async (dtype) => {
    const a = fromBytes(new Uint8Array(4 * DTYPES[dtype].bytes), [4], dtype);
    const path = file(`refused-${dtype}.gguf`);
    await expect(saveGGUF(path, { w: a })).rejects.toThrow(DTypeError);
    await expect(readFile(path)).rejects.toThrow(/ENOENT/);
    a.dispose();
  });

  const BLOCK_TYPES = GGML_TYPES.filter((t) => t.blockSize > 1);
  test.each(BLOCK_TYPES.map((t) => [t.name, t] as const))('%s blocks round-trip as a QuantizedArray, byte for byte', async (_, type) => {
    const shape = [2, 3, type.blockSize * 2];
    const nbytes = (2 * 3 * 2) * type.typeSize;
    const blocks = bytes(nbytes, type.id + 3);
    const u = fromBytes(blocks, [nbytes], 'uint8');
    const q = new QuantizedArray(u.storage.retain(), shape, type.name, 'q');
    u.dispose();
    const path = file(`quant-${type.name}.gguf`);
    await saveGGUF(path, [['q', q]], undefined, { alignment: 64 });
    const f = await loadGGUF(path);
    expect(f.tensorInfos[0]).toMatchObject({ name: 'q', shape, ne: [type.blockSize * 2, 3, 2], nbytes });
    expect(f.tensorInfos[0].type.id).toBe(type.id);
    const back = await f.arrays.q();
    expect(back).toBeInstanceOf(QuantizedArray);
    expect((back as QuantizedArray).type.name).toBe(type.name);
    expect(await (back as QuantizedArray).data()).toEqual(blocks);
    q.dispose();
    back.dispose();
  });

  test('host tensors, lazy tensors and arrays mix; produce() runs right before its tensor and its result is disposed', async () => {
    const order: string[] = [];
    const made: WgArray[] = [];
    const a = array(new Float32Array([1, 2, 3, 4]), { shape: [2, 2] });
    const blocks = bytes(34 * 2, 5);
    const path = file('mixed.gguf');
    const events: SaveProgress[] = [];
    const tensors = {
      a,
      host: { shape: [2, 32], type: 'q8_0', data: blocks },
      hostTyped: { shape: [3], dtype: 'int32' as const, data: new Int32Array([-1, 0, 1]) },
      lazy: {
        shape: [4],
        dtype: 'float32' as const,
        produce: () => {
          order.push(`produce lazy after ${events.at(-1)?.tensor}`);
          const x = array(new Float32Array([9, 8, 7, 6]));
          made.push(x);
          return x;
        },
      },
      lazyBytes: { shape: [2], type: 'f16', produce: async () => new Uint16Array([0x3c00, 0xc000]) },
    };
    const result = await saveGGUF(path, tensors, { 'general.architecture': 'test' }, { onProgress: (p) => events.push(p) });
    expect(order).toEqual(['produce lazy after hostTyped']);
    expect(made[0].disposed).toBe(true);
    expect(a.disposed).toBe(false);
    expect(events.at(-1)).toMatchObject({ tensor: 'lazyBytes', index: 4, tensorCount: 5, bytesWritten: result.bytes, totalBytes: result.bytes });
    expect((await readFile(path)).length).toBe(result.bytes);
    const f = await loadGGUF(path);
    expect(f.tensorInfos.map((t) => [t.name, t.type.name, t.shape])).toEqual([
      ['a', 'f32', [2, 2]],
      ['host', 'q8_0', [2, 32]],
      ['hostTyped', 'i32', [3]],
      ['lazy', 'f32', [4]],
      ['lazyBytes', 'f16', [2]],
    ]);
    expect(await f.readTensorBytes('host')).toEqual(blocks);
    expect(await f.readTensorBytes('lazy')).toEqual(raw(new Float32Array([9, 8, 7, 6])));
    expect(await f.readTensorBytes('lazyBytes')).toEqual(raw(new Uint16Array([0x3c00, 0xc000])));
    a.dispose();
  });

  test.each([1, 2, 4, 8, 16, 32, 64, 128, 4096])('alignment %i: data section and every offset aligned, and other readers agree', async (alignment) => {
    const path = file(`align-${alignment}.gguf`);
    const a = array(new Float32Array([1, 2, 3]));
    const b = array(new Int8Array([1, 2, 3, 4, 5]));
    const c = array(new Float32Array([4, 5]));
    await saveGGUF(path, { a, b, c }, { 'general.architecture': 'test' }, { alignment });
    const f = await loadGGUF(path);
    expect(f.alignment).toBe(alignment);
    expect(f.dataOffset % alignment).toBe(0);
    for (const t of f.tensorInfos) expect(t.fileOffset % alignment).toBe(0);
    expect('general.alignment' in f.metadata).toBe(alignment !== 32);
    const buf = await readFile(path);
    expect(buf.length % alignment).toBe(0);
    // Padding is zeros.
    const last = f.tensorInfos.at(-1)!;
    expect([...buf.subarray(last.fileOffset + last.nbytes)].every((x) => x === 0)).toBe(true);
    const hf = await hfParse(path, { allowLocalFile: true });
    expect(hf.tensorInfos.map((t) => [t.name, Number(t.offset)])).toEqual(f.tensorInfos.map((t) => [t.name, t.offset]));
    expect(hf.tensorDataOffset).toBe(BigInt(f.dataOffset));
    expect(await f.readTensorBytes('b')).toEqual(new Uint8Array([1, 2, 3, 4, 5]));
    for (const x of [a, b, c]) x.dispose();
  });

  test('a 0-D array, a 4-D array and an empty tensor', async () => {
    const path = file('shapes.gguf');
    const s = array(new Float32Array([3.5]), { shape: [] });
    const d4 = array(new Float32Array(24).fill(1), { shape: [1, 2, 3, 4] });
    const e = array(new Float32Array(0), { shape: [0, 8] });
    await saveGGUF(path, { s, d4, e });
    const f = await loadGGUF(path);
    expect(f.tensorInfos.map((t) => t.ne)).toEqual([[], [4, 3, 2, 1], [8, 0]]);
    expect(f.tensorInfos.map((t) => t.nbytes)).toEqual([4, 96, 0]);
    const back = (await f.arrays.s()) as WgArray;
    expect([...back.shape]).toEqual([]);
    expect(await back.data()).toEqual(new Float32Array([3.5]));
    for (const x of [s, d4, e, back]) x.dispose();
  });

  const BAD_SAVES: [string, () => Parameters<typeof saveGGUF>[1], RegExp, Function][] = [
    ['a 64-byte tensor name', () => ({ ['n'.repeat(64)]: { shape: [1], type: 'f32', data: new Float32Array(1) } }), /64 bytes.*at most 63/, ArgumentError],
    ['a 5-D tensor', () => ({ t: { shape: [1, 1, 1, 1, 1], type: 'f32', data: new Float32Array(1) } }), /5 dimensions/, ShapeError],
    ['a row not a multiple of the block size', () => ({ t: { shape: [2, 33], type: 'q8_0', data: new Uint8Array(68) } }), /not a multiple of q8_0's block size 32/, ShapeError],
    ['host bytes of the wrong size', () => ({ t: { shape: [4], type: 'f16', data: new Uint8Array(7) } }), /7 bytes of data.*8 bytes/, ShapeError],
    ['a duplicate name in pairs', () => [['t', { shape: [1], type: 'f32', data: new Float32Array(1) }], ['t', { shape: [1], type: 'f32', data: new Float32Array(1) }]] as never, /given twice/, ArgumentError],
    ['an unknown ggml type', () => ({ t: { shape: [1], type: 'q4_2', data: new Uint8Array(1) } }), /unknown ggml type "q4_2"/, ArgumentError],
    ['type and dtype both', () => ({ t: { shape: [1], type: 'f32', dtype: 'float32', data: new Float32Array(1) } }), /type or dtype, not both/, ArgumentError],
    ['a disposed array', () => { const x = array(new Float32Array(2)); x.dispose(); return { x }; }, /disposed/, DisposedError],
    ['not a tensor', () => ({ t: { shape: [1] } }) as never, /expected a WgArray/, ArgumentError],
  ];
  test.each(BAD_SAVES)('refused before writing: %s', async (_, make, message, kind) => {
    const path = file('bad-save.gguf');
    await writeFile(path, 'old');
    const err = await saveGGUF(path, make()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(kind);
    expect((err as Error).message).toMatch(message);
    expect(await readFile(path, 'utf8')).toBe('old');
    expect((await readdir(dir)).filter((n) => n.startsWith('.wgarray-tmp'))).toEqual([]);
  });

  test.each([
    ['produce() returns the wrong shape', () => array(new Float32Array(3)), /returned shape \[3\]/, ShapeError],
    ['produce() returns the wrong dtype', () => array(new Int32Array(4)), /returned int32/, DTypeError],
    ['produce() returns too few bytes', () => new Uint8Array(3), /returned 3 bytes/, ShapeError],
    ['produce() throws', () => { throw new Error('source file vanished'); }, /source file vanished/, Error],
  ] as const)('a failing lazy tensor leaves the old file: %s', async (_, produce, message, kind) => {
    const path = file('bad-lazy.gguf');
    await writeFile(path, 'old');
    const first = array(new Float32Array(64));
    const err = await saveGGUF(path, { first, t: { shape: [4], dtype: 'float32', produce } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(kind);
    expect((err as Error).message).toMatch(message);
    expect(await readFile(path, 'utf8')).toBe('old');
    expect((await readdir(dir)).filter((n) => n.startsWith('.wgarray-tmp'))).toEqual([]);
    first.dispose();
  });
});

describe('metadata', () => {
  // [key, value, GGUF type written, value read back]
  type Row = [string, unknown, GGUFType, unknown];
  const rows = (): Row[] => [
    // explicit types, one per GGUF value type
    ['x.u8', gguf.u8(200), 'u8', 200],
    ['x.i8', gguf.i8(-100), 'i8', -100],
    ['x.u16', gguf.u16(60000), 'u16', 60000],
    ['x.i16', gguf.i16(-30000), 'i16', -30000],
    ['x.u32', gguf.u32(4e9), 'u32', 4e9],
    ['x.i32', gguf.i32(-2e9), 'i32', -2e9],
    ['x.u64', gguf.u64(2n ** 63n + 5n), 'u64', 2n ** 63n + 5n],
    ['x.i64', gguf.i64(-(2n ** 62n)), 'i64', -(2n ** 62n)],
    ['x.f32', gguf.f32(0.1), 'f32', Math.fround(0.1)],
    ['x.f64', gguf.f64(0.1), 'f64', 0.1],
    ['x.bool', gguf.bool(true), 'bool', true],
    ['x.string', gguf.string('héllo ✓ 🦙'), 'string', 'héllo ✓ 🦙'],
    ['x.array', gguf.array('i16', [1, -1]), 'array<i16>', new Int16Array([1, -1])],
    ['x.nested', gguf.array('array<string>', [['a'], ['b', 'c']]), 'array<array<string>>', [['a'], ['b', 'c']]],
    // plain values, typed by the rules
    ['p.int', 7, 'u32', 7],
    ['p.neg', -7, 'i32', -7],
    ['p.big', 2 ** 40, 'u64', 2n ** 40n],
    ['p.negbig', -(2 ** 40), 'i64', -(2n ** 40n)],
    ['p.frac', 0.5, 'f32', 0.5],
    ['p.bigint', 5n, 'u64', 5n],
    ['p.negbigint', -5n, 'i64', -5n],
    ['p.bool', false, 'bool', false],
    ['p.string', '', 'string', ''],
    ['p.list', [1, 2, 3], 'array<u32>', new Uint32Array([1, 2, 3])],
    ['p.negs', [1, -2], 'array<i32>', new Int32Array([1, -2])],
    ['p.floats', [1, 0.5], 'array<f32>', new Float32Array([1, 0.5])],
    ['p.strings', ['a', 'b'], 'array<string>', ['a', 'b']],
    ['p.bools', [true, false], 'array<bool>', [true, false]],
    ['p.bigints', [1n, 2n], 'array<u64>', new BigUint64Array([1n, 2n])],
    ['p.empty', [], 'array<u32>', new Uint32Array(0)],
    ['p.nested', [[1, 2], [3]], 'array<array<u32>>', [new Uint32Array([1, 2]), new Uint32Array([3])]],
    ['p.f64array', new Float64Array([0.1]), 'array<f64>', new Float64Array([0.1])],
    ['p.u16array', new Uint16Array([1, 2]), 'array<u16>', new Uint16Array([1, 2])],
    ['p.i64array', new BigInt64Array([-1n]), 'array<i64>', new BigInt64Array([-1n])],
    ['p.u8array', new Uint8Array([255]), 'array<u8>', new Uint8Array([255])],
    // WgArrays: the dtype picks the type (MLX's rule)
    ['w.f32', array(new Float32Array([1, 2])), 'array<f32>', new Float32Array([1, 2])],
    ['w.i32', array([1, 2, 3], { dtype: 'int32' }), 'array<i32>', new Int32Array([1, 2, 3])],
    ['w.u8', array(new Uint8Array([7])), 'array<u8>', new Uint8Array([7])],
    ['w.bool', array([true, false]), 'array<bool>', [true, false]],
    ['w.scalar', array(new Int8Array([5]), { shape: [] }), 'i8', 5],
    // standard keys: llama.cpp's types
    ['general.architecture', 'llama', 'string', 'llama'],
    ['llama.context_length', 4096, 'u32', 4096],
    ['llama.attention.layer_norm_rms_epsilon', 1e-5, 'f32', Math.fround(1e-5)],
    ['llama.rope.freq_base', 10000, 'f32', 10000],
    ['llama.attention.head_count', 32, 'u32', 32],
    ['llama.attention.head_count_kv', [8, 8, 4], 'array<i32>', new Int32Array([8, 8, 4])],
    ['llama.rope.dimension_sections', gguf.array('u32', [1, 2, 3, 4]), 'array<u32>', new Uint32Array([1, 2, 3, 4])],
    ['general.file_type', 7, 'u32', 7],
    ['split.count', 2, 'u16', 2],
    ['tokenizer.ggml.tokens', ['<s>', 'a'], 'array<string>', ['<s>', 'a']],
    ['tokenizer.ggml.scores', new Float64Array([0.5, -1]), 'array<f32>', new Float32Array([0.5, -1])],
    ['tokenizer.ggml.token_type', new Uint8Array([1, 2]), 'array<i32>', new Int32Array([1, 2])],
    ['tokenizer.ggml.bos_token_id', 1, 'u32', 1],
    ['tokenizer.ggml.add_bos_token', true, 'bool', true],
    ['tokenizer.ggml.precompiled_charsmap', [1, 2, 255], 'array<u8>', new Uint8Array([1, 2, 255])],
    ['general.base_model.0.name', 'base', 'string', 'base'],
    ['tokenizer.chat_template.tool_use', '{{x}}', 'string', '{{x}}'],
  ];

  test('every value type and typing rule round-trips, and @huggingface/gguf reads the same keys, types and values', async () => {
    const table = rows();
    const path = file('metadata.gguf');
    const t = array(new Float32Array([1]));
    await saveGGUF(path, { t }, Object.fromEntries(table.map(([k, v]) => [k, v])));
    const f = await loadGGUF(path);
    expect(Object.keys(f.metadata)).toEqual(table.map(([k]) => k));
    for (const [key, , type, value] of table) {
      expect([key, f.metadataTypes[key]]).toEqual([key, type]);
      expect([key, f.metadata[key]]).toEqual([key, value]);
    }
    const hf = await hfParse(path, { allowLocalFile: true, typedMetadata: true });
    const ids: Record<string, number> = T;
    for (const [key, , type, value] of table) {
      const got = hf.typedMetadata[key] as { value: unknown; type: number; subType?: number };
      const base = type.startsWith('array<') ? 'array' : type;
      expect([key, got.type]).toEqual([key, ids[base]]);
      if (base === 'array') {
        const el = type.slice(6, -1);
        expect([key, got.subType]).toEqual([key, ids[el.startsWith('array') ? 'array' : el]]);
      }
      expect([key, norm(got.value)]).toEqual([key, norm(value)]);
    }
    t.dispose();
  });

  const BAD_META: [string, Record<string, unknown>, RegExp][] = [
    ['context_length given as i32', { 'llama.context_length': gguf.i32(4096) }, /'llama.context_length' is given as i32, but llama.cpp reads it as u32/],
    ['context_length given as u64', { 'llama.context_length': gguf.u64(4096) }, /given as u64, but llama.cpp reads it as u32/],
    ['rms epsilon given as f64', { 'llama.attention.layer_norm_rms_epsilon': gguf.f64(1e-5) }, /given as f64, but llama.cpp reads it as f32/],
    ['a negative context length', { 'llama.context_length': -1 }, /-1 is out of u32's range/],
    ['a fractional token id', { 'tokenizer.ggml.bos_token_id': 1.5 }, /expected an integer for u32/],
    ['a string for a bool key', { 'tokenizer.ggml.add_bos_token': 'yes' }, /expected a boolean/],
    ['a number for a string key', { 'general.name': 5 }, /expected a string/],
    ['a mixed list', { k: [1, 'a'] }, /mixes number and string/],
    ['an object', { k: { a: 1 } }, /expected a string, number/],
    ['null', { k: null }, /got null/],
    ['a lone surrogate', { k: 'a\ud800' }, /lone UTF-16 surrogate/],
  ];
  test.each(BAD_META)('refused: %s', async (_, metadata, message) => {
    const path = file('bad-meta.gguf');
    await writeFile(path, 'old');
    const err = await saveGGUF(path, {}, metadata).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArgumentError);
    expect((err as Error).message).toMatch(message);
    expect(await readFile(path, 'utf8')).toBe('old');
  });

  test('gguf.* check ranges and type names', () => {
    expect(() => gguf.u8(256)).toThrow(/256 is out of u8's range \[0, 255\]/);
    expect(() => gguf.i64(2n ** 63n)).toThrow(/out of i64's range/);
    expect(() => gguf.f32(1e39)).toThrow(/out of f32's range/);
    expect(() => gguf.u32(1.5)).toThrow(/expected an integer for u32/);
    expect(() => gguf.bool(1)).toThrow(/expected a boolean/);
    expect(() => gguf.array('string', ['a', 1])).toThrow(/\[1\]: expected a string/);
    expect(() => gguf.array('u33', [1])).toThrow(/'array<u33>' is not a GGUF value type/);
    expect(() => gguf.value('array<array>', [])).not.toThrow();
    expect(gguf.value('array<f64>', [1]).type).toBe('array<f64>');
  });

  test('strictKeyTypes: false writes an explicit type llama.cpp would reject', async () => {
    const path = file('loose.gguf');
    await saveGGUF(path, {}, { 'llama.context_length': gguf.u64(1n) }, { strictKeyTypes: false });
    expect((await loadGGUF(path)).metadataTypes['llama.context_length']).toBe('u64');
  });

  test('a 2-D WgArray and a float16 WgArray are refused as metadata', async () => {
    const m2 = array(new Float32Array(4), { shape: [2, 2] });
    const h = array(new Float32Array(2)).astype('float16');
    await expect(saveGGUF(file('m.gguf'), {}, { m2 })).rejects.toThrow(/2 dimensions; metadata arrays are 1-D/);
    await expect(saveGGUF(file('m.gguf'), {}, { h })).rejects.toThrow(/float16, which has no GGUF value type/);
    m2.dispose();
    h.dispose();
  });

  test('general.alignment in metadata sets the alignment; a conflicting option is an error', async () => {
    const path = file('meta-align.gguf');
    const t = array(new Float32Array(3));
    await saveGGUF(path, { t, u: t }, { 'general.alignment': 16 });
    const f = await loadGGUF(path);
    expect(f.alignment).toBe(16);
    expect(f.tensorInfos[1].offset).toBe(16);
    await expect(saveGGUF(path, { t }, { 'general.alignment': 16 }, { alignment: 64 })).rejects.toThrow(/disagrees/);
    await expect(saveGGUF(path, { t }, {}, { alignment: 48 })).rejects.toThrow(/48 is not a power of two/);
    t.dispose();
  });
});

describe('files built byte by byte from the spec', () => {
  const q8 = GGML_TYPES.find((t) => t.name === 'q8_0')!;
  const f32Data = [...f32(1.5), ...f32(-2), ...f32(0.25), ...f32(8)];
  const q8Data = [...bytes(34 * 2, 11)];
  function specFile(version = 3, alignment = 32): Uint8Array {
    return build({
      version: u32(version),
      alignment,
      kv: [
        kvString('general.architecture', 'llama'),
        kvU32('llama.context_length', 2048),
        ...(alignment !== 32 ? [kvU32('general.alignment', alignment)] : []),
        { key: 'llama.attention.layer_norm_rms_epsilon', value: [...u32(T.f32), ...f32(1e-6)] },
        { key: 'tokenizer.ggml.tokens', value: [...u32(T.array), ...u32(T.string), ...u64(3), ...str('<s>'), ...str('▁the'), ...str('é')] },
        { key: 'tokenizer.ggml.scores', value: [...u32(T.array), ...u32(T.f32), ...u64(2), ...f32(-1), ...f32(0.5)] },
        { key: 'custom.i64', value: [...u32(T.i64), ...u64(-3n)] },
        { key: 'custom.f64', value: [...u32(T.f64), ...f64(Math.PI)] },
        { key: 'custom.u8', value: [...u32(T.u8), ...u8(9)] },
        { key: 'custom.nested', value: [...u32(T.array), ...u32(T.array), ...u64(2), ...u32(T.i32), ...u64(1), ...i32(-5), ...u32(T.bool), ...u64(2), 1, 0] },
      ],
      tensors: [
        { name: 'output_norm.weight', ne: [4], type: 0, offset: 0 },
        { name: 'blk.0.attn_q.weight', ne: [32, 2], type: q8.id, offset: alignment * Math.ceil(16 / alignment) },
      ],
      data: [...pad(f32Data, alignment), ...pad(q8Data, alignment)],
    });
  }

  test.each([
    [3, 32],
    [2, 32],
    [3, 8],
    [3, 64],
  ])('version %i, alignment %i: wgarray reads what the spec says', async (version, alignment) => {
    const path = file(`spec-v${version}-a${alignment}.gguf`);
    await writeFile(path, specFile(version, alignment));
    const f = await loadGGUF(path);
    expect(f.version).toBe(version);
    expect(f.alignment).toBe(alignment);
    expect(f.metadata['general.architecture']).toBe('llama');
    expect(f.metadata['llama.context_length']).toBe(2048);
    expect(f.metadata['llama.attention.layer_norm_rms_epsilon']).toBe(Math.fround(1e-6));
    expect(f.metadata['tokenizer.ggml.tokens']).toEqual(['<s>', '▁the', 'é']);
    expect(f.metadata['tokenizer.ggml.scores']).toEqual(new Float32Array([-1, 0.5]));
    expect(f.metadata['custom.i64']).toBe(-3n);
    expect(f.metadata['custom.f64']).toBe(Math.PI);
    expect(f.metadata['custom.u8']).toBe(9);
    expect(f.metadata['custom.nested']).toEqual([new Int32Array([-5]), [true, false]]);
    expect(f.metadataTypes['custom.nested']).toBe('array<array>');
    expect(f.tensorInfos.map((t) => [t.name, t.type.name, t.shape])).toEqual([
      ['output_norm.weight', 'f32', [4]],
      ['blk.0.attn_q.weight', 'q8_0', [2, 32]],
    ]);
    const norm = (await f.arrays['output_norm.weight']()) as WgArray;
    expect(await norm.data()).toEqual(new Float32Array([1.5, -2, 0.25, 8]));
    const q = (await f.arrays['blk.0.attn_q.weight']()) as QuantizedArray;
    expect(await q.data()).toEqual(new Uint8Array(q8Data));
    norm.dispose();
    q.dispose();
  });

  test.each([32, 8, 64])('load -> save reproduces a spec-built v3 file byte for byte (alignment %i)', async (alignment) => {
    const original = specFile(3, alignment);
    const src = file(`spec-src-${alignment}.gguf`);
    const dst = file(`spec-dst-${alignment}.gguf`);
    await writeFile(src, original);
    const f = await loadGGUF(src);
    const arrays = await f.loadAll();
    await saveGGUF(dst, arrays, f.typedMetadata);
    expect(new Uint8Array(await readFile(dst))).toEqual(original);
    // and the lazy way: one tensor in memory at a time
    const lazy = f.tensorInfos.map((t) => [t.name, { shape: t.shape, type: t.type, produce: f.arrays[t.name] }] as const);
    await saveGGUF(dst, lazy, f.typedMetadata);
    expect(new Uint8Array(await readFile(dst))).toEqual(original);
    for (const a of Object.values(arrays)) a.dispose();
  });
});

describe('reading', () => {
  test('a file that changed after its header was read is refused', async () => {
    const path = file('changing.gguf');
    const t = array(new Float32Array(8));
    await saveGGUF(path, { t });
    const f = await loadGGUF(path);
    const buf = await readFile(path);
    await writeFile(path, Buffer.concat([buf, Buffer.alloc(32)]));
    await expect(f.readTensorBytes('t')).rejects.toThrow(/changed since its header was read/);
    await expect(f.arrays.t()).rejects.toThrow(/changed since/);
    expect(() => f.tensor('nope')).toThrow(/no tensor named 'nope'/);
    t.dispose();
  });
});
