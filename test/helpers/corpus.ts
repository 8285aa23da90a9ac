// Text for the tokenizer checks (llama.cpp's tokenization against the Hugging Face tokenizer's, and wgarray's against llama.cpp's).
import { DEMO_CORPUS } from '../../src/convert/synthetic.js';

/** Varied text: code, whitespace runs, digits, emoji, CJK, RTL scripts, contractions. */
export const CORPUS = [
  'The quick brown fox jumps over the lazy dog.',
  "She'll say it's the best, isn't it? We'd've known.",
  'def quantize(x):\n    return [round(v * 127) for v in x]  # int8',
  'tabs\tand   three spaces,\n\nnew lines',
  'Numbers: 1, 42, 256, 4096, 3.14159 and 1,000,000.',
  'Emoji 🦊🚀 and accents: café, naïve, Ångström.',
  '日本語のテキストと中文字符',
  'مرحبا بالعالم and שלום עולם',
  'Quantization stores the weights of a language model in fewer bits.',
  'ALL CAPS and MixedCase and snake_case and kebab-case',
  '   leading spaces and trailing   ',
  'url: https://example.com/path?q=1&r=2',
  'What is the capital of France? Paris is the capital of France.',
  'jumps jumped jumping jumper',
];

/**
 * wgarray's tokenizer against llama.cpp's: code, whitespace runs, digit runs,
 * emoji, CJK, contractions, text a small vocabulary never saw (byte fallback),
 * unusual spaces.
 */
export const TOKENIZER_CORPUS: string[] = [
  'The quick brown fox jumps over the lazy dog.',
  ' leading space, trailing space ',
  '  two leading spaces and\ttabs\t\there',
  'Whitespace runs:     five,\n\n\nthree newlines, \r\n CRLF,   \n  mixed  \t\n',
  'Digits: 10 42 100 256 4096 1 12 123 1234 12345 3.14159 2026-12-07 0x1F 1,000,000',
  "Contractions: it's, I'M, they're, we've, you'll, he'd, DON'T, o'clock",
  'function add(a, b) {\n  return a + b; // sum\n}\nconst x = [1, 2, 3].map((n) => n * 2);',
  'def f(x):\n    if x > 0:\n        return x ** 2\n    return -x\n',
  '<div class="a">&amp; {{template}} $HOME ~/path\\to\\file | grep -v "x"</div>',
  'Emoji: 👍 🎉🎉 👨‍👩‍👧‍👦 🇫🇷 ❤️ 🙂 end',
  '中文文本：量化模型的权重。日本語のテキスト、カタカナ。한국어 텍스트.',
  'Mixed 中English文 and 123数字456 and émigré café naïve Ωμέγα Привет мир',
  'Quantization stores the weights of a language model in fewer bits.',
  "Unseen: zyxwvut qqqq ''' ``` ___ --- !!! ??? ... ;;;",
  '\n',
  ' ',
  'a',
  '\u00a0non-breaking\u00a0space\u2003em space\u3000ideographic',
  DEMO_CORPUS.slice(0, 600),
];
