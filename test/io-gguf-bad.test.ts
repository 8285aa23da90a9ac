// A corpus of broken GGUF files, built byte by byte: each must be refused with
// a FormatError naming the file, the byte offset and what was expected, before
// any tensor is read and without an allocation sized by an unchecked count.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { FormatError, loadGGUF } from '../src/index.js';
import { build, f32, kvString, kvU32, pad, str, T, u32, u64, u8, type Bytes, type GGUFSpec, type KV } from './fixtures/io/gguf-build.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wgarray-io-bad-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const Q8 = 8;
function base(change: (s: GGUFSpec) => void = () => {}): GGUFSpec {
  const spec: GGUFSpec = {
    kv: [kvString('general.architecture', 'llama'), kvU32('llama.context_length', 8)],
    tensors: [
      { name: 'a', ne: [4], type: 0, offset: 0 },
      { name: 'b', ne: [32], type: Q8, offset: 32 },
    ],
    data: [...pad([...f32(1), ...f32(2), ...f32(3), ...f32(4)]), ...pad(new Array(34).fill(7))],
  };
  change(spec);
  return spec;
}
const file = (change?: (s: GGUFSpec) => void) => build(base(change));
const withKV = (kv: KV) => file((s) => s.kv.push(kv));
const value = (key: string, ...payload: Bytes[]): KV => ({ key, value: payload.flat() });
/** Bytes of the header up to (not including) the padding before the data. */
const headerLength = build({ ...base(), data: [], alignment: 1 }).length;
const valid = file();

function nested(depth: number): Bytes {
  // depth arrays of arrays, the innermost an empty u8 array
  let v: Bytes = [...u32(T.u8), ...u64(0)];
  for (let i = 0; i < depth; i++) v = [...u32(T.array), ...u64(1), ...v];
  return v;
}

// [what, file bytes, message, byte offset (undefined: any)]
const CASES: [string, Uint8Array, RegExp, number | undefined][] = [
  ['an empty file', new Uint8Array(0), /the file is 0 bytes; a GGUF file starts with the 4-byte magic/, 0],
  ['a 2-byte file', valid.slice(0, 2), /the file is 2 bytes/, 0],
  ['the wrong magic', file((s) => (s.magic = [...Buffer.from('GGUX')])), /not a GGUF file: it starts with "GGUX"/, 0],
  ['a safetensors file', new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d, 32, 32, 32, 32, 32, 32]), /not a GGUF file/, 0],
  ['version 1', file((s) => (s.version = u32(1))), /GGUF version 1 \(2023\) is not supported/, 4],
  ['version 4', file((s) => (s.version = u32(4))), /GGUF version 4 is not supported; wgarray reads versions 2 and 3/, 4],
  ['a big-endian file', file((s) => (s.version = [0, 0, 0, 3])), /big-endian GGUF file; wgarray reads little-endian GGUF only/, 4],
  ['a file cut inside the counts', valid.slice(0, 12), /ends at byte 12, inside the tensor count/, 8],
  ['a file cut inside a key', build({ kv: [kvString('general.architecture', 'llama')], tensors: [], data: [] }).slice(0, 24 + 8 + 5), /length of metadata key #0 is 20, but only 5 bytes follow/, 24],
  ['a file cut inside a value', build({ kv: [kvU32('a.b', 5)], tensors: [], data: [] }).slice(0, 41), /ends at byte 41, inside metadata 'a.b' \(2 more bytes expected; truncated file\?\)/, 39],
  ['a file cut inside the tensor infos', valid.slice(0, headerLength - 3), /inside the offset of tensor 'b'/, undefined],
  ['tensor data cut short', valid.slice(0, valid.length - 40), /tensor 'b' \(q8_0, ne \[32\]\) occupies bytes \d+ to \d+, past the end of the file/, undefined],
  ['an absurd tensor count', file((s) => (s.tensorCount = u64(2n ** 60n))), /the tensor count is 1152921504606846976, but only \d+ bytes follow/, 8],
  ['an absurd metadata count', file((s) => (s.kvCount = u64(2n ** 62n))), /the metadata count is 4611686018427387904, but only \d+ bytes follow/, 16],
  ['an absurd string length', withKV(value('x', u32(T.string), u64(2n ** 62n))), /length of metadata 'x' is 4611686018427387904, but only \d+ bytes follow/, undefined],
  ['an absurd key length', withKV({ key: '', value: [], raw: u64(2n ** 50n) }), /length of metadata key #2 is 1125899906842624, but only \d+ bytes follow/, undefined],
  ['an absurd array count', withKV(value('x', u32(T.array), u32(T.u64), u64(2n ** 40n))), /element count of metadata 'x' is 1099511627776, but only \d+ bytes follow \(each takes at least 8\)/, undefined],
  ['an unknown value type', withKV(value('x', u32(13), u32(0))), /metadata 'x' has value type 13; GGUF value types are 0 to 12/, undefined],
  ['an unknown array element type', withKV(value('x', u32(T.array), u32(99), u64(0))), /an element of metadata 'x' has value type 99/, undefined],
  ['arrays nested 9 deep', withKV(value('x', u32(T.array), nested(9))), /nests arrays more than 8 deep/, undefined],
  ['a key that is not UTF-8', withKV({ key: [0xff, 0xfe], value: [...u32(T.u8), 1] }), /metadata key #2 is not valid UTF-8/, undefined],
  ['a string value that is not UTF-8', withKV(value('x', u32(T.string), str([0xc3, 0x28]))), /metadata 'x' is not valid UTF-8/, undefined],
  ['a tensor name that is not UTF-8', file((s) => (s.tensors[0].name = [0x61, 0xed, 0xa0, 0x80])), /the name of tensor #0 is not valid UTF-8/, undefined],
  ['a duplicate key', withKV(kvU32('llama.context_length', 9)), /metadata key 'llama.context_length' appears twice/, undefined],
  ['a duplicate tensor name', file((s) => (s.tensors[1].name = 'a')), /tensor 'a' appears twice/, undefined],
  ['a 64-byte tensor name', file((s) => (s.tensors[0].name = 'x'.repeat(64))), /tensor name 'x+' is 64 bytes; llama.cpp allows at most 63/, undefined],
  ['5 dimensions', file((s) => (s.tensors[0].ne = [4, 1, 1, 1, 1])), /tensor 'a' has 5 dimensions; GGUF tensors have at most 4/, undefined],
  ['ggml type 4 (removed from ggml)', file((s) => (s.tensors[0].type = 4)), /tensor 'a' has ggml type 4, which is not a ggml type/, undefined],
  ['ggml type 99', file((s) => (s.tensors[0].type = 99)), /tensor 'a' has ggml type 99/, undefined],
  ['ne[0] not a multiple of the block size', file((s) => (s.tensors[1].ne = [33])), /tensor 'b' has ne\[0\] = 33, not a multiple of q8_0's block size 32/, undefined],
  ['a negative dimension', file((s) => (s.tensors[0].ne = [2n ** 63n + 1n])), /negative as ggml's int64/, undefined],
  ['an element count past 2^53', file((s) => (s.tensors[0].ne = [2 ** 31, 2 ** 31, 2 ** 31])), /elements; no file holds that many/, undefined],
  ['an offset off the alignment', file((s) => (s.tensors[1].offset = 33)), /tensor 'b' has data offset 33, not a multiple of the alignment 32/, undefined],
  ['overlapping tensors', file((s) => (s.tensors[1].offset = 0)), /tensor 'b' \(bytes \d+ to \d+\) overlaps tensor 'a'/, undefined],
  ['an offset past the end of the file', file((s) => (s.tensors[1].offset = 4096)), /tensor 'b' has data offset 4096, past the end of the file/, undefined],
  ['tensor data past the end of the file', file((s) => (s.tensors[1].offset = 64)), /tensor 'b' .* past the end of the file/, undefined],
  ['a bool stored as 2', withKV(value('x', u32(T.bool), u8(2))), /metadata 'x' is a bool stored as 2; expected 0 or 1/, undefined],
  ['general.alignment as i32', withKV(value('general.alignment', u32(T.i32), u32(32))), /general.alignment is i32 32; expected a u32 power of two/, undefined],
  ['general.alignment 48', withKV(kvU32('general.alignment', 48)), /general.alignment is u32 48; expected a u32 power of two/, undefined],
  ['general.alignment 0', withKV(kvU32('general.alignment', 0)), /general.alignment is u32 0/, undefined],
  ['a data section past the end of the file', build({ ...base(), data: [] }).slice(0, headerLength), /data section starts at byte \d+ .* past the end of the file/, undefined],
];

test.each(CASES)('refuses %s', async (what, bytes, message, offset) => {
  const path = join(dir, `${what.replace(/\W+/g, '-')}.gguf`);
  await writeFile(path, bytes);
  const err = await loadGGUF(path).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FormatError);
  const e = err as FormatError;
  expect(e.file).toBe(path);
  expect(e.message.startsWith(`${path} at byte `)).toBe(true);
  expect(e.message).toMatch(message);
  if (offset !== undefined) expect(e.offset).toBe(offset);
  expect(e.offset).toBeGreaterThanOrEqual(0);
  expect(e.offset).toBeLessThanOrEqual(Math.max(bytes.length, 1));
});

test('the valid base file of the corpus loads', async () => {
  const path = join(dir, 'valid.gguf');
  await writeFile(path, valid);
  const f = await loadGGUF(path);
  expect(f.tensorInfos.map((t) => t.name)).toEqual(['a', 'b']);
  expect(await f.readTensorBytes('b')).toEqual(new Uint8Array(34).fill(7));
});

test('a missing file and a folder are FileErrors naming the path', async () => {
  await expect(loadGGUF(join(dir, 'nope.gguf'))).rejects.toThrow(/nope.gguf: cannot open the file for reading: no such file or folder \(ENOENT\)/);
  await expect(loadGGUF(dir)).rejects.toThrow(/(expected a file, found a folder|EISDIR)/);
});
