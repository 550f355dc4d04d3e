// The line processors runLines can run, by name: ct-filter's, ct-format's,
// ct-flows' and ct-top's. Each is loaded on first use, by a literal import() that
// the import graph shows, in this thread and in each worker thread. A
// worker is told a name and options, never a module path.

import type { LineProcessor } from './chunk.js';
import type { FilterProcessorOptions } from '../filter/processor.js';
import type { FormatProcessorOptions } from '../format/processor.js';
import type { FlowsStage } from '../flows/processor.js';
import type { TopStage } from '../top/processor.js';

export interface ProcessorOptions {
  filter: FilterProcessorOptions;
  format: FormatProcessorOptions;
  flows: { stage: FlowsStage };
  top: { stage: TopStage };
}
export type ProcessorName = keyof ProcessorOptions;

const LOADERS: { [K in ProcessorName]: (o: ProcessorOptions[K]) => Promise<LineProcessor> } = {
  filter: async (o) => (await import('../filter/processor.js')).createProcessor(o),
  format: async (o) => (await import('../format/processor.js')).createProcessor(o),
  flows: async (o) => (await import('../flows/processor.js')).createProcessor(o),
  top: async (o) => (await import('../top/processor.js')).createProcessor(o),
};

/** A new processor of this name. */
export function createProcessor<K extends ProcessorName>(name: K, options: ProcessorOptions[K]): Promise<LineProcessor> {
  const load = LOADERS[name] as ((o: ProcessorOptions[K]) => Promise<LineProcessor>) | undefined;
  if (!load) return Promise.reject(new Error(`no line processor named ${String(name)}`));
  return load(options);
}
