// One error family for the whole package: every failure a caller can act on is a
// WgArrayError subclass with a stable `code`, and its message names the thing
// (array, tensor, file, offset) and what was expected.

export type ErrorCode =
  | 'NO_ADAPTER'
  | 'DEVICE_LOST'
  | 'GPU_ERROR'
  | 'DEVICE_CLOSED'
  | 'SHAPE'
  | 'DTYPE'
  | 'DISPOSED'
  | 'LIMIT'
  | 'FORMAT'
  | 'FILE'
  | 'ARGUMENT'
  | 'ABORTED';

export class WgArrayError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** No WebGPU adapter, a lost device, or a GPU validation / out-of-memory error. */
export class DeviceError extends WgArrayError {}

/** A shape that does not fit the data, the op, or a block size. */
export class ShapeError extends WgArrayError {
  constructor(message: string) {
    super('SHAPE', message);
  }
}

/** An unknown dtype, or an op asked of a dtype that cannot do it. */
export class DTypeError extends WgArrayError {
  constructor(message: string) {
    super('DTYPE', message);
  }
}

/** Use of an array after dispose(). */
export class DisposedError extends WgArrayError {
  constructor(message: string) {
    super('DISPOSED', message);
  }
}

/** A size over one of the device's limits. */
export class LimitError extends WgArrayError {
  constructor(message: string) {
    super('LIMIT', message);
  }
}

/** A bad argument that is neither a shape nor a dtype (a bad option value, say). */
export class ArgumentError extends WgArrayError {
  constructor(message: string) {
    super('ARGUMENT', message);
  }
}

/** A file whose bytes break its format: names the file and the byte offset. */
export class FormatError extends WgArrayError {
  readonly file: string;
  readonly offset: number | undefined;
  constructor(file: string, offset: number | bigint | undefined, message: string) {
    const at = offset === undefined ? '' : ` at byte ${offset}`;
    super('FORMAT', `${file}${at}: ${message}`);
    this.file = file;
    this.offset = offset === undefined ? undefined : Number(offset);
  }
}

/** A file-system failure (unwritable target, disk full, missing file), with the path. */
export class FileError extends WgArrayError {
  readonly file: string;
  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super('FILE', `${file}: ${message}`, options);
    this.file = file;
  }
}

/** Work stopped on request (an AbortSignal, Ctrl-C). */
export class AbortError extends WgArrayError {
  constructor(message = 'aborted') {
    super('ABORTED', message);
  }
}

/** Longest name (from a file) shown in a message before it is cut. */
const NAME_SHOWN = 96;

/**
 * A name read from a file (tensor, key, token), quoted for a one-line message:
 * control characters and terminal escapes written as \n, \x1b, ..., and a
 * long name cut with its length, so no file can break or colour a message.
 */
export function quoteName(name: string, max = NAME_SHOWN): string {
  const cut = name.length > max ? name.slice(0, max) : name;
  const escaped = escapeControls(cut).replaceAll("'", "\\'");
  return `'${escaped}'${name.length > max ? `… (${name.length} characters)` : ''}`;
}

/** Control characters (C0, DEL, C1, line and paragraph separators) as escapes. */
export function escapeControls(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (ch) => {
    if (ch === '\n') return '\\n';
    if (ch === '\r') return '\\r';
    if (ch === '\t') return '\\t';
    const code = ch.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** Longest error line the command line prints. */
const LINE_SHOWN = 2000;

/** A message as one printable line (the command line's last guard; names are quoted where they are put in). */
export function oneLine(message: string, max = LINE_SHOWN): string {
  const s = escapeControls(message);
  return s.length > max ? `${s.slice(0, max)}… (${s.length} characters)` : s;
}
