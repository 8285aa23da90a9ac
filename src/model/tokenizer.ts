// Text -> token ids with a GGUF's own vocabulary (tokenizer.ggml.*), as
// llama.cpp's llama_tokenize does it (src/llama-vocab.cpp):
//   - 'llama' (SentencePiece): spaces become U+2581, a space is prefixed
//     after a special token or at the start (add_space_prefix), then
//     symbol pairs merge highest score first (leftmost on ties), and a
//     symbol that is no token falls back to its bytes (<0xXX>);
//   - 'gpt2' (byte-level BPE): the pre-tokenizer named by tokenizer.ggml.pre
//     splits the text into words, each word's UTF-8 bytes become GPT-2's
//     printable characters, then pairs merge lowest merge rank first
//     (leftmost on ties); with ignore_merges (llama-bpe) a word that is
//     itself a token is taken whole.
// Special tokens are cut out of the text first, longest first: user-defined
// ones always, control and unknown ones only with parseSpecial.

import { ArgumentError, FormatError } from '../errors.js';
import type { GGUFPlainValue } from '../io/gguf/metadata.js';
import { bytesToUnicode } from '../convert/bpe.js';

/** GGUF token types (llama_token_type). */
const TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

// llama.cpp's whitespace set (unicode-data.cpp unicode_set_whitespace): JavaScript's \s
// differs (it has U+FEFF and lacks U+0085), so the patterns spell it out.
const WS = '\\t-\\r \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000';

/** A llama.cpp regex (in the form llama-vocab.cpp writes it) as a JavaScript global regex with llama.cpp's \s. */
function splitRegex(source: string): RegExp {
  const js = source.replaceAll('\\s', `[${WS}]`).replaceAll('\\S', `[^${WS}]`).replaceAll(`[^[${WS}]`, `[^${WS}`);
  return new RegExp(js, 'gu');
}

interface PreTokenizer {
  regexes: RegExp[];
  ignoreMerges: boolean;
}

const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const LLAMA3 = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2 = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** tokenizer.ggml.pre -> llama.cpp's split regexes and flags (llama_vocab::impl::load, llm_tokenizer_bpe). */
const PRE_TOKENIZERS: Record<string, () => PreTokenizer> = {};
for (const name of ['llama3', 'llama-v3', 'llama-bpe', 'falcon3', 'pixtral']) {
  PRE_TOKENIZERS[name] = () => ({ regexes: [splitRegex(LLAMA3)], ignoreMerges: true });
}
// smaug-bpe: llama3's split, but merges applied to every word (Llama 3's first tokenizer.json release hashes to it)
PRE_TOKENIZERS['smaug-bpe'] = () => ({ regexes: [splitRegex(LLAMA3)], ignoreMerges: false });
for (const name of ['qwen2', 'deepseek-r1-qwen']) {
  PRE_TOKENIZERS[name] = () => ({ regexes: [splitRegex(QWEN2)], ignoreMerges: false });
}
for (const name of ['gpt-2', 'phi-2']) {
  PRE_TOKENIZERS[name] = () => ({ regexes: [splitRegex(GPT2)], ignoreMerges: false });
}

/** The pre-tokenizer names this tokenizer implements (others are a typed error). */
export const SUPPORTED_PRE_TOKENIZERS: readonly string[] = Object.keys(PRE_TOKENIZERS);

export interface TokenizeOptions {
  /** Add BOS (and EOS) as the vocabulary asks (llama_tokenize's add_special). Default false, as node-llama-cpp's model.tokenize. */
  addSpecial?: boolean;
  /** Turn control tokens written in the text (e.g. "<|begin_of_text|>") into their ids (parse_special). Default false. */
  parseSpecial?: boolean;
}

/** A binary heap ordered by `before` (true when a comes out first). */
class Heap<T> {
  private readonly items: T[] = [];
  constructor(private readonly before: (a: T, b: T) => boolean) {}
  get size(): number {
    return this.items.length;
  }
  push(x: T): void {
    const a = this.items;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }
  pop(): T {
    const a = this.items;
    const top = a[0];
    const last = a.pop()!;
    if (a.length) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.before(a[l], a[m])) m = l;
        if (r < a.length && this.before(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

interface Symbol {
  text: string;
  prev: number;
  next: number;
}

type Fragment = string | number;

const utf8 = new TextEncoder();

function requireArray(meta: Record<string, GGUFPlainValue>, key: string, file: string): ArrayLike<unknown> {
  const v = meta[key];
  if (!Array.isArray(v) && !ArrayBuffer.isView(v)) throw new FormatError(file, undefined, `metadata ${key} is missing or not an array; the tokenizer needs it`);
  return v as ArrayLike<unknown>;
}

function optionalId(meta: Record<string, GGUFPlainValue>, key: string): number | undefined {
  const v = meta[key];
  return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined;
}

export class Tokenizer {
  readonly model: 'llama' | 'gpt2';
  readonly pre: string;
  readonly vocabSize: number;
  readonly bos: number | undefined;
  readonly eos: number | undefined;
  /** Whether llama.cpp adds BOS with add_special. */
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly tokens: readonly string[];
  private readonly ids = new Map<string, number>();
  private readonly types: ArrayLike<number>;
  private readonly scores: ArrayLike<number> | undefined;
  private readonly ranks = new Map<string, number>();
  private readonly preTokenizer: PreTokenizer | undefined;
  private readonly addSpacePrefix: boolean;
  private readonly byteChars = bytesToUnicode();
  /** Special tokens' ids by text length, longest first (cache_special_tokens). */
  private readonly specials: number[];

  /** A tokenizer from a GGUF's metadata (`file` names it in errors). */
  constructor(meta: Record<string, GGUFPlainValue>, file = 'the GGUF') {
    const model = meta['tokenizer.ggml.model'];
    if (model !== 'llama' && model !== 'gpt2') {
      throw new FormatError(file, undefined, `tokenizer.ggml.model is ${JSON.stringify(model)}; wgarray tokenizes 'llama' (SentencePiece) and 'gpt2' (byte-level BPE) vocabularies`);
    }
    this.model = model;
    this.tokens = Array.from(requireArray(meta, 'tokenizer.ggml.tokens', file), String);
    this.vocabSize = this.tokens.length;
    // later duplicates win, as llama.cpp's token_to_id map
    this.tokens.forEach((t, i) => this.ids.set(t, i));
    const types = meta['tokenizer.ggml.token_type'];
    this.types = ArrayBuffer.isView(types) ? (types as unknown as ArrayLike<number>) : new Int32Array(this.vocabSize).fill(TYPE.NORMAL);
    this.bos = optionalId(meta, 'tokenizer.ggml.bos_token_id');
    this.eos = optionalId(meta, 'tokenizer.ggml.eos_token_id');
    const pre = meta['tokenizer.ggml.pre'];
    this.pre = typeof pre === 'string' ? pre : 'default';
    if (model === 'llama') {
      const scores = meta['tokenizer.ggml.scores'];
      this.scores = ArrayBuffer.isView(scores) ? (scores as unknown as ArrayLike<number>) : undefined;
      this.addBos = true;
      this.addEos = false;
      this.addSpacePrefix = true;
    } else {
      const make = PRE_TOKENIZERS[this.pre];
      if (!make) {
        throw new FormatError(file, undefined, `tokenizer.ggml.pre is '${this.pre}'; wgarray's tokenizer knows ${SUPPORTED_PRE_TOKENIZERS.join(', ')}`);
      }
      this.preTokenizer = make();
      this.addBos = PRE_TOKENIZERS[this.pre] === PRE_TOKENIZERS['llama-bpe'];
      this.addEos = false;
      this.addSpacePrefix = false;
      const merges = requireArray(meta, 'tokenizer.ggml.merges', file);
      for (let i = 0; i < merges.length; i++) {
        const m = String(merges[i]);
        const at = m.indexOf(' ', 1);
        if (at < 0) throw new FormatError(file, undefined, `tokenizer.ggml.merges[${i}] ${JSON.stringify(m)} is not two tokens separated by a space`);
        this.ranks.set(`${m.slice(0, at)}\u0000${m.slice(at + 1)}`, i);
      }
    }
    const addBos = meta['tokenizer.ggml.add_bos_token'];
    if (typeof addBos === 'boolean') this.addBos = addBos;
    const addEos = meta['tokenizer.ggml.add_eos_token'];
    if (typeof addEos === 'boolean') this.addEos = addEos;
    const addPrefix = meta['tokenizer.ggml.add_space_prefix'];
    if (typeof addPrefix === 'boolean' && model === 'llama') this.addSpacePrefix = addPrefix;
    this.specials = [];
    for (let id = 0; id < this.vocabSize; id++) {
      const t = this.types[id];
      if (t === TYPE.CONTROL || t === TYPE.USER_DEFINED || t === TYPE.UNKNOWN) this.specials.push(id);
    }
    this.specials.sort((a, b) => utf8.encode(this.tokens[b]).length - utf8.encode(this.tokens[a]).length);
  }

  /** Token ids of `text` (no BOS unless addSpecial), as llama.cpp's llama_tokenize. */
  encode(text: string, options: TokenizeOptions = {}): number[] {
    const addSpecial = options.addSpecial ?? false;
    const out: number[] = [];
    const fragments = text === '' ? [] : this.partition(wellFormed(text), options.parseSpecial ?? false);
    if (addSpecial && this.addBos) {
      if (this.bos === undefined) throw new ArgumentError('the vocabulary asks for a BOS token but has no tokenizer.ggml.bos_token_id');
      out.push(this.bos);
    }
    let prevSpecial = true;
    for (const f of fragments) {
      if (typeof f === 'number') {
        out.push(f);
        prevSpecial = true;
        continue;
      }
      if (this.model === 'llama') {
        const s = (this.addSpacePrefix && prevSpecial ? ' ' : '') + f;
        this.encodeSentencePiece(s.replaceAll(' ', '\u2581'), out);
      } else {
        for (const word of this.splitWords(f)) this.encodeBpeWord(word, out);
      }
      prevSpecial = false;
    }
    if (addSpecial && this.addEos) {
      if (this.eos === undefined) throw new ArgumentError('the vocabulary asks for an EOS token but has no tokenizer.ggml.eos_token_id');
      out.push(this.eos);
    }
    return out;
  }

  /** The text of token ids (byte tokens and GPT-2 byte characters decoded; special tokens as written). */
  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    const u2b = new Map(this.byteChars.map((c, b) => [c, b]));
    for (const id of ids) {
      const t = this.tokens[id] ?? '';
      if (this.model === 'llama') {
        const m = this.types[id] === TYPE.BYTE ? /^<0x([0-9A-Fa-f]{2})>$/.exec(t) : null;
        if (m) bytes.push(parseInt(m[1], 16));
        else bytes.push(...utf8.encode(t.replaceAll('\u2581', ' ')));
      } else if (this.types[id] === TYPE.NORMAL) {
        for (const ch of t) {
          const b = u2b.get(ch);
          if (b === undefined) bytes.push(...utf8.encode(ch));
          else bytes.push(b);
        }
      } else bytes.push(...utf8.encode(t));
    }
    return new TextDecoder().decode(new Uint8Array(bytes));
  }

  /** Cuts special tokens out of the text, longest first (tokenizer_st_partition; lstrip/rstrip attributes not modelled). */
  private partition(text: string, parseSpecial: boolean): Fragment[] {
    let fragments: Fragment[] = [text];
    for (const id of this.specials) {
      const t = this.types[id];
      if (!parseSpecial && (t === TYPE.CONTROL || t === TYPE.UNKNOWN)) continue;
      const needle = this.tokens[id];
      if (needle === '') continue;
      const next: Fragment[] = [];
      for (const f of fragments) {
        if (typeof f === 'number') {
          next.push(f);
          continue;
        }
        let from = 0;
        for (;;) {
          const at = f.indexOf(needle, from);
          if (at < 0) break;
          if (at > from) next.push(f.slice(from, at));
          next.push(id);
          from = at + needle.length;
        }
        if (from < f.length) next.push(f.slice(from));
      }
      fragments = next;
    }
    return fragments;
  }

  /** llm_tokenizer_spm_session::tokenize on one fragment (whitespace already escaped). */
  private encodeSentencePiece(text: string, out: number[]): void {
    const symbols = toSymbols(text);
    if (symbols.length === 0) return;
    interface Bigram { left: number; right: number; score: number; size: number }
    const queue = new Heap<Bigram>((a, b) => a.score > b.score || (a.score === b.score && a.left < b.left));
    const tryAdd = (left: number, right: number) => {
      if (left === -1 || right === -1) return;
      const s = symbols[left].text + symbols[right].text;
      const id = this.ids.get(s);
      if (id === undefined) return;
      queue.push({ left, right, score: this.scores ? this.scores[id] : 0, size: s.length });
    };
    for (let i = 1; i < symbols.length; i++) tryAdd(i - 1, i);
    while (queue.size) {
      const b = queue.pop();
      const l = symbols[b.left];
      const r = symbols[b.right];
      if (l.text === '' || r.text === '' || l.text.length + r.text.length !== b.size) continue;
      l.text += r.text;
      r.text = '';
      l.next = r.next;
      if (r.next >= 0) symbols[r.next].prev = b.left;
      tryAdd(l.prev, b.left);
      tryAdd(b.left, l.next);
    }
    // every merge makes a token, so a final symbol is a token or an unmerged character: its bytes
    // (llama.cpp's resegment never finds a recorded merge for one)
    for (let i = 0; i !== -1; i = symbols[i].next) {
      const id = this.ids.get(symbols[i].text);
      if (id !== undefined) out.push(id);
      else for (const byte of utf8.encode(symbols[i].text)) out.push(this.byteToken(byte));
    }
  }

  private byteToken(byte: number): number {
    const hex = `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`;
    const id = this.ids.get(hex) ?? this.ids.get(String.fromCharCode(byte));
    if (id === undefined) throw new ArgumentError(`the vocabulary has no token for byte 0x${byte.toString(16).padStart(2, '0')} (neither ${hex} nor the byte itself)`);
    return id;
  }

  /** unicode_regex_split: each regex splits every word so far into its matches and the text between them; then GPT-2 byte characters. */
  private splitWords(text: string): string[] {
    let words = [text];
    for (const re of this.preTokenizer!.regexes) {
      const next: string[] = [];
      for (const w of words) {
        let last = 0;
        for (const m of w.matchAll(re)) {
          if (m.index! > last) next.push(w.slice(last, m.index));
          if (m[0].length) next.push(m[0]);
          last = m.index! + m[0].length;
        }
        if (last < w.length) next.push(w.slice(last));
      }
      words = next;
    }
    return words.map((w) => Array.from(utf8.encode(w), (b) => this.byteChars[b]).join(''));
  }

  /** llm_tokenizer_bpe_session::tokenize on one (byte-encoded) word. */
  private encodeBpeWord(word: string, out: number[]): void {
    if (this.preTokenizer!.ignoreMerges) {
      const id = this.ids.get(word);
      if (id !== undefined) {
        out.push(id);
        return;
      }
    }
    const symbols = toSymbols(word);
    interface Bigram { left: number; right: number; rank: number; text: string }
    const queue = new Heap<Bigram>((a, b) => a.rank < b.rank || (a.rank === b.rank && a.left < b.left));
    const add = (left: number, right: number) => {
      if (left === -1 || right === -1) return;
      const rank = this.ranks.get(`${symbols[left].text}\u0000${symbols[right].text}`);
      if (rank === undefined) return;
      queue.push({ left, right, rank, text: symbols[left].text + symbols[right].text });
    };
    for (let i = 1; i < symbols.length; i++) add(i - 1, i);
    while (queue.size) {
      const b = queue.pop();
      const l = symbols[b.left];
      const r = symbols[b.right];
      if (l.text === '' || r.text === '' || l.text + r.text !== b.text) continue;
      l.text += r.text;
      r.text = '';
      l.next = r.next;
      if (r.next >= 0) symbols[r.next].prev = b.left;
      add(l.prev, b.left);
      add(b.left, l.next);
    }
    for (const s of symbols) {
      if (s.text === '') continue;
      const id = this.ids.get(s.text);
      if (id !== undefined) {
        out.push(id);
        continue;
      }
      // llama.cpp looks each UTF-8 byte of the unknown piece up as a one-byte token
      for (const byte of utf8.encode(s.text)) {
        const b = byte < 0x80 ? this.ids.get(String.fromCharCode(byte)) : undefined;
        if (b !== undefined) out.push(b);
      }
    }
  }
}

/** One symbol per code point, chained (llm_symbol). */
function toSymbols(s: string): Symbol[] {
  const chars = Array.from(s);
  return chars.map((ch, i) => ({ text: ch, prev: i - 1, next: i + 1 < chars.length ? i + 1 : -1 }));
}

/** Lone surrogates become U+FFFD, as the UTF-8 text llama.cpp receives has them. */
function wellFormed(s: string): string {
  return s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}
