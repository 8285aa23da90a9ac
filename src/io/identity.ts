// Refusing to write over an input: paths are compared by what they are on
// disk (device + inode, after following symlinks), not by how they are
// spelled, so `out.gguf -> in.gguf`, a symlinked folder, `./a/../in.gguf` or
// a hard link are all caught. A folder input counts every file in it (the
// converter may read any of them).

import { readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Stats } from 'node:fs';
import { ArgumentError } from '../errors.js';
import { fileError } from './atomic.js';

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch {
    return undefined;
  }
}

/** The file a write to `path` would replace (symlinks followed, the folder's too); undefined when none exists yet. */
async function writeTarget(path: string): Promise<{ path: string; st: Stats } | undefined> {
  const abs = resolve(path);
  const st = await statOrUndefined(abs);
  if (st) {
    let real = abs;
    try {
      real = await realpath(abs);
    } catch {
      // stat worked; keep the spelled path
    }
    return { path: real, st };
  }
  return undefined;
}

/** Every regular file an input names: the file itself, or each file of a folder (one level, as the converter reads it). */
async function inputFiles(path: string): Promise<{ path: string; st: Stats }[]> {
  const abs = resolve(path);
  const st = await statOrUndefined(abs);
  if (!st) return []; // the reader says why it cannot read it
  if (!st.isDirectory()) return [{ path: abs, st }];
  let names: string[];
  try {
    names = await readdir(abs);
  } catch (e) {
    throw fileError(abs, e, 'cannot list the folder');
  }
  const out: { path: string; st: Stats }[] = [];
  for (const name of names) {
    const p = join(abs, name);
    const s = await statOrUndefined(p);
    if (s && s.isFile()) out.push({ path: p, st: s });
  }
  return out;
}

const sameFile = (a: Stats, b: Stats) => a.dev === b.dev && a.ino === b.ino;

/**
 * Throws an ArgumentError when writing any of `outputs` would replace one of
 * the `inputs` (or another output): `what` names each output ('the output',
 * '--report'). Outputs that do not exist yet cannot be an input.
 */
export async function refuseOverwritingInputs(inputs: string[], outputs: { path: string; what: string }[]): Promise<void> {
  const files = (await Promise.all(inputs.map(inputFiles))).flat();
  const seen: { path: string; what: string; st?: Stats }[] = [];
  for (const o of outputs) {
    const target = await writeTarget(o.path);
    if (!target) {
      // not there yet: two outputs may still name the same new file
      const abs = join(await realpath(dirname(resolve(o.path))).catch(() => dirname(resolve(o.path))), basename(o.path));
      const twin = seen.find((s) => s.path === abs);
      if (twin) throw new ArgumentError(`${o.what} ${o.path} is the same file as ${twin.what} ${twin.path}; write them to different files`);
      seen.push({ path: abs, what: o.what });
      continue;
    }
    if (target.st.isDirectory()) continue; // the writer refuses a folder with its own message
    const input = files.find((f) => sameFile(f.st, target.st));
    if (input) {
      const via = target.path !== resolve(o.path) ? ` (it resolves to ${target.path})` : '';
      throw new ArgumentError(`${o.what} ${o.path}${via} is the input file ${input.path}: writing it would destroy the input; write to another file`);
    }
    const twin = seen.find((s) => s.st !== undefined && sameFile(s.st, target.st));
    if (twin) throw new ArgumentError(`${o.what} ${o.path} is the same file as ${twin.what} ${twin.path}; write them to different files`);
    seen.push({ path: target.path, what: o.what, st: target.st });
  }
}
