// What the tests that write files share: the default device and a temporary
// folder for the test file (removed afterwards), and deterministic bytes.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { close, init } from '../../src/index.js';

/** The test file's temporary folder (set by setUpDeviceAndTempDir's beforeAll). */
export let dir: string;

/** Registers the hooks; call once at the top of a test file. */
export function setUpDeviceAndTempDir(prefix: string): void {
  beforeAll(async () => {
    await init();
    dir = await mkdtemp(join(tmpdir(), prefix));
  });
  afterAll(async () => {
    await close();
    await rm(dir, { recursive: true, force: true });
  });
}

/** A path in the test file's temporary folder. */
export const file = (name: string): string => join(dir, name);

/** Deterministic bytes (xorshift32). */
export function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed * 2654435761 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** The bytes under a typed array. */
export const raw = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
