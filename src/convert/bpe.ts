// A byte-level BPE vocabulary learned from text, in the form Hugging Face's
// tokenizer.json holds it (GPT-2's byte-to-unicode alphabet, merges in rank
// order). The demo model and the tests build their tokenizers with it, so a
// model made from a fixed seed has a real vocabulary llama.cpp can tokenize
// ordinary text with.

/** GPT-2's bytes_to_unicode: every byte as a printable character (space -> 'Ġ', newline -> 'Ċ'). */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const map = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    map[b] = printable.includes(b) ? String.fromCodePoint(b) : String.fromCodePoint(256 + extra++);
  }
  return map;
}

/** llama.cpp's form of the Llama 3 pre-tokenizer regex (JavaScript has no inline (?i:...)). */
export const LLAMA3_SPLIT =
  /(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

/** The tokenizer.json spelling of the same regex. */
export const LLAMA3_SPLIT_SOURCE =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export interface BpeVocabulary {
  /** token -> id: the 256 byte tokens first (id = byte value), then one token per merge. */
  vocab: Map<string, number>;
  /** Merges in rank order. */
  merges: [string, string][];
}

/**
 * Learns up to `merges` merges from `text`: the most frequent adjacent pair
 * first, ties broken by the pair's spelling, so the result depends on the text
 * alone. Stops early when every word of the text is a single token.
 */
export function learnBpe(text: string, merges: number): BpeVocabulary {
  const b2u = bytesToUnicode();
  const enc = new TextEncoder();
  const wordCounts = new Map<string, number>();
  for (const m of text.matchAll(LLAMA3_SPLIT)) {
    const w = Array.from(enc.encode(m[0]), (b) => b2u[b]).join('\u0000');
    wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
  }
  let words = [...wordCounts.entries()].map(([w, n]) => ({ pieces: w.split('\u0000'), n }));
  const vocab = new Map<string, number>();
  b2u.forEach((ch, b) => vocab.set(ch, b));
  const out: [string, string][] = [];
  while (out.length < merges) {
    const pairs = new Map<string, number>();
    for (const { pieces, n } of words) {
      for (let i = 0; i + 1 < pieces.length; i++) {
        const key = `${pieces[i]}\u0000${pieces[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + n);
      }
    }
    let best: string | undefined;
    let bestN = 0;
    for (const [key, n] of pairs) {
      if (n > bestN || (n === bestN && best !== undefined && key < best)) [best, bestN] = [key, n];
    }
    if (best === undefined) break; // every word is one token
    const [a, b] = best.split('\u0000');
    const merged = a + b;
    if (vocab.has(merged)) {
      // the same string from another pair: BPE keeps the first rank, skip re-adding
      words = words.map(({ pieces, n }) => ({ pieces: mergePair(pieces, a, b), n }));
      continue;
    }
    out.push([a, b]);
    vocab.set(merged, vocab.size);
    words = words.map(({ pieces, n }) => ({ pieces: mergePair(pieces, a, b), n }));
  }
  return { vocab, merges: out };
}

function mergePair(pieces: string[], a: string, b: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < pieces.length; i++) {
    if (i + 1 < pieces.length && pieces[i] === a && pieces[i + 1] === b) {
      out.push(a + b);
      i++;
    } else out.push(pieces[i]);
  }
  return out;
}

/** Encodes text with a learned vocabulary (byte-level BPE, lowest merge rank first), as Hugging Face's BPE model does. */
export function encodeBpe(bpe: BpeVocabulary, text: string): number[] {
  const b2u = bytesToUnicode();
  const enc = new TextEncoder();
  const rank = new Map(bpe.merges.map(([a, b], i) => [`${a}\u0000${b}`, i]));
  const ids: number[] = [];
  for (const m of text.matchAll(LLAMA3_SPLIT)) {
    let pieces = Array.from(enc.encode(m[0]), (b) => b2u[b]);
    for (;;) {
      let bestRank = Infinity;
      let at = -1;
      for (let i = 0; i + 1 < pieces.length; i++) {
        const r = rank.get(`${pieces[i]}\u0000${pieces[i + 1]}`);
        if (r !== undefined && r < bestRank) [bestRank, at] = [r, i];
      }
      if (at < 0) break;
      const [a, b] = bpe.merges[bestRank];
      pieces = mergePair(pieces, a, b);
    }
    for (const p of pieces) ids.push(bpe.vocab.get(p)!);
  }
  return ids;
}
