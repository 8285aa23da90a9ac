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
