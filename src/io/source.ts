// Reading tensor files: exact positional reads that name the file and offset
// when the file is shorter than its header says, a check that the file did
// not change between parsing its header and reading a tensor, and the upload
// of a byte range into a GPU buffer in bounded chunks.

import { open, stat, type FileHandle } from 'node:fs/promises';
import { FileError, FormatError } from '../errors.js';
import type { Device } from '../runtime/device.js';
import { fileError } from './atomic.js';

/** Identity of a file when its header was parsed. */
export interface FileStamp {
  path: string;
  size: number;
  mtimeMs: number;
}

export async function openForRead(path: string): Promise<{ handle: FileHandle; stamp: FileStamp }> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    throw fileError(path, e, 'cannot open the file for reading');
  }
  try {
    const st = await handle.stat();
    if (st.isDirectory()) throw new FileError(path, 'expected a file, found a folder');
    return { handle, stamp: { path, size: st.size, mtimeMs: st.mtimeMs } };
  } catch (e) {
    await handle.close().catch(() => {});
    throw fileError(path, e, 'cannot read the file');
  }
}

/** Opens a file whose header was parsed earlier, refusing it if it changed since. */
export async function reopen(stamp: FileStamp): Promise<FileHandle> {
  const { handle, stamp: now } = await openForRead(stamp.path);
  if (now.size !== stamp.size || now.mtimeMs !== stamp.mtimeMs) {
    await handle.close().catch(() => {});
    throw new FileError(stamp.path, `the file changed since its header was read (size ${stamp.size} -> ${now.size} bytes); load it again`);
  }
  return handle;
}

const MAX_READ = 1 << 30;

/** Fills `into` with the file's bytes from `position`; a short file is a FormatError at the first missing byte. */
export async function readExact(handle: FileHandle, path: string, into: Uint8Array, position: number, what: string): Promise<void> {
  let done = 0;
  while (done < into.length) {
    let n: number;
    try {
      ({ bytesRead: n } = await handle.read(into, done, Math.min(MAX_READ, into.length - done), position + done));
    } catch (e) {
      throw fileError(path, e, `reading ${what} failed`);
    }
    if (n === 0) throw new FormatError(path, position + done, `the file ends here, inside ${what} (${into.length - done} more bytes expected)`);
    done += n;
  }
}

/** Size of an existing file, as a FileError when it cannot be read. */
export async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (e) {
    throw fileError(path, e, 'cannot read the file');
  }
}

export const UPLOAD_CHUNK_BYTES = 32 * 2 ** 20;
/** Bytes queued to the GPU before waiting for the queue (bounds the driver's staging memory). */
const UPLOAD_SYNC_BYTES = 256 * 2 ** 20;

/**
 * Copies bytes [position, position + nbytes) of a file into `dst` from byte 0,
 * through one reused host chunk: memory stays bounded for any tensor size.
 */
export async function uploadFromFile(
  device: Device,
  stamp: FileStamp,
  position: number,
  nbytes: number,
  dst: GPUBuffer,
  what: string,
  chunkBytes = UPLOAD_CHUNK_BYTES,
): Promise<void> {
  if (nbytes === 0) return;
  const handle = await reopen(stamp);
  try {
    const step = Math.max(4, Math.floor(Math.min(chunkBytes, nbytes + 3) / 4) * 4);
    const chunk = new Uint8Array(step);
    let queued = 0;
    for (let at = 0; at < nbytes; at += step) {
      const len = Math.min(step, nbytes - at);
      const part = chunk.subarray(0, len);
      const t0 = performance.now();
      await readExact(handle, stamp.path, part, position + at, what);
      const t1 = performance.now();
      // writeBuffer moves whole 4-byte words: zero the tail of the last one.
      const padded = Math.ceil(len / 4) * 4;
      chunk.fill(0, len, padded);
      device.writeBuffer(dst, at, chunk.subarray(0, padded));
      queued += padded;
      if (queued >= UPLOAD_SYNC_BYTES) {
        await device.sync();
        queued = 0;
      }
      device.profile?.add('read', t1 - t0, len);
      device.profile?.add('upload', performance.now() - t1, padded);
    }
  } finally {
    await handle.close().catch(() => {});
  }
}

/** Reads bytes [position, position + nbytes) of a parsed file into a new Uint8Array. */
export async function readRange(stamp: FileStamp, position: number, nbytes: number, what: string): Promise<Uint8Array> {
  const out = new Uint8Array(nbytes);
  if (nbytes === 0) return out;
  const handle = await reopen(stamp);
  try {
    await readExact(handle, stamp.path, out, position, what);
  } finally {
    await handle.close().catch(() => {});
  }
  return out;
}
