// A Hugging Face tokenizer (tokenizer.json with a byte-level BPE model, plus
// tokenizer_config.json and config.json) as GGUF's tokenizer.ggml.* keys, as
// convert_hf_to_gguf.py writes them for Llama 3 / Qwen2 style vocabularies
// (_set_vocab_gpt2 and gguf-py's SpecialVocab).

import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { FormatError } from '../errors.js';
import { BPE_PRE_HASHES, CHKTXT } from './bpe-pre-hashes.js';
import { Metadata } from './metadata.js';

/** GGUF token types (gguf-py TokenType). */
export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

type Json = Record<string, unknown>;

export interface TokenizerFiles {
  /** tokenizer.json, parsed, and its path (for messages). */
  tokenizer: Json;
  tokenizerPath: string;
  /** tokenizer_config.json, if present. */
  tokenizerConfig?: Json;
  /** config.json (for vocab_size and *_token_id). */
  config: Json;
  /** chat_template.jinja / chat_template.json text, if present beside them. */
  chatTemplateFile?: string;
}

export interface TokenizerOptions {
  /** tokenizer.ggml.pre to write, instead of the one recognised from the pre-tokenizer. */
  pre?: string;
}

/** Pre-tokenizer regular expressions (as tokenizer.json spells them) and llama.cpp's name for each. */
const GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const LLAMA3_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN35_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const GPT4O_REGEX =
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const TEKKEN_REGEX =
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** Pre-tokenizer signatures (its split regexes in order, DIGITS for per-digit splitting) -> tokenizer.ggml.pre. */
export const PRE_TOKENIZERS: readonly [string[], string][] = [
  [[LLAMA3_REGEX], 'llama-bpe'],
  [[QWEN2_REGEX], 'qwen2'],
  [[QWEN35_REGEX], 'qwen35'],
  [[GPT4O_REGEX], 'gpt-4o'],
  [[TEKKEN_REGEX], 'tekken'],
  [[GPT2_REGEX], 'gpt-2'],
  [['DIGITS', GPT2_REGEX], 'smollm'],
];

/** The pre-tokenizer's regexes in order, as a signature (a ByteLevel step with use_regex adds GPT-2's). */
export function preTokenizerSignature(pre: unknown): string[] {
  const out: string[] = [];
  // iterative, in document order (tokenizer.json is checked by hf-schema.ts, but this never recurses either)
  const stack: unknown[] = [pre];
  while (stack.length) {
    const node = stack.pop();
    if (!node || typeof node !== 'object') continue;
    const n = node as Json;
    switch (n.type) {
      case 'Sequence': {
        const list = Array.isArray(n.pretokenizers) ? (n.pretokenizers as unknown[]) : [];
        for (let i = list.length - 1; i >= 0; i--) stack.push(list[i]);
        break;
      }
      case 'Split': {
        const pattern = n.pattern as Json | undefined;
        if (typeof pattern?.Regex === 'string') out.push(pattern.Regex);
        else if (typeof pattern?.String === 'string') out.push(`STRING:${pattern.String}`);
        break;
      }
      case 'Digits':
        out.push(n.individual_digits ? 'DIGITS' : 'DIGIT_RUNS');
        break;
      case 'ByteLevel':
        if (n.use_regex !== false) out.push(GPT2_REGEX);
        break;
      default:
        out.push(typeof n.type === 'string' ? n.type : 'a step without a type');
    }
  }
  return out;
}

/** llama.cpp's tokenizer.ggml.pre for a tokenizer.json pre-tokenizer, or undefined when unknown. */
export function recognisePreTokenizer(pre: unknown): string | undefined {
  const sig = preTokenizerSignature(pre);
  const found = PRE_TOKENIZERS.find(([s]) => s.length === sig.length && s.every((x, i) => x === sig[i]));
  return found?.[1];
}

/** How tokenizer.ggml.pre was chosen: from the check hash (as convert_hf_to_gguf), or from the split regex when the hash is not in its table. */
export interface PreTokenizerChoice {
  pre: string;
  /** sha256 of the token ids of CHKTXT, as convert_hf_to_gguf's get_vocab_base_pre computes it. */
  chkhsh: string;
  via: 'hash' | 'regex';
}

/**
 * convert_hf_to_gguf's get_vocab_base_pre: tokenizer.encode(chktxt) with the
 * model's own Hugging Face tokenizer (special tokens added as its
 * post-processor / tokenizer_config say, as AutoTokenizer does), the sha256 of
 * Python's str() of the ids, looked up in llama.cpp's table. The tokenizer is
 * @lenml/tokenizers (transformers.js's tokenizers, loaded only here).
 *
 * A hash the table lacks (a vocabulary llama.cpp has not listed, e.g. one
 * trained on one's own text, as the demo's) falls back to recognising the
 * pre-tokenizer's split regex, which is what llama.cpp keys its tokenizer on;
 * when neither knows it, the error names the hash and --tokenizer-pre.
 */
export function choosePreTokenizer(files: Pick<TokenizerFiles, 'tokenizer' | 'tokenizerConfig' | 'tokenizerPath'>): PreTokenizerChoice {
  const chkhsh = checkHash(files);
  const known = BPE_PRE_HASHES.get(chkhsh);
  if (known) return { pre: known[0], chkhsh, via: 'hash' };
  const pre = recognisePreTokenizer(files.tokenizer.pre_tokenizer);
  if (pre) return { pre, chkhsh, via: 'regex' };
  throw new FormatError(
    files.tokenizerPath,
    undefined,
    `BPE pre-tokenizer not recognised: its check hash ${chkhsh} is not in llama.cpp's table (convert_hf_to_gguf's get_vocab_base_pre) ` +
      `and its pre-tokenizer (${preTokenizerSignature(files.tokenizer.pre_tokenizer).join(' ; ') || 'none'}) is none wgarray knows; ` +
      `name llama.cpp's pre-tokenizer with --tokenizer-pre NAME (llama-bpe, qwen2, gpt-2, ...)`,
  );
}

type HfTokenizer = { encode(text: string): number[] };
let lenml: { TokenizerLoader: { fromPreTrained(p: { tokenizerJSON: unknown; tokenizerConfig: unknown }): HfTokenizer } } | undefined;

/** sha256 of str(tokenizer.encode(CHKTXT)), Python's list spelling "[1, 2, 3]". */
export function checkHash(files: Pick<TokenizerFiles, 'tokenizer' | 'tokenizerConfig' | 'tokenizerPath'>): string {
  lenml ??= createRequire(import.meta.url)('@lenml/tokenizers');
  let ids: number[];
  try {
    const tok = lenml!.TokenizerLoader.fromPreTrained({ tokenizerJSON: files.tokenizer, tokenizerConfig: files.tokenizerConfig ?? {} });
    ids = tok.encode(CHKTXT);
  } catch (e) {
    throw new FormatError(files.tokenizerPath, undefined, `cannot be loaded to hash convert_hf_to_gguf's check text (${(e as Error).message}); name llama.cpp's pre-tokenizer with --tokenizer-pre NAME`);
  }
  return createHash('sha256').update(`[${ids.join(', ')}]`).digest('hex');
}

function hasByteLevel(root: unknown): boolean {
  const stack: unknown[] = [root];
  while (stack.length) {
    const node = stack.pop();
    if (!node || typeof node !== 'object') continue;
    const n = node as Json;
    if (n.type === 'ByteLevel') return true;
    for (const key of ['pretokenizers', 'decoders', 'processors']) {
      const list = n[key];
      if (Array.isArray(list)) for (const child of list) stack.push(child);
    }
  }
  return false;
}

/** convert_hf_to_gguf's does_token_look_special. */
export function looksSpecial(token: string): boolean {
  return (
    ['<pad>', '<mask>', '<2mass>', '[@BOS@]'].includes(token) ||
    (token.startsWith('<|') && token.endsWith('|>')) ||
    (token.startsWith('<｜') && token.endsWith('｜>')) ||
    (token.startsWith('<unused') && token.endsWith('>'))
  );
}

export interface AddedToken {
  id: number;
  content: string;
  special?: boolean;
  normalized?: boolean;
}

const SPECIAL_KEYS: Record<string, string> = {
  bos: 'tokenizer.ggml.bos_token_id',
  eos: 'tokenizer.ggml.eos_token_id',
  unk: 'tokenizer.ggml.unknown_token_id',
  sep: 'tokenizer.ggml.seperator_token_id',
  pad: 'tokenizer.ggml.padding_token_id',
  mask: 'tokenizer.ggml.mask_token_id',
  eot: 'tokenizer.ggml.eot_token_id',
  eom: 'tokenizer.ggml.eom_token_id',
};

const ADD_KEYS: Record<string, string> = {
  bos: 'tokenizer.ggml.add_bos_token',
  eos: 'tokenizer.ggml.add_eos_token',
  sep: 'tokenizer.ggml.add_sep_token',
};

/**
 * The tokenizer.ggml.* metadata (model "gpt2") of a byte-level BPE tokenizer.
 * `vocabSize` is the model's embedding rows (config.json vocab_size); ids
 * without a token become [PAD<id>] entries of type UNUSED.
 */
export function gpt2TokenizerMetadata(files: TokenizerFiles, vocabSize: number | undefined, options: TokenizerOptions = {}): Metadata {
  const where = files.tokenizerPath;
  const tj = files.tokenizer;
  const model = tj.model as Json | undefined;
  if (!model || typeof model !== 'object') throw new FormatError(where, undefined, 'has no "model" object');
  if (model.type !== 'BPE') {
    throw new FormatError(where, undefined, `has a ${String(model.type)} tokenizer model; wgarray converts BPE tokenizers (Llama 3, Qwen2, Mistral Nemo)`);
  }
  if (!hasByteLevel(tj.pre_tokenizer) && !hasByteLevel(tj.decoder)) {
    const spm = model.byte_fallback ? ' (a SentencePiece-style BPE with byte fallback, as Llama 2 and Mistral 7B use)' : '';
    throw new FormatError(
      where,
      undefined,
      `is a BPE tokenizer without byte-level pre-tokenization${spm}; wgarray converts byte-level BPE vocabularies (Llama 3, Qwen2)`,
    );
  }
  const vocab = model.vocab as Record<string, number> | undefined;
  if (!vocab || typeof vocab !== 'object') throw new FormatError(where, undefined, 'model.vocab is missing');
  const added = ((tj.added_tokens as AddedToken[] | undefined) ?? []).filter((t) => Number.isInteger(t?.id) && typeof t.content === 'string');

  // id -> token over the base vocabulary and the added tokens (which may reuse base ids)
  const byId = new Map<number, string>();
  for (const [token, id] of Object.entries(vocab)) {
    if (!Number.isInteger(id) || id < 0) throw new FormatError(where, undefined, `model.vocab["${token}"] is ${id}, not a token id`);
    byId.set(id, token);
  }
  const addedById = new Map<number, AddedToken>();
  for (const t of added) {
    byId.set(t.id, t.content);
    addedById.set(t.id, t);
  }
  let maxId = -1;
  for (const id of byId.keys()) maxId = Math.max(maxId, id);
  const n = vocabSize ?? maxId + 1;
  if (maxId >= n) {
    throw new FormatError(where, undefined, `has token id ${maxId}, but config.json's vocab_size is ${n}`);
  }

  const tokens: string[] = new Array(n);
  const types = new Int32Array(n);
  const addedContents = new Set(added.map((t) => t.content));
  for (let i = 0; i < n; i++) {
    const token = byId.get(i);
    if (token === undefined) {
      tokens[i] = `[PAD${i}]`;
      types[i] = TOKEN_TYPE.UNUSED;
      continue;
    }
    const a = addedById.get(i);
    if (a || addedContents.has(token)) {
      if (a?.special || looksSpecial(token)) {
        tokens[i] = token;
        types[i] = TOKEN_TYPE.CONTROL;
      } else {
        tokens[i] = token.replaceAll('\u2581', ' ');
        types[i] = TOKEN_TYPE.USER_DEFINED;
      }
    } else {
      tokens[i] = token;
      types[i] = TOKEN_TYPE.NORMAL;
    }
  }

  const pre = options.pre ?? choosePreTokenizer(files).pre;

  const meta = new Metadata();
  meta.string('tokenizer.ggml.model', 'gpt2');
  meta.string('tokenizer.ggml.pre', pre);
  meta.strings('tokenizer.ggml.tokens', tokens);
  meta.i32s('tokenizer.ggml.token_type', types);
  const merges = mergesOf(model.merges, where);
  if (merges.length) meta.strings('tokenizer.ggml.merges', merges);
  specialTokens(meta, files, added, n);
  return meta;
}

function mergesOf(merges: unknown, where: string): string[] {
  if (!Array.isArray(merges) || merges.length === 0) return [];
  if (typeof merges[0] === 'string') return merges as string[];
  if (Array.isArray(merges[0]) && merges[0].length === 2 && typeof merges[0][0] === 'string') {
    // transformers >= 4.45 writes pairs, so that pieces may hold spaces; GGUF keeps "a b" with spaces as U+0120
    const enc = (s: string) => s.replaceAll(' ', '\u0120');
    return (merges as [string, string][]).map(([a, b]) => `${enc(a)} ${enc(b)}`);
  }
  throw new FormatError(where, undefined, 'model.merges is neither a list of "a b" strings nor of [a, b] pairs');
}

function tokenContent(entry: unknown): string | undefined {
  if (typeof entry === 'string') return entry;
  if (entry && typeof entry === 'object' && typeof (entry as Json).content === 'string') return (entry as Json).content as string;
  return undefined;
}

/** Special token ids, add_*_token flags and the chat template, as gguf-py's SpecialVocab finds them. */
export function specialTokens(meta: Metadata, files: TokenizerFiles, added: AddedToken[], nVocab: number): void {
  const types = ['bos', 'eos', 'unk', 'sep', 'pad', 'cls', 'mask'];
  const ids = new Map<string, number>();
  const add = new Map<string, boolean>();
  const setId = (typ: string, id: unknown) => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= nVocab || ids.has(typ)) return;
    ids.set(typ, id);
  };
  const tc: Json | undefined = files.tokenizerConfig ? { ...files.tokenizerConfig } : undefined;
  let bos = tokenContent(tc?.bos_token);
  let eos = tokenContent(tc?.eos_token);
  const cls = tokenContent(tc?.cls_token);
  const sep = tokenContent(tc?.sep_token);
  if (!bos && cls && tc) tc.bos_token = bos = cls;
  if (!eos && sep && tc) tc.eos_token = eos = sep;

  // TemplateProcessing: a special token first in `single` means add_bos, last means add_eos.
  const post = files.tokenizer.post_processor as Json | undefined;
  if (post && typeof post === 'object') {
    const processors = (Array.isArray(post.processors) ? post.processors : [post]) as Json[];
    for (const p of processors) {
      if (p?.type === 'RobertaProcessing') {
        add.set('bos', true).set('eos', true).set('sep', true);
      } else if (p?.type === 'TemplateProcessing') {
        const single = (p.single as Json[] | undefined) ?? [];
        if (single.length > 1) {
          const first = ((single[0].SpecialToken as Json | undefined)?.id as string | undefined) ?? undefined;
          if (first) {
            if (!tc) bos = first;
            else if (first !== bos && first !== cls && !bos) tc.bos_token = bos = first;
            add.set('bos', first === bos || first === cls);
          }
          const last = ((single[single.length - 1].SpecialToken as Json | undefined)?.id as string | undefined) ?? undefined;
          if (last) {
            if (!tc) eos = last;
            add.set('eos', last === eos);
          }
        }
      }
    }
  }

  if (tc) {
    for (const typ of types) {
      const flag = tc[`add_${typ}_token`];
      if (typeof flag === 'boolean') add.set(typ, flag);
      const content = tokenContent(tc[`${typ}_token`]);
      if (content === undefined) continue;
      setId(typ, added.find((t) => t.content === content)?.id);
    }
  }
  for (const typ of types) {
    setId(typ, files.config[`${typ}_token_id`]);
  }

  for (const typ of types) {
    const id = ids.get(typ);
    const key = SPECIAL_KEYS[typ];
    if (id !== undefined && key) meta.u32(key, id);
  }
  for (const typ of types) {
    const flag = add.get(typ);
    const key = ADD_KEYS[typ];
    if (flag !== undefined && key) meta.bool(key, flag);
  }
  const template = tc?.chat_template ?? files.chatTemplateFile;
  if (typeof template === 'string') meta.string('tokenizer.chat_template', template);
}
