/** A TextSink (src/cli/progress.ts) that keeps what is written, for tests running CLI commands in-process. */
export function sink() {
  let text = '';
  return { write: (s: string) => (text += s), get text() { return text; } };
}
