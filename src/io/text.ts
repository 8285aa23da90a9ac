// Strings in GGUF and safetensors files are UTF-8: strings going in must be
// well-formed (no lone UTF-16 surrogates), bytes coming out must decode.

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True when `s` encodes to UTF-8 without replacement characters. */
export function isWellFormed(s: string): boolean {
  return !LONE_SURROGATE.test(s);
}

/** A UTF-8 decoder that throws on malformed input instead of substituting U+FFFD. */
export const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
