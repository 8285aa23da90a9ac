// GGUF metadata as the converter builds it: an ordered map from key to a
// typed value (io's GGUFValue). llama.cpp reads keys with fixed types (u32
// token ids, f32 epsilon, i32 token_type array), so every entry is typed
// explicitly rather than inferred.

import { gguf, GGUFValue } from '../io/gguf/metadata.js';

/** Metadata in the order keys were first set. */
export class Metadata {
  readonly entries = new Map<string, GGUFValue>();

  set(key: string, value: GGUFValue): this {
    this.entries.set(key, value);
    return this;
  }

  u32(key: string, value: number): this {
    return this.set(key, gguf.u32(value));
  }

  f32(key: string, value: number): this {
    return this.set(key, gguf.f32(value));
  }

  bool(key: string, value: boolean): this {
    return this.set(key, gguf.bool(value));
  }

  string(key: string, value: string): this {
    return this.set(key, gguf.string(value));
  }

  strings(key: string, value: readonly string[]): this {
    return this.set(key, gguf.array('string', value));
  }

  i32s(key: string, value: ArrayLike<number>): this {
    return this.set(key, gguf.array('i32', value));
  }

  f32s(key: string, value: ArrayLike<number>): this {
    return this.set(key, gguf.array('f32', value));
  }

  get(key: string): GGUFValue | undefined {
    return this.entries.get(key);
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  delete(key: string): boolean {
    return this.entries.delete(key);
  }

  /** Adds `other`'s entries (later keys win, first position kept). */
  merge(other: Metadata | Map<string, GGUFValue> | Record<string, GGUFValue>): this {
    const entries = other instanceof Metadata ? other.entries : other instanceof Map ? other : new Map(Object.entries(other));
    for (const [k, v] of entries) this.entries.set(k, v);
    return this;
  }
}
