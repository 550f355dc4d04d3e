// src/attribute/redact.ts: the default patterns on the usual forms, what
// they leave alone, user patterns, and owners copied rather than changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRedactor, OwnerRedactor, PatternError } from '../../src/attribute/redact.js';
import type { ProcessInfo } from '../../src/event.js';

const r = compileRedactor();

test('default patterns: name=value, --name value, headers, URL passwords, user:password', () => {
  const cases: [string[], string[]][] = [
    [['app', '--password', 'hunter2', '--db-password=xyz', 'PGPASSWORD=pg', '--token=abc', '--port', '80'], ['app', '--password', '***', '--db-password=***', 'PGPASSWORD=***', '--token=***', '--port', '80']],
    [['env', 'API_KEY=k1', 'client_secret=cs;other=1', 'user=alice'], ['env', 'API_KEY=***', 'client_secret=***;other=1', 'user=alice']],
    [['curl', '-H', 'Authorization: Bearer abc.def', '-u', 'alice:s3cret', 'https://bob:pw@example.com/x?token=T&x=1'], ['curl', '-H', 'Authorization: Bearer ***', '-u', 'alice:***', 'https://bob:***@example.com/x?token=***&x=1']],
    [['wget', '--header=Authorization: Basic Zm9v', '--header', 'Cookie: a=b; c=d'], ['wget', '--header=Authorization: Basic ***', '--header', 'Cookie: ***']],
    [['sh', '-c', 'curl -H "Authorization: Bearer xyz" http://x'], ['sh', '-c', 'curl -H "Authorization: Bearer ***" http://x']],
    [['app', '--api-key', 'K', '--secret', 'S', '--auth-token', 'A'], ['app', '--api-key', '***', '--secret', '***', '--auth-token', '***']],
  ];
  for (const [argv, want] of cases) assert.deepEqual(r.argv(argv), want, argv.join(' '));
});

test('nothing to hide: the same array back, untouched', () => {
  const argv = ['/usr/bin/ssh', '-p', '22', 'host', 'https://example.com/?q=1', 'user=alice'];
  assert.equal(r.argv(argv), argv);
});

test('user patterns: the first group, or the whole match; a bad one names itself', () => {
  const u = compileRedactor(['^-p(.+)', 'otp[0-9]+']);
  assert.deepEqual(u.argv(['mysql', '-pSECRET', 'otp123456x']), ['mysql', '-p***', '***x']);
  assert.throws(() => compileRedactor(['([']), PatternError);
});

test('owners with secrets are copied once, never changed; an event gets the copies', () => {
  const p: ProcessInfo = { pid: 1, comm: 'app', cmdline: ['app', 'token=x'] } as ProcessInfo;
  const q: ProcessInfo = { pid: 2, comm: 'b', cmdline: ['b'] } as ProcessInfo;
  const o = new OwnerRedactor(r);
  const ev = o.event({ process: p, peer: q });
  assert.deepEqual(ev.process!.cmdline, ['app', 'token=***']);
  assert.deepEqual(p.cmdline, ['app', 'token=x'], 'the original is untouched');
  assert.equal(ev.peer, q, 'no secret: the same object');
  assert.equal(o.event({ process: p }).process, ev.process, 'one copy per owner');
});
