// Text for the tokenizer checks (llama.cpp's tokenization against the Hugging Face tokenizer's).

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
