// ct-filter's stream step: Line[] batches in, the kept lines' original text
// out (byte for byte: a kept line is never re-serialized). Bad lines are
// reported through a callback and counted; special records pass untouched.
import { Transform } from 'node:stream';
import { parseObject, type Line } from '../ndjson.js';
import { isFlowEvent } from '../event.js';
import { checkRecord } from './validate.js';
import type { CompiledFilter } from './match.js';

export interface FilterCounts {
  read: number;
  kept: number;
  bad: number;
}

export interface FilterStreamOptions {
  filter: CompiledFilter;
  /** `stdin` or a file name, for messages. */
  source: string;
  counts: FilterCounts;
  /** One message (without the program name) per bad line. */
  onBad(message: string): void;
  /** Said once: the filter reads attribution fields and the input has none. */
  onNoAttribution?(message: string): void;
}

/** Whether a flow event carries anything ct-attribute adds. */
function attributed(ev: Record<string, any>): boolean {
  return ev.process !== undefined || ev.attribution !== undefined || ev.direction !== undefined;
}

export function filterStream(o: FilterStreamOptions): Transform {
  const { filter, counts } = o;
  let warned = !o.onNoAttribution || filter.needsAttribution.length === 0;
  return new Transform({
    writableObjectMode: true,
    readableObjectMode: false,
    transform(batch: Line[], _enc, cb) {
      let out = '';
      for (let i = 0; i < batch.length; i++) {
        const line = batch[i];
        counts.read++;
        let ev: Record<string, any>;
        try {
          ev = parseObject(line.text);
        } catch (e) {
          counts.bad++;
          o.onBad(`${o.source}:${line.no}: ${(e as Error).message}`);
          continue;
        }
        const bad = checkRecord(ev);
        if (bad) {
          counts.bad++;
          o.onBad(`${o.source}:${line.no}: ${bad}`);
          continue;
        }
        if (!isFlowEvent(ev)) {
          counts.kept++;
          out += line.text + '\n';
          continue;
        }
        if (!warned && !attributed(ev)) {
          warned = true;
          o.onNoAttribution!(`${filter.needsAttribution.join(', ')} ${filter.needsAttribution.length > 1 ? 'read' : 'reads'} the process fields ct-attribute adds, and ${o.source}:${line.no} has none (is ct-attribute missing upstream?)`);
        }
        if (filter.keep(ev)) {
          counts.kept++;
          out += line.text + '\n';
        }
      }
      if (out) this.push(out);
      cb();
    },
  });
}
