// ct-flows' line processor (see src/lines/): parse and check each line,
// hand flow events to a FlowTracker, and pass every other record (overrun,
// stats, records of later stages) through byte for byte, in order. The
// records the tracker makes are serialized here, as they come, so that they
// go out in input order with the lines around them. It keeps state across
// lines: it runs in one thread (`parallel: false`), and its options hold the
// live stage object, not plain data.
import { isFlowEvent, type FlowRecord } from '../event.js';
import { compileCheck, parseChecked } from '../filter/validate.js';
import type { LineProcessor, Report } from '../lines/chunk.js';
import { FlowTracker, tsMicros, type FlowTrackerOptions } from './tracker.js';

/** The contract's fields ct-flows reads or copies into its records' heads, type-checked on flow events. */
const FIELDS = ['ts', 'id', 'family', 'proto', 'src', 'sport', 'dst', 'dport', 'reply', 'state', 'status', 'counters', 'start', 'stop', 'host', 'dump'];

export class FlowsStage implements LineProcessor {
  readonly tracker: FlowTracker;
  private out = '';
  private readonly check = compileCheck(FIELDS);

  constructor(o: Omit<FlowTrackerOptions, 'onRecord'>) {
    this.tracker = new FlowTracker({ ...o, onRecord: (r: FlowRecord) => { this.out += JSON.stringify(r) + '\n'; } });
  }

  /** The records made since the last call, as NDJSON text ('' when none). */
  take(): string {
    const s = this.out;
    this.out = '';
    return s;
  }

  line(text: string, report: Report): true | string | null {
    const ev = parseChecked(text, this.check, report);
    if (!ev) return null;
    if (isFlowEvent(ev)) {
      if (ev.ts === undefined) return this.bad(report, 'no "ts" field');
      const us = tsMicros(ev.ts);
      if (us === undefined) return this.bad(report, `ts: not an ISO 8601 timestamp: ${JSON.stringify(ev.ts).slice(0, 60)}`);
      if (ev.id === undefined) return this.bad(report, 'no "id" field: a flow event without its conntrack id cannot be paired');
      if (!Number.isInteger(ev.id) || ev.id < 0) return this.bad(report, `id: expected a whole number, got ${ev.id}`);
      this.tracker.event(ev, us);
      return this.take() || null;
    }
    // Anything else passes as it is. Its time (a stats heartbeat, say) still moves the stream clock.
    if (typeof ev.ts === 'string') {
      const us = tsMicros(ev.ts);
      if (us !== undefined) this.tracker.at(us);
    }
    const before = this.take();
    return before ? before + text + '\n' : true;
  }

  private bad(report: Report, message: string): null {
    report({ kind: 'bad', message });
    return null;
  }
}

/** For runLines: the stage itself (options: `{ stage }`). */
export function createProcessor(o: { stage: FlowsStage }): LineProcessor {
  return o.stage;
}
