// Atomic file writing: bytes go to a temporary file beside the target, are
// fsynced, and the temporary file is renamed over the target only after the
// last byte is on disk. Any failure (an exception, an abort, disk full)
// removes the temporary file and leaves the old target untouched. A process
// killed mid-write leaves its temporary file behind; the next save of the same
// target removes temporaries whose writer process is gone, when it starts (and
// again after its commit).

import { constants as fsc } from 'node:fs';
import { lstat, open, readdir, realpath, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { unlinkSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { AbortError, FileError, WgArrayError } from '../errors.js';

const TEMP_PREFIX = '.wgarray-tmp-';
/** Longest target name kept in a temporary file's name (file names are limited to 255 bytes). */
const NAME_KEEP = 120;

/** Temporary files being written by this process, removed if it exits mid-write. */
const live = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const p of live) {
      try {
        unlinkSync(p);
      } catch {
        // already gone
      }
    }
  });
}

function tempName(target: string): string {
  const base = basename(target).slice(0, NAME_KEEP);
  return join(dirname(target), `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}-${base}`);
}

/** Turns a Node file-system error into a FileError that says what happened to `file`. */
export function fileError(file: string, err: unknown, doing: string): WgArrayError {
  if (err instanceof WgArrayError) return err;
  const e = err as NodeJS.ErrnoException;
  const reasons: Record<string, string> = {
    ENOSPC: 'the disk is full',
    EDQUOT: 'the disk quota is exhausted',
    EFBIG: 'the file is larger than this file system or process allows',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'the file system is read-only',
    ENOENT: 'no such file or folder',
    ENOTDIR: 'a part of the path is not a folder',
    EISDIR: 'it is a folder',
    EIO: 'an I/O error',
    EMFILE: 'too many open files',
  };
  const reason = (e && e.code && reasons[e.code]) ?? e?.message ?? String(err);
  return new FileError(file, `${doing}: ${reason}${e?.code ? ` (${e.code})` : ''}`, { cause: err });
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temporary files of `target` left by writer processes that no longer run. */
export async function removeStaleTemps(target: string): Promise<string[]> {
  const dir = dirname(target);
  const base = basename(target).slice(0, NAME_KEEP);
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.startsWith(TEMP_PREFIX)) continue;
    const m = /^(\d+)-[0-9a-f]+-(.*)$/s.exec(name.slice(TEMP_PREFIX.length));
    if (!m || m[2] !== base || isAlive(Number(m[1]))) continue;
    try {
      await unlink(join(dir, name));
      removed.push(name);
    } catch {
      // another process removed it, or it is not ours to remove
    }
  }
  return removed;
}

/** A file being written at a temporary path; commit() renames it over the target. */
export class AtomicFile {
  readonly target: string;
  readonly tempPath: string;
  private handle: FileHandle | null;
  private signal: AbortSignal | undefined;
  /** Bytes written so far (the next sequential write's position). */
  position = 0;
  private done = false;

  private constructor(target: string, tempPath: string, handle: FileHandle, signal?: AbortSignal) {
    this.target = target;
    this.tempPath = tempPath;
    this.handle = handle;
    this.signal = signal;
  }

  /** Creates the temporary file beside `target`; fails early if the folder is not writable or the target is a folder. */
  static async create(target: string, options: { signal?: AbortSignal } = {}): Promise<AtomicFile> {
    let abs = resolve(target);
    // A symlink stays a symlink: the file it points to is the one replaced.
    try {
      if ((await lstat(abs)).isSymbolicLink()) abs = await realpath(abs);
    } catch {
      // missing, or a dangling link: write the path itself
    }
    let mode = 0o666;
    try {
      const st = await stat(abs);
      if (st.isDirectory()) throw new FileError(abs, 'cannot write the file: it is a folder');
      mode = st.mode & 0o777;
    } catch (e) {
      if (e instanceof WgArrayError) throw e;
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fileError(abs, e, 'cannot write the file');
    }
    // temporaries of this target left by a killed writer go now, not only after a successful save
    await removeStaleTemps(abs);
    const temp = tempName(abs);
    let handle: FileHandle;
    try {
      handle = await open(temp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, mode);
    } catch (e) {
      throw fileError(abs, e, `cannot create a temporary file in ${dirname(abs)}`);
    }
    installExitHook();
    live.add(temp);
    return new AtomicFile(abs, temp, handle, options.signal);
  }

  /** Throws AbortError if the save's signal has fired. */
  checkAbort(): void {
    if (this.signal?.aborted) {
      const reason = this.signal.reason;
      throw new AbortError(`saving ${this.target} was aborted${reason instanceof Error ? `: ${reason.message}` : ''}; the old file is untouched`);
    }
  }

  /** Appends `data` at the current position (all of it: short writes are retried). */
  async write(data: Uint8Array): Promise<void> {
    this.checkAbort();
    const h = this.handle;
    if (!h) throw new FileError(this.target, 'write after the file was closed');
    let done = 0;
    try {
      while (done < data.length) {
        const { bytesWritten } = await h.write(data, done, data.length - done, this.position + done);
        if (bytesWritten <= 0) throw Object.assign(new Error('short write'), { code: 'EIO' });
        done += bytesWritten;
      }
    } catch (e) {
      throw fileError(this.target, e, `writing ${data.length} bytes at byte ${this.position + done} failed`);
    }
    this.position += data.length;
  }

  /** Appends `n` zero bytes. */
  async zeros(n: number): Promise<void> {
    if (n > 0) await this.write(new Uint8Array(n));
  }

  /**
   * Flushes the bytes to disk and closes the temporary file, without renaming
   * it into place (commit() does). Once flushed, an abort no longer stops the
   * commit: a set of files is then renamed into place whole.
   */
  async flush(): Promise<void> {
    if (this.done) throw new FileError(this.target, 'flush of a file that is already closed');
    const h = this.handle;
    if (!h) return; // flushed already
    this.checkAbort();
    try {
      await h.sync();
    } catch (e) {
      throw fileError(this.target, e, 'flushing the file to disk failed');
    }
    this.handle = null;
    try {
      await h.close();
    } catch (e) {
      throw fileError(this.target, e, 'closing the file failed');
    }
  }

  /** Flushes to disk and renames the temporary file over the target; removes stale temporaries of earlier, killed writers. */
  async commit(): Promise<void> {
    await this.flush();
    try {
      await rename(this.tempPath, this.target);
    } catch (e) {
      throw fileError(this.target, e, 'renaming the finished file into place failed');
    }
    this.done = true;
    live.delete(this.tempPath);
    await syncFolder(dirname(this.target));
    await removeStaleTemps(this.target);
  }

  /** Closes and removes the temporary file (after a failure); the target is not touched. Never throws. */
  async discard(): Promise<void> {
    if (this.done) return;
    this.done = true;
    const h = this.handle;
    this.handle = null;
    if (h) await h.close().catch(() => {});
    await rm(this.tempPath, { force: true }).catch(() => {});
    live.delete(this.tempPath);
  }
}

/** Makes a rename durable: fsync the folder (where the platform allows it). */
async function syncFolder(dir: string): Promise<void> {
  let h: FileHandle | undefined;
  try {
    h = await open(dir, fsc.O_RDONLY);
    await h.sync();
  } catch {
    // Windows and some file systems cannot fsync a folder; the rename itself is still atomic.
  } finally {
    await h?.close().catch(() => {});
  }
}

/**
 * Runs `write` against a new AtomicFile for `target` and commits it; on any
 * error the temporary file is removed and the error rethrown.
 */
export async function writeAtomically<T>(
  target: string,
  write: (file: AtomicFile) => Promise<T>,
  options: { signal?: AbortSignal } = {},
): Promise<T> {
  const file = await AtomicFile.create(target, options);
  try {
    const result = await write(file);
    await file.commit();
    return result;
  } catch (e) {
    await file.discard();
    throw e;
  }
}

/**
 * Writes files that only make sense together (a sharded model and its index):
 * each part's `write` fills its own temporary file, every file is flushed to
 * disk, and only then are they renamed into place, in the order given (put
 * the index last). A failure or an abort while writing or flushing removes
 * every temporary file and leaves all the old targets untouched; only a
 * failing rename (the last, metadata-only step) can leave the set half replaced.
 */
export async function writeAtomicallyTogether(
  parts: { target: string; write: (file: AtomicFile) => Promise<void> }[],
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  const files: AtomicFile[] = [];
  try {
    for (const part of parts) {
      const file = await AtomicFile.create(part.target, options);
      files.push(file);
      await part.write(file);
      await file.flush();
    }
    for (const file of files) await file.commit();
  } catch (e) {
    for (const file of files) await file.discard();
    throw e;
  }
}
