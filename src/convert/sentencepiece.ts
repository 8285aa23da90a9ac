// SentencePiece tokenizers (tokenizer.model, as Llama 2 and Mistral 7B ship
// them) as GGUF's tokenizer.ggml.* keys with model "llama", as
// convert_hf_to_gguf.py's _set_vocab_sentencepiece writes them: pieces,
// scores and types from the model's protobuf, added_tokens.json and
// tokenizer_config.json's added_tokens_decoder on top, [PAD<id>] up to the
// embedding's rows.

import { FormatError } from '../errors.js';
import { Metadata } from './metadata.js';
import { looksSpecial, specialTokens, TOKEN_TYPE, type TokenizerFiles } from './tokenizer.js';

/** sentencepiece_model.proto's SentencePiece.Type (the same numbers as GGUF's token types). */
export const PIECE_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export interface Piece {
  piece: string;
  score: number;
  type: number;
}

export interface SentencePieceModel {
  pieces: Piece[];
  /** NormalizerSpec.add_dummy_prefix (default true). */
  addDummyPrefix: boolean;
}

class ProtoReader {
  pos = 0;
  private readonly dv: DataView;
  constructor(
    readonly buf: Uint8Array,
    readonly file: string,
    readonly end = buf.length,
    start = 0,
  ) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = start;
  }

  fail(msg: string): never {
    throw new FormatError(this.file, this.pos, `not a SentencePiece model: ${msg}`);
  }

  varint(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('a varint runs past the end');
      const b = this.buf[this.pos++];
      if (shift < 53) result += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) return result;
    }
    return this.fail('a varint is longer than 10 bytes');
  }

  /** Reads a field key: [field number, wire type]. */
  key(): [number, number] {
    const k = this.varint();
    return [Math.floor(k / 8), k % 8];
  }

  bytes(): [number, number] {
    const n = this.varint();
    if (this.pos + n > this.end) this.fail(`a field of ${n} bytes runs past the end`);
    const start = this.pos;
    this.pos += n;
    return [start, start + n];
  }

  float(): number {
    if (this.pos + 4 > this.end) this.fail('a float runs past the end');
    const v = this.dv.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else this.fail(`wire type ${wire}`);
    if (this.pos > this.end) this.fail('a field runs past the end');
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses tokenizer.model (a sentencepiece ModelProto): its pieces and add_dummy_prefix. */
export function parseSentencePieceModel(buf: Uint8Array, file: string): SentencePieceModel {
  const r = new ProtoReader(buf, file);
  const pieces: Piece[] = [];
  let addDummyPrefix = true;
  while (r.pos < r.end) {
    const [field, wire] = r.key();
    if (field === 1 && wire === 2) {
      const [start, end] = r.bytes();
      const p = new ProtoReader(buf, file, end, start);
      const piece: Piece = { piece: '', score: 0, type: PIECE_TYPE.NORMAL };
      while (p.pos < p.end) {
        const [f, w] = p.key();
        if (f === 1 && w === 2) {
          const [a, b] = p.bytes();
          try {
            piece.piece = utf8.decode(buf.subarray(a, b));
          } catch {
            p.fail(`piece ${pieces.length} is not UTF-8`);
          }
        } else if (f === 2 && w === 5) piece.score = p.float();
        else if (f === 3 && w === 0) piece.type = p.varint();
        else p.skip(w);
      }
      pieces.push(piece);
    } else if (field === 3 && wire === 2) {
      // NormalizerSpec: add_dummy_prefix is field 3
      const [start, end] = r.bytes();
      const n = new ProtoReader(buf, file, end, start);
      while (n.pos < n.end) {
        const [f, w] = n.key();
        if (f === 3 && w === 0) addDummyPrefix = n.varint() !== 0;
        else n.skip(w);
      }
    } else r.skip(wire);
  }
  if (pieces.length === 0) r.fail('it has no pieces');
  return { pieces, addDummyPrefix };
}

/** Writes a minimal ModelProto (pieces and add_dummy_prefix): for test and demo tokenizers. */
export function encodeSentencePieceModel(model: SentencePieceModel): Uint8Array {
  const out: number[] = [];
  const varint = (v: number, into: number[]) => {
    while (v >= 0x80) {
      into.push((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    into.push(v);
  };
  const enc = new TextEncoder();
  for (const p of model.pieces) {
    const body: number[] = [];
    const text = enc.encode(p.piece);
    varint((1 << 3) | 2, body);
    varint(text.length, body);
    body.push(...text);
    varint((2 << 3) | 5, body);
    const f = new Uint8Array(new Float32Array([p.score]).buffer);
    body.push(...f);
    varint((3 << 3) | 0, body);
    varint(p.type, body);
    varint((1 << 3) | 2, out);
    varint(body.length, out);
    out.push(...body);
  }
  const norm: number[] = [];
  varint((3 << 3) | 0, norm);
  varint(model.addDummyPrefix ? 1 : 0, norm);
  varint((3 << 3) | 2, out);
  varint(norm.length, out);
  out.push(...norm);
  return new Uint8Array(out);
}

export interface SentencePieceFiles extends Omit<TokenizerFiles, 'tokenizer' | 'tokenizerPath'> {
  model: SentencePieceModel;
  modelPath: string;
  /** tokenizer.json, when the folder has one (its post_processor says whether BOS is added). */
  tokenizer?: Record<string, unknown>;
  /** added_tokens.json. */
  addedTokens?: Record<string, unknown>;
}

/** The tokenizer.ggml.* metadata (model "llama") of a SentencePiece tokenizer; `vocabSize` is the embedding's rows. */
export function sentencePieceMetadata(files: SentencePieceFiles, vocabSize: number | undefined): Metadata {
  const n = vocabSize ?? files.model.pieces.length;
  const tokens: string[] = Array.from({ length: n }, (_, i) => `[PAD${i}]`);
  const scores = new Float32Array(n).fill(-10000);
  const types = new Int32Array(n).fill(TOKEN_TYPE.UNUSED);
  files.model.pieces.forEach((p, id) => {
    if (id >= n) return; // convert_hf_to_gguf warns and stops at the embedding's rows
    tokens[id] = p.piece;
    scores[id] = p.score;
    types[id] =
      p.type === PIECE_TYPE.UNKNOWN
        ? TOKEN_TYPE.UNKNOWN
        : p.type === PIECE_TYPE.CONTROL
          ? TOKEN_TYPE.CONTROL
          : p.type === PIECE_TYPE.UNUSED
            ? TOKEN_TYPE.UNUSED
            : p.type === PIECE_TYPE.BYTE
              ? TOKEN_TYPE.BYTE
              : TOKEN_TYPE.NORMAL;
  });
  for (const [text, id] of Object.entries(files.addedTokens ?? {})) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= n) continue;
    tokens[id] = text;
    scores[id] = -1000;
    types[id] = TOKEN_TYPE.USER_DEFINED;
  }
  const decoder = files.tokenizerConfig?.added_tokens_decoder;
  if (decoder && typeof decoder === 'object') {
    for (const [key, data] of Object.entries(decoder as Record<string, { content?: unknown; special?: unknown }>)) {
      const id = Number(key);
      if (!Number.isInteger(id) || id < 0 || id >= n || typeof data?.content !== 'string') continue;
      let text = data.content;
      if (data.special === true || looksSpecial(text)) types[id] = TOKEN_TYPE.CONTROL;
      else {
        text = text.replaceAll('\u2581', ' ');
        types[id] = TOKEN_TYPE.USER_DEFINED;
      }
      scores[id] = -1000;
      tokens[id] = text;
    }
  }
  const meta = new Metadata();
  const addPrefix = files.tokenizerConfig?.add_prefix_space;
  if (typeof addPrefix === 'boolean') meta.bool('tokenizer.ggml.add_space_prefix', addPrefix);
  meta.string('tokenizer.ggml.model', 'llama');
  meta.string('tokenizer.ggml.pre', 'default');
  meta.strings('tokenizer.ggml.tokens', tokens);
  meta.f32s('tokenizer.ggml.scores', scores);
  meta.i32s('tokenizer.ggml.token_type', types);
  const added = Object.entries((files.tokenizer?.added_tokens as unknown[] | undefined) ?? [])
    .map(([, t]) => t as { id: number; content: string })
    .filter((t) => Number.isInteger(t?.id) && typeof t.content === 'string');
  specialTokens(meta, { ...files, tokenizer: files.tokenizer ?? {}, tokenizerPath: files.modelPath }, added, n);
  return meta;
}

type TokenizerJson = Record<string, unknown>;

function mentionsMetaspace(node: unknown): boolean {
  if (!node || typeof node !== 'object') return false;
  const n = node as TokenizerJson;
  if (n.type === 'Metaspace') return true;
  if (n.type === 'Replace' && (n.content === '\u2581' || (n.pattern as TokenizerJson | undefined)?.String === ' ')) return true;
  if (n.type === 'Prepend' && n.prepend === '\u2581') return true;
  for (const key of ['normalizers', 'pretokenizers']) {
    const list = n[key];
    if (Array.isArray(list) && list.some(mentionsMetaspace)) return true;
  }
  return false;
}

/**
 * A tokenizer.json whose BPE model is SentencePiece's (Llama 2, Mistral 7B
 * saved without tokenizer.model: byte fallback, U+2581 for spaces, no
 * byte-level step) as a SentencePiece model, or undefined for any other
 * tokenizer.json. llama.cpp's SPM tokenizer merges the adjacent pair whose
 * merged piece scores highest; Hugging Face's BPE merges the pair of lowest
 * merge rank. A piece's score is therefore minus the rank of the first merge
 * that forms it (convert_hf_to_gguf's _set_vocab_llama_hf writes -1000 for
 * every piece, which loses that order). Pieces no merge forms score below
 * every merge; <0xXX> pieces are bytes, added special tokens control tokens.
 */
export function sentencePieceFromTokenizerJson(tj: TokenizerJson, where: string): SentencePieceModel | undefined {
  const model = tj.model as TokenizerJson | undefined;
  if (!model || model.type !== 'BPE') return undefined;
  const spmStyle = model.byte_fallback === true || mentionsMetaspace(tj.normalizer) || mentionsMetaspace(tj.pre_tokenizer);
  const byteLevel = JSON.stringify(tj.pre_tokenizer ?? null).includes('"ByteLevel"') || JSON.stringify(tj.decoder ?? null).includes('"ByteLevel"');
  if (!spmStyle || byteLevel) return undefined;
  const vocab = model.vocab as Record<string, number> | undefined;
  if (!vocab || typeof vocab !== 'object') throw new FormatError(where, undefined, 'model.vocab is missing');
  const merges = model.merges;
  if (!Array.isArray(merges)) throw new FormatError(where, undefined, 'model.merges is missing');
  const rank = new Map<string, number>();
  merges.forEach((m: unknown, r) => {
    const pair = typeof m === 'string' ? m.split(' ') : Array.isArray(m) ? (m as string[]) : undefined;
    if (!pair || pair.length !== 2) throw new FormatError(where, undefined, `model.merges[${r}] is not a pair of pieces`);
    const piece = pair[0] + pair[1];
    if (!rank.has(piece)) rank.set(piece, r);
  });
  // a loop, not Math.max(...ids): 262144 arguments (Gemma 3) overflow the stack
  let maxId = -1;
  for (const id of Object.values(vocab)) if (typeof id === 'number' && id > maxId) maxId = id;
  // added tokens may lie past the base vocabulary (Gemma 3's <image_soft_token> at 262144)
  for (const t of (tj.added_tokens as { id?: unknown }[] | undefined) ?? []) if (typeof t?.id === 'number' && Number.isInteger(t.id) && t.id > maxId) maxId = t.id;
  const n = maxId + 1;
  const pieces: Piece[] = Array.from({ length: n }, (_, i) => ({ piece: `[PAD${i}]`, score: -1e9, type: PIECE_TYPE.UNUSED }));
  const unreachable = -(merges.length + 1);
  for (const [piece, id] of Object.entries(vocab)) {
    if (!Number.isInteger(id) || id < 0) throw new FormatError(where, undefined, `model.vocab["${piece}"] is ${id}, not a token id`);
    const r = rank.get(piece);
    const type = piece === model.unk_token ? PIECE_TYPE.UNKNOWN : /^<0x[0-9A-F]{2}>$/.test(piece) ? PIECE_TYPE.BYTE : PIECE_TYPE.NORMAL;
    pieces[id] = { piece, score: r !== undefined ? -r : [...piece].length === 1 ? 0 : unreachable, type };
  }
  for (const t of (tj.added_tokens as { id?: unknown; content?: unknown; special?: unknown }[] | undefined) ?? []) {
    if (typeof t.id !== 'number' || t.id < 0 || t.id >= n || typeof t.content !== 'string') continue;
    if (t.special === true && pieces[t.id].type !== PIECE_TYPE.UNKNOWN) pieces[t.id] = { piece: t.content, score: 0, type: PIECE_TYPE.CONTROL };
    else if (pieces[t.id].type === PIECE_TYPE.UNUSED) pieces[t.id] = { piece: t.content, score: 0, type: PIECE_TYPE.USER_DEFINED };
  }
  return { pieces, addDummyPrefix: prependsSpace(tj.normalizer) || prependsSpace(tj.pre_tokenizer) };
}

/** Whether the normalizer / pre-tokenizer puts a U+2581 in front of the text (SentencePiece's add_dummy_prefix). */
function prependsSpace(node: unknown): boolean {
  if (!node || typeof node !== 'object') return false;
  const n = node as TokenizerJson;
  if (n.type === 'Prepend') return n.prepend === '\u2581';
  if (n.type === 'Metaspace') return n.add_prefix_space !== false && n.prepend_scheme !== 'never';
  for (const key of ['normalizers', 'pretokenizers']) {
    const list = n[key];
    if (Array.isArray(list) && list.some(prependsSpace)) return true;
  }
  return false;
}
