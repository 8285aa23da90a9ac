// Types of scripts/gen-iq2xs-grids.mjs, for the test that regenerates its output.
export interface GgmlSources {
  commonH: string;
  quantsC: string;
}
export const OUTPUT: string;
export function readGgmlSources(srcDir?: string): GgmlSources;
export function renderIq2xsData(sources: GgmlSources): string;
