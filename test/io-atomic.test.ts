// Saves are atomic: a writer killed mid-tensor, a full disk, a read-only file
// system, an abort or a failing tensor leave the old target byte for byte as
// it was, and the next successful save leaves no stray temporary file.
import { execFileSync } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runChild } from './helpers/child.js';
import { AbortError, array, close, FileError, init, loadGGUF, saveGGUF, saveSafetensors, type WgArray } from '../src/index.js';

let dir: string;
let small: WgArray;
beforeAll(async () => {
  await init();
  dir = await mkdtemp(join(tmpdir(), 'wgarray-io-atomic-'));
  small = array(new Float32Array([1, 2, 3, 4]));
});
afterAll(async () => {
  small.dispose();
  await close();
  await rm(dir, { recursive: true, force: true });
});

const temps = async (d: string) => (await readdir(d)).filter((n) => n.startsWith('.wgarray-tmp-'));

/**
 * A process that saves a GGUF and is stopped in the middle of its second
 * tensor: `hang` prints MID and blocks until killed (as a crash would stop it),
 * `exit` calls process.exit(3).
 */
async function saveInChild(target: string, mode: 'hang' | 'exit') {
  const r = await runChild(
    `import { writeSync } from 'node:fs';
     await WG.init();
     const a = WG.array(new Float32Array(1 << 20).fill(1));
     const b = WG.array(new Float32Array(1 << 20).fill(2));
     await WG.saveGGUF(${JSON.stringify(target)}, { a, b }, { 'general.architecture': 'child' }, {
       chunkBytes: 256 * 1024,
       onProgress: (p) => {
         if (p.index !== 1 || p.tensorBytesWritten === 0 || p.tensorBytesWritten >= p.tensorBytes) return;
         if (${JSON.stringify(mode)} === 'exit') process.exit(3);
         writeSync(1, 'MID\\n');
         Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
       },
     });
     writeSync(1, 'DONE\\n');
     process.exit(0);`,
    {},
    60_000,
    mode === 'hang' ? /MID/ : undefined,
  );
  if (r.timedOut || (mode === 'hang' && !r.stdout.includes('MID'))) {
    throw new Error(`child did not reach the middle of its save\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return r;
}

describe('interrupted saves', () => {
  test('a writer killed mid-tensor leaves the old target intact; the next save removes its temporary file', async () => {
    const target = join(dir, 'killed.gguf');
    await saveGGUF(target, { old: small }, { 'general.architecture': 'old' });
    const before = await readFile(target);
    const child = await saveInChild(target, 'hang');
    expect(child.signal).toBe('SIGKILL');
    expect(child.stdout).not.toContain('DONE');
    expect(await readFile(target)).toEqual(before);
    const left = await temps(dir);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(new RegExp(`^\\.wgarray-tmp-${child.pid}-[0-9a-f]+-killed\\.gguf$`));
    // The child got past the header and into its second 4 MiB tensor.
    const partial = (await stat(join(dir, left[0]))).size;
    expect(partial).toBeGreaterThan(4 * 2 ** 20);
    expect(partial).toBeLessThan(8 * 2 ** 20);
    await saveGGUF(target, { fresh: small }, { 'general.architecture': 'new' });
    expect(await temps(dir)).toEqual([]);
    expect((await loadGGUF(target)).metadata['general.architecture']).toBe('new');
  });

  test('process.exit() mid-save removes the temporary file on the way out', async () => {
    const target = join(dir, 'exited.gguf');
    await writeFile(target, 'old');
    const child = await saveInChild(target, 'exit');
    expect(child.code).toBe(3);
    expect(await readFile(target, 'utf8')).toBe('old');
    expect(await temps(dir)).toEqual([]);
  });

  test('an AbortSignal fired mid-tensor rejects with AbortError and leaves the old target', async () => {
    const target = join(dir, 'aborted.gguf');
    await writeFile(target, 'old');
    const big = array(new Float32Array(1 << 18));
    const ac = new AbortController();
    const err = await saveGGUF(target, { small, big }, {}, {
      signal: ac.signal,
      chunkBytes: 64 * 1024,
      onProgress: (p) => {
        if (p.tensor === 'big' && p.tensorBytesWritten > 0) ac.abort(new Error('user pressed Ctrl-C'));
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortError);
    expect((err as Error).message).toMatch(/aborted: user pressed Ctrl-C; the old file is untouched/);
    expect(await readFile(target, 'utf8')).toBe('old');
    expect(await temps(dir)).toEqual([]);
    await expect(saveSafetensors(target, { small }, undefined, { signal: ac.signal })).rejects.toThrow(AbortError);
    big.dispose();
  });
});

test('saving over a symlink replaces the file it points to and keeps the link', async () => {
  const real = join(dir, 'real.gguf');
  const link = join(dir, 'link.gguf');
  await writeFile(real, 'old');
  await symlink(real, link);
  await saveGGUF(link, { small });
  expect((await lstat(link)).isSymbolicLink()).toBe(true);
  expect(await readlink(link)).toBe(real);
  expect((await loadGGUF(real)).tensorInfos.map((t) => t.name)).toEqual(['small']);
  expect(await temps(dir)).toEqual([]);
});

describe('unwritable targets', () => {
  test('a missing folder and a target that is a folder are FileErrors naming the path', async () => {
    const missing = join(dir, 'no-such-folder', 'x.gguf');
    const e1 = await saveGGUF(missing, { small }).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(FileError);
    expect((e1 as FileError).file).toBe(missing);
    expect((e1 as Error).message).toMatch(/cannot create a temporary file in .*no-such-folder: no such file or folder \(ENOENT\)/);
    const folder = join(dir, 'a-folder.gguf');
    await mkdir(folder);
    await expect(saveGGUF(folder, { small })).rejects.toThrow(/a-folder.gguf: cannot write the file: it is a folder/);
    expect(await temps(dir)).toEqual([]);
  });

  // A full disk and a read-only file system need a small file system of their own: a tmpfs (root or CAP_SYS_ADMIN).
  async function withTmpfs(options: string, body: (mnt: string) => Promise<void>, skip: (note: string) => void): Promise<void> {
    const mnt = await mkdtemp(join(tmpdir(), 'wgarray-tmpfs-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', mnt], { stdio: 'pipe' });
    } catch (e) {
      await rm(mnt, { recursive: true, force: true });
      return skip(`mounting a tmpfs needs root or CAP_SYS_ADMIN, which this run lacks: ${(e as Error).message.split('\n')[0]}`);
    }
    try {
      await body(mnt);
    } finally {
      execFileSync('umount', [mnt]);
      await rm(mnt, { recursive: true, force: true });
    }
  }

  test('disk full: FileError, old target intact, no temporary file left', async ({ skip }) => {
    await withTmpfs('size=1m', async (mnt) => {
      const target = join(mnt, 'model.gguf');
      await saveGGUF(target, { small }, { 'general.architecture': 'old' });
      const before = await readFile(target);
      const big = array(new Float32Array(1 << 19)); // 2 MiB, on a 1 MiB file system
      const err = await saveGGUF(target, { small, big }, {}, { chunkBytes: 256 * 1024 }).catch((e: unknown) => e);
      big.dispose();
      expect(err).toBeInstanceOf(FileError);
      expect((err as FileError).file).toBe(target);
      expect((err as Error).message).toMatch(/writing \d+ bytes at byte \d+ failed: the disk is full \(ENOSPC\)/);
      expect(await readFile(target)).toEqual(before);
      expect(await readdir(mnt)).toEqual(['model.gguf']);
      // safetensors goes through the same path
      const big2 = array(new Float32Array(1 << 19));
      await expect(saveSafetensors(join(mnt, 'w.safetensors'), { big2 })).rejects.toThrow(/the disk is full/);
      big2.dispose();
      expect(await readdir(mnt)).toEqual(['model.gguf']);
    }, skip);
  });

  test('a read-only file system: FileError before anything is written', async ({ skip }) => {
    await withTmpfs('size=64k,ro', async (mnt) => {
      const err = await saveGGUF(join(mnt, 'x.gguf'), { small }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FileError);
      expect((err as Error).message).toMatch(/cannot create a temporary file in .*: the file system is read-only \(EROFS\)/);
    }, skip);
  });
});
