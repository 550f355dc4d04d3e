// ct-top's line processor (see src/lines/): parse and check each line as
// ct-filter does, keep the flow events and records ct-filter's criteria
// select (its own matcher, src/filter/match.ts), and count them into a
// TopModel. Writes nothing; keeps state across lines (`parallel: false`).
import { compileFilter, type FilterSpec } from '../filter/match.js';
import { compileCheck, parseChecked } from '../filter/validate.js';
import { tsMicros } from '../flows/time.js';
import type { LineProcessor } from '../lines/chunk.js';
import type { TopModel } from './model.js';

export interface TopProcessorOptions {
  model: TopModel;
  spec: FilterSpec;
  /** Wall clock in µs, for the model's clock while the input is quiet. */
  now: () => number;
}

/** The fields ct-top reads, type-checked on flow events. */
const FIELDS = ['ts', 'id', 'proto', 'src', 'sport', 'dst', 'dport', 'host', 'counters', 'process'];

export class TopStage implements LineProcessor {
  private readonly filter;
  private readonly check;

  constructor(private readonly o: TopProcessorOptions) {
    this.filter = compileFilter(o.spec);
    this.check = compileCheck([...FIELDS, ...this.filter.fields]);
    // With criteria besides the kind, a `counters` record (no owner, no
    // direction) adds bytes only to flows whose own events were selected.
    this.criteria = this.filter.fields.some((f) => f !== 'event');
  }

  private readonly criteria: boolean;

  line(text: string, report: Parameters<LineProcessor['line']>[1]): null {
    const r = parseChecked(text, this.check, report);
    if (!r) return null;
    const ts = typeof r.ts === 'string' ? tsMicros(r.ts) : undefined;
    const ev = r.event;
    const flowish = ev === 'new' || ev === 'update' || ev === 'destroy' || ev === 'flow';
    // `counters` records are the bytes of flows already selected (see criteria); -e does not name them.
    if (flowish ? !this.filter.keep(r) : ev === 'counters' ? false : !this.filter.keepSpecial(r)) {
      this.o.model.add({ event: 'skip' }, ts, this.o.now());
      return null;
    }
    this.o.model.add(r, ts, this.o.now(), ev === 'counters' && this.criteria);
    return null;
  }
}

export function createProcessor(o: { stage: TopStage }): LineProcessor {
  return o.stage;
}
