// ct-filter's line processor (see src/lines/): parse, check the fields the
// criteria read, pass special records, keep or drop flow events (and
// ct-flows' flow records). A kept
// line is passed through byte for byte. Built from plain options so that
// worker threads can build their own.
import { isFlowEvent, isFlowRecord } from '../event.js';
import { compileFilter, type FilterSpec } from './match.js';
import { compileCheck, parseChecked } from './validate.js';
import { SelfDetector } from './self.js';
import type { LineProcessor, Report } from '../lines/chunk.js';
import { EventReader } from '../event/reader.js';

export interface FilterProcessorOptions {
  spec: Omit<FilterSpec, 'self'>;
  /** --no-self, with this process's pid (library code does not read `process`). */
  noSelf?: { pid: number; procRoot?: string } | null;
}

/** Whether a flow event carries anything ct-attribute adds. */
function attributed(ev: Record<string, any>): boolean {
  return ev.process !== undefined || ev.attribution !== undefined || ev.direction !== undefined;
}

export function createProcessor(o: FilterProcessorOptions): LineProcessor {
  const self = o.noSelf ? new SelfDetector({ pid: o.noSelf.pid, procRoot: o.noSelf.procRoot }) : null;
  const filter = compileFilter({ ...o.spec, self });
  const check = compileCheck(filter.fields);
  const needs = filter.needsAttribution;
  const noAttribution = needs.length
    ? `${needs.join(', ')} ${needs.length > 1 ? 'read' : 'reads'} the fields ct-attribute adds, and this event has none (is ct-attribute missing upstream?)`
    : '';
  let warned = needs.length === 0;
  /** The decision on a record, parsed whole or read lazily. */
  const decide = (ev: Record<string, any>, report: Report): true | null => {
    // Special records go by their kind alone (--event, --no-special);
    // ct-flows' `flow` records have the fields of a flow event (tuples,
    // process, ...) and are matched alike.
    if (!isFlowEvent(ev) && !isFlowRecord(ev)) return filter.keepSpecial(ev) ? true : null;
    if (!warned && !attributed(ev)) {
      warned = true;
      report({ kind: 'warn', message: noAttribution, once: 'no-attribution' });
    }
    return filter.keep(ev) ? true : null;
  };
  // The fast path reads the top-level fields the criteria and their checks read (and what attributed() looks at, when it is asked).
  const top = new Set(['event', ...filter.fields.map((f) => f.split('.')[0]), ...(needs.length ? ['process', 'attribution', 'direction'] : [])]);
  const reader = new EventReader({ read: [...top], share: true });
  return {
    line(text, report) {
      const ev = parseChecked(text, check, report);
      return ev ? decide(ev, report) : null;
    },
    lineBytes(buf, start, end, report) {
      const ev = reader.read(buf, start, end);
      // A line the reader declines, or whose fields are not of their types (the slow path says which), goes to line().
      if (ev === undefined || check(ev) !== null) return undefined;
      return decide(ev, report);
    },
  };
}
