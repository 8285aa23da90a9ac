// Hugging Face files read as data, not trusted as shapes: every field of
// config.json, tokenizer.json and tokenizer_config.json that the converter
// reads is checked here (type, range, nesting) before it is used, so that any
// JSON ends in a conversion or in one FormatError naming the file and the
// field. Walks over nested pre-tokenizers / decoders / post-processors are
// iterative with a depth limit: no input can exhaust the stack.

import { FormatError, quoteName } from '../errors.js';

type Json = Record<string, unknown>;

/** Deepest pre-tokenizer / decoder / post-processor nesting accepted (real files nest 2 or 3 deep). */
export const MAX_JSON_NESTING = 64;
/** Largest integer hyperparameter accepted (GGUF writes them as u32; llama.cpp reads int32). */
export const MAX_HPARAM = 2 ** 31 - 1;
/** Largest float hyperparameter accepted (it is written as f32). */
const MAX_F32 = 3.4028234663852886e38;

/** A field path for messages: model.merges[3], pre_tokenizer.pretokenizers[0].type. */
function fieldPath(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  const safe = /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? key : JSON.stringify(key).slice(0, 80);
  return parent ? `${parent}.${safe}` : safe;
}

/** A JSON value in a few words, for messages (never the whole value). */
export function describeJson(v: unknown): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${quoteName(v, 40)}`;
  if (typeof v === 'number') return Number.isFinite(v) ? `${v}` : String(v);
  return `${typeof v} ${String(v)}`;
}

function fail(file: string, field: string, got: unknown, expected: string): never {
  throw new FormatError(file, undefined, `${field} is ${describeJson(got)}; expected ${expected}`);
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optObject(file: string, obj: Json, key: string, parent = ''): Json | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) fail(file, fieldPath(parent, key), v, 'an object');
  return v;
}

function optList(file: string, obj: Json, key: string, parent = ''): unknown[] | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) fail(file, fieldPath(parent, key), v, 'a list');
  return v;
}

function optString(file: string, obj: Json, key: string, parent = ''): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') fail(file, fieldPath(parent, key), v, 'a string');
  return v;
}

function optBool(file: string, obj: Json, key: string, parent = ''): boolean | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') fail(file, fieldPath(parent, key), v, 'true or false');
  return v;
}

function optInt(file: string, obj: Json, key: string, min: number, max: number, parent = ''): number | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(file, fieldPath(parent, key), v, `an integer from ${min} to ${max}`);
  return v;
}

/** A float that must be finite, within f32, and in (min, max) or [min, max]. */
function optFloat(file: string, obj: Json, key: string, range: { gt?: number; ge?: number; lt?: number }, parent = ''): number | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  const ok =
    typeof v === 'number' &&
    Number.isFinite(v) &&
    Math.abs(v) <= MAX_F32 &&
    (range.gt === undefined || v > range.gt) &&
    (range.ge === undefined || v >= range.ge) &&
    (range.lt === undefined || v < range.lt);
  if (!ok) {
    const parts = [range.gt !== undefined ? `> ${range.gt}` : '', range.ge !== undefined ? `>= ${range.ge}` : '', range.lt !== undefined ? `< ${range.lt}` : ''].filter(Boolean);
    fail(file, fieldPath(parent, key), v, `a finite number${parts.length ? ` ${parts.join(' and ')}` : ''}`);
  }
  return v;
}

/** Integer hyperparameters the converter may read (under any of their spellings), all written as u32. */
const CONFIG_INTS = [
  'num_hidden_layers', 'n_layers', 'n_layer', 'num_layers',
  'hidden_size', 'n_embd', 'dim',
  'intermediate_size', 'n_inner', 'hidden_dim',
  'num_attention_heads', 'n_head', 'n_heads',
  'num_key_value_heads', 'n_kv_heads',
  'head_dim',
  'max_position_embeddings', 'n_ctx', 'n_positions', 'max_length', 'max_sequence_length',
  'vocab_size',
] as const;

/** Hyperparameters that must be at least 1 when present. */
const POSITIVE = new Set<string>([
  'num_hidden_layers', 'n_layers', 'n_layer', 'num_layers', 'hidden_size', 'n_embd', 'dim', 'intermediate_size', 'n_inner',
  'hidden_dim', 'num_attention_heads', 'n_head', 'n_heads', 'num_key_value_heads', 'n_kv_heads', 'head_dim', 'vocab_size',
]);

function checkConfigObject(file: string, config: Json, parent: string): void {
  const archs = optList(file, config, 'architectures', parent);
  archs?.forEach((a, i) => {
    if (typeof a !== 'string') fail(file, fieldPath(fieldPath(parent, 'architectures'), i), a, 'an architecture name (a string)');
  });
  optString(file, config, 'model_type', parent);
  for (const key of CONFIG_INTS) optInt(file, config, key, POSITIVE.has(key) ? 1 : 0, MAX_HPARAM, parent);
  optFloat(file, config, 'rms_norm_eps', { gt: 0, lt: 1 }, parent);
  optFloat(file, config, 'norm_eps', { gt: 0, lt: 1 }, parent);
  optFloat(file, config, 'rope_theta', { gt: 0 }, parent);
  optFloat(file, config, 'rotary_emb_base', { gt: 0 }, parent);
  optBool(file, config, 'tie_word_embeddings', parent);
  for (const key of ['rope_scaling', 'rope_parameters']) {
    const rope = optObject(file, config, key, parent);
    if (!rope) continue;
    const at = fieldPath(parent, key);
    optString(file, rope, 'rope_type', at);
    optString(file, rope, 'type', at);
    optFloat(file, rope, 'rope_theta', { gt: 0 }, at);
    optFloat(file, rope, 'factor', { gt: 0 }, at);
    const low = optFloat(file, rope, 'low_freq_factor', { gt: 0 }, at);
    const high = optFloat(file, rope, 'high_freq_factor', { gt: 0 }, at);
    // llama3 scaling divides by high - low
    if (low !== undefined && high !== undefined && !(high > low)) {
      fail(file, fieldPath(at, 'high_freq_factor'), high, `a number above low_freq_factor (${low})`);
    }
    optInt(file, rope, 'original_max_position_embeddings', 1, MAX_HPARAM, at);
  }
  // special token ids: an integer or a list of integers (a list is not used for the GGUF ids)
  for (const typ of ['bos', 'eos', 'unk', 'sep', 'pad', 'cls', 'mask']) {
    const key = `${typ}_token_id`;
    const v = config[key];
    if (v === undefined || v === null) continue;
    const ok = (x: unknown) => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= MAX_HPARAM;
    if (!(ok(v) || (Array.isArray(v) && v.every(ok)))) fail(file, fieldPath(parent, key), v, 'a token id (an integer >= 0) or a list of them');
  }
}

/**
 * Checks config.json: every hyperparameter the converter reads is of its type
 * and in range (integers 0..2^31-1, counts >= 1, eps in (0, 1), rope_theta > 0,
 * rope scaling factors > 0 with high_freq_factor > low_freq_factor).
 */
export function checkConfigJson(config: Json, file: string): void {
  const text = optObject(file, config, 'text_config');
  checkConfigObject(file, config, '');
  if (text) checkConfigObject(file, text, 'text_config');
}

/**
 * The hyperparameters against the tensors present: a config claiming more
 * layers than the weights hold is refused before anything is sized by it.
 */
export function checkLayersAgainstTensors(file: string, nLayer: number, tensorNames: readonly string[]): void {
  let layers = 0;
  for (const name of tensorNames) {
    const m = /(?:^|\.)(?:layers|h|blocks)\.(\d+)\./.exec(name);
    if (m) layers = Math.max(layers, Number(m[1]) + 1);
  }
  if (nLayer > layers) {
    throw new FormatError(
      file,
      undefined,
      `num_hidden_layers is ${nLayer}, but the weights hold ${layers} layer${layers === 1 ? '' : 's'}${layers ? ` (model.layers.0 to model.layers.${layers - 1})` : ''}`,
    );
  }
}

/** A token entry of tokenizer_config.json: a string, or an object whose content is a string. */
function checkTokenEntry(file: string, obj: Json, key: string): void {
  const v = obj[key];
  if (v === undefined || v === null || typeof v === 'string') return;
  if (isObject(v) && typeof v.content === 'string') return;
  fail(file, key, v, 'a token (a string, or an object with a "content" string)');
}

/** Checks tokenizer_config.json's fields the converter reads. */
export function checkTokenizerConfigJson(tc: Json, file: string): void {
  for (const typ of ['bos', 'eos', 'unk', 'sep', 'pad', 'cls', 'mask']) {
    checkTokenEntry(file, tc, `${typ}_token`);
    optBool(file, tc, `add_${typ}_token`);
  }
  optBool(file, tc, 'add_prefix_space');
  const template = tc.chat_template;
  if (template !== undefined && template !== null && typeof template !== 'string' && !Array.isArray(template)) {
    fail(file, 'chat_template', template, 'a string (or a list of named templates)');
  }
  const decoder = optObject(file, tc, 'added_tokens_decoder');
  if (decoder) {
    for (const [id, data] of Object.entries(decoder)) {
      const at = fieldPath('added_tokens_decoder', id);
      if (!/^\d+$/.test(id) || Number(id) > MAX_HPARAM) fail(file, at, id, 'keyed by a token id');
      if (!isObject(data)) fail(file, at, data, 'an object with a "content" string');
      if (typeof data.content !== 'string') fail(file, fieldPath(at, 'content'), data.content, 'a string');
      optBool(file, data, 'special', at);
    }
  }
}

/** Child lists of a pipeline node (Sequence pre-tokenizers, decoders, post-processors). */
const CHILD_LISTS = ['pretokenizers', 'decoders', 'processors'] as const;

/**
 * Checks one of tokenizer.json's pipeline trees (pre_tokenizer, decoder,
 * post_processor), iteratively: each node an object with a string "type",
 * child lists lists of objects, at most MAX_JSON_NESTING deep, and the fields
 * the converter reads of each node type.
 */
function checkPipeline(file: string, root: unknown, rootField: string): void {
  if (root === undefined || root === null) return;
  const stack: { node: unknown; field: string; depth: number }[] = [{ node: root, field: rootField, depth: 1 }];
  while (stack.length) {
    const { node, field, depth } = stack.pop()!;
    if (depth > MAX_JSON_NESTING) throw new FormatError(file, undefined, `${field} nests more than ${MAX_JSON_NESTING} levels deep`);
    if (!isObject(node)) fail(file, field, node, 'an object with a "type"');
    if (typeof node.type !== 'string') fail(file, fieldPath(field, 'type'), node.type, 'a string naming the step');
    for (const key of CHILD_LISTS) {
      const list = optList(file, node, key, field);
      list?.forEach((child, i) => stack.push({ node: child, field: fieldPath(fieldPath(field, key), i), depth: depth + 1 }));
    }
    switch (node.type) {
      case 'Split': {
        const pattern = optObject(file, node, 'pattern', field);
        if (pattern) {
          optString(file, pattern, 'Regex', fieldPath(field, 'pattern'));
          optString(file, pattern, 'String', fieldPath(field, 'pattern'));
        }
        break;
      }
      case 'Digits':
        optBool(file, node, 'individual_digits', field);
        break;
      case 'ByteLevel':
        optBool(file, node, 'use_regex', field);
        break;
      case 'TemplateProcessing': {
        const single = optList(file, node, 'single', field);
        single?.forEach((piece, i) => {
          const at = fieldPath(fieldPath(field, 'single'), i);
          if (!isObject(piece)) fail(file, at, piece, 'an object ({"SpecialToken": ...} or {"Sequence": ...})');
          const special = piece.SpecialToken;
          if (special !== undefined) {
            if (!isObject(special)) fail(file, fieldPath(at, 'SpecialToken'), special, 'an object with an "id" string');
            optString(file, special, 'id', fieldPath(at, 'SpecialToken'));
          }
        });
        break;
      }
    }
  }
}

/** Checks tokenizer.json's fields the converter reads (model, added_tokens, pre_tokenizer, decoder, post_processor). */
export function checkTokenizerJson(tj: Json, file: string): void {
  const model = optObject(file, tj, 'model');
  if (model) {
    optString(file, model, 'type', 'model');
    optBool(file, model, 'byte_fallback', 'model');
    const vocab = model.vocab;
    if (vocab !== undefined && vocab !== null) {
      if (isObject(vocab)) {
        for (const [token, id] of Object.entries(vocab)) {
          if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > MAX_HPARAM) {
            fail(file, `model.vocab[${quoteName(token)}]`, id, 'a token id (an integer from 0 to 2^31-1)');
          }
        }
      } else if (!Array.isArray(vocab)) fail(file, 'model.vocab', vocab, 'an object of token -> id');
    }
    const merges = optList(file, model, 'merges', 'model');
    if (merges && merges.length) {
      const strings = typeof merges[0] === 'string';
      merges.forEach((m, i) => {
        if (strings) {
          if (typeof m !== 'string') fail(file, `model.merges[${i}]`, m, 'a merge "a b" like the first entry');
        } else if (!Array.isArray(m) || m.length !== 2 || typeof m[0] !== 'string' || typeof m[1] !== 'string') {
          fail(file, `model.merges[${i}]`, m, 'a merge: an ["a", "b"] pair of strings (or every entry an "a b" string)');
        }
      });
    }
  }
  const added = optList(file, tj, 'added_tokens');
  added?.forEach((t, i) => {
    const at = `added_tokens[${i}]`;
    if (!isObject(t)) fail(file, at, t, 'an object with "id" and "content"');
    optInt(file, t, 'id', 0, MAX_HPARAM, at);
    if (t.id === undefined || t.id === null) fail(file, `${at}.id`, t.id, 'a token id');
    if (typeof t.content !== 'string') fail(file, `${at}.content`, t.content, 'a string');
    optBool(file, t, 'special', at);
    optBool(file, t, 'normalized', at);
  });
  checkPipeline(file, tj.pre_tokenizer, 'pre_tokenizer');
  checkPipeline(file, tj.decoder, 'decoder');
  checkPipeline(file, tj.post_processor, 'post_processor');
}
