// Event timestamps: isoMicros/isoNanos/nowTs, whose per-second text cache must
// give exactly what the plain BigInt + Date computation gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isoMicros, isoNanos, nowTs, wallClock } from '../../src/event.js';

/** The reference: exact BigInt arithmetic and a Date for every call. */
function reference(u: bigint): string {
  const iso = new Date(Number(u / 1000n)).toISOString();
  return iso.slice(0, 20) + String(Number(u % 1000000n)).padStart(6, '0') + 'Z';
}

let seed = 4242;
const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / 0x1000000;

test('isoMicros matches the BigInt computation, numbers and bigints alike', () => {
  const values: bigint[] = [0n, 1n, 999999n, 1000000n, 1000001n, 1763883693965873n, 1763883693999999n, 1763883694000000n,
    BigInt(Number.MAX_SAFE_INTEGER) - 1n, BigInt(Number.MAX_SAFE_INTEGER)];
  for (let i = 0; i < 20000; i++) values.push(BigInt(Math.floor(rnd() * 2 ** 52)));
  // Many different seconds that share cache slots, then back again.
  for (let i = 0; i < 2000; i++) values.push(1763883693000000n + BigInt(Math.floor(rnd() * 640)) * 1000000n + BigInt(Math.floor(rnd() * 1e6)));
  for (const u of values) {
    const want = reference(u);
    assert.equal(isoMicros(u), want, `bigint ${u}`);
    assert.equal(isoMicros(Number(u)), want, `number ${u}`);
  }
});

// (A double near 1.7e15 holds quarters: .2 and .8 are stored as .25 and .75.)
test('isoMicros rounds fractional microseconds and keeps the BigInt path beyond 2^53', () => {
  assert.equal(isoMicros(1763883693965873.2), reference(1763883693965873n));
  assert.equal(isoMicros(1763883693965873.8), reference(1763883693965874n));
  const big = 2n ** 53n + 12345n;
  assert.equal(isoMicros(big), reference(big));
  assert.equal(isoMicros(-1n), reference(-1n));
  assert.throws(() => isoMicros(NaN), RangeError);
});

test('isoNanos drops the nanoseconds', () => {
  assert.equal(isoNanos(1763883693965873999n), '2025-11-23T07:41:33.965873Z');
  assert.equal(isoNanos(999n), '1970-01-01T00:00:00.000000Z');
});

test('nowTs is the wall clock to the microsecond', () => {
  const before = Date.now();
  const ts = nowTs();
  const after = Date.now();
  assert.match(ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  const ms = Date.parse(ts);
  assert.ok(ms >= before - 1 && ms <= after + 1, `${ts} within [${before}, ${after}]`);
});

test('wallClock follows a step of the system clock at once, forward and back', () => {
  // A fake wall clock (whole ms, as Date.now) and monotonic clock (fractional ms).
  let wall = 1_700_000_000_000, mono = 5_000.25;
  const now = wallClock(() => wall, () => mono);
  const first = now();
  assert.ok(Math.abs(first - (wall + 0.25) * 1000) <= 2000, `first stamp ${first} is on the wall clock`);
  // Time passes on both clocks: the stamps keep the monotonic microseconds.
  mono += 10.123; wall += 10;
  assert.equal(now() - first, 10123);
  // NTP's first sync steps the clock 90 s forward: the very next stamp has it.
  wall += 90_000; mono += 0.001;
  const stepped = now();
  assert.ok(Math.abs(stepped - wall * 1000) < 1000, `after a forward step: ${stepped} vs ${wall * 1000}`);
  // An admin sets the clock back an hour.
  wall -= 3_600_000; mono += 0.5;
  const back = now();
  assert.ok(Math.abs(back - wall * 1000) < 1000, `after a backward step: ${back} vs ${wall * 1000}`);
});

test('wallClock keeps the monotonic resolution and order while the clocks agree within the slack', () => {
  let wall = 1_700_000_000_000, mono = 0;
  const now = wallClock(() => wall, () => mono);
  let last = now();
  for (let i = 0; i < 5000; i++) {
    mono += 0.0137; // 13.7 µs
    wall = 1_700_000_000_000 + Math.floor(mono) + (i % 3 === 0 ? 1 : 0); // Date.now's whole ms, a jitter of one
    const t = now();
    assert.ok(t > last, `stamp ${i} went back: ${t} after ${last}`);
    last = t;
  }
});
