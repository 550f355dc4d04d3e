// bin/ct-es as a process against the local _bulk endpoint (test/es-server.ts):
// what arrives (every document once, ECS fields, index names from event
// dates), exit codes, diagnostics, dead letters, authentication, TLS,
// --setup on Elasticsearch and OpenSearch, data streams, failures, signals,
// back-pressure, and a whole ct-filter | ct-es pipeline.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync, existsSync, statSync, chmodSync, symlinkSync, linkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { spawn } from 'node:child_process';
import { EsServer, FLAVORS, makeCertificate, type EsServerOptions } from '../es-server.js';
import { runBin, BIN, FIXTURES, ROOT, lines, sleep, waitFor } from '../helpers.js';
import { documentId } from '../../src/es/doc-id.js';

const EVENTS = path.join(FIXTURES, 'es', 'events.ndjson');
const events = readFileSync(EVENTS, 'utf8');
const eventList = lines(events);
const N = eventList.length;

let tmp = '';
let big = '';
let bigCount = 0;
before(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'ct-es-cli-'));
  const { generate } = await import(pathToFileURL(path.join(ROOT, 'bench', 'gen-events.js')).href);
  const ls: string[] = [...generate(20000, 9)];
  bigCount = ls.length;
  big = path.join(tmp, 'big.ndjson');
  writeFileSync(big, ls.join('\n') + '\n');
});
after(() => rmSync(tmp, { recursive: true, force: true }));

const servers: EsServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});
async function server(opts: EsServerOptions = {}): Promise<EsServer> {
  const s = await new EsServer(opts).start();
  servers.push(s);
  return s;
}

/** Fast retries for tests. */
const FAST = ['--backoff-max', '0.05', '--flush-interval', '0.05'];

test('--help: exit 0, options and examples', async () => {
  const r = await runBin('ct-es', ['--help']);
  assert.equal(r.code, 0);
  assert.equal(r.stderr, '');
  for (const o of ['--node', '--index', '--data-stream', '--dead-letter', '--drain-timeout', '--setup', '--api-key', 'Examples:']) assert.ok(r.stdout.includes(o), o);
});

test('usage errors exit 2 with a hint', async () => {
  const cases: [string[], RegExp][] = [
    [['--bogus'], /Unknown argument: bogus/],
    [['--index', 'CT-%Y'], /lower case/],
    [['--index', 'ct-%Q'], /unknown date part %Q/],
    [['--flush-bytes', 'lots'], /--flush-bytes 'lots' is not a size/],
    [['--concurrency', '0'], /--concurrency must be/],
    [['--jobs', '-1'], /--jobs must be a whole number/],
    [['--drain-timeout', 'soon'], /--drain-timeout must be a number/],
    [['--data-stream', 'logs-x', '--op-type', 'index'], /only op_type create/],
    [['--data-stream', 'Logs'], /not a valid name/],
    [['--node', 'ftp://x'], /only http:\/\/ and https:\/\//],
    [['--user', 'elastic'], /needs a password/],
    [['--api-key', 'a:b', '--user', 'u', '--password', 'p'], /either an API key or a user/],
  ];
  for (const [args, re] of cases) {
    const env = { ...process.env };
    delete env.CT_ES_USER;
    delete env.CT_ES_PASSWORD;
    delete env.CT_ES_API_KEY;
    const r = await runBin('ct-es', args, '', { env });
    assert.equal(r.code, 2, args.join(' ') + ': ' + r.stderr);
    assert.match(r.stderr, re);
    assert.match(r.stderr, /Try 'ct-es --help'\./);
  }
});

test('empty input: exit 0, no request, nothing on stdout or stderr', async () => {
  const s = await server();
  const r = await runBin('ct-es', ['--node', s.url], '');
  assert.equal(r.code, 0);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, '');
  assert.equal(s.bulkRequests, 0);
});

test('the fixture: every event indexed once, in the index of its own date, as ECS with the event under ctpipe', async () => {
  const s = await server();
  const r = await runBin('ct-es', ['--node', s.url, '--index', 'ct-%Y.%m.%d', '--stats'], events);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, new RegExp(`^ct-es: ${N} indexed \\(${N} new, 0 already there\\), 0 refused, 0 not indexed`));
  assert.deepEqual([...s.indices.keys()].sort(), ['ct-2026.11.23', 'ct-2026.11.24']);
  assert.equal(s.indices.get('ct-2026.11.23')!.size, 1, 'the event at 23:59:59.999999 goes to the 23rd');
  assert.equal(s.count(), N);
  const docs = s.docs();
  for (const d of docs) {
    assert.equal(d.version, 1);
    assert.equal(d.source.event.id, d.id, 'event.id is the _id');
  }
  // Each input event is under ctpipe of exactly one document.
  const byOriginal = new Map(docs.map((d) => [JSON.stringify(d.source.ctpipe), d]));
  for (const e of eventList) assert.ok(byOriginal.has(JSON.stringify(e)), `event ${e.event} ${e.id ?? ''} stored`);
  const snat = byOriginal.get(JSON.stringify(eventList[0]))!.source;
  assert.equal(snat['@timestamp'], eventList[0].ts);
  assert.deepEqual(snat.source, { ip: '10.0.0.5', port: 38064, nat: { ip: '192.0.2.7', port: 61000 } });
  assert.equal(snat.process.name, 'curl');
  assert.equal(snat.user.name, 'alice');
  const dnat = byOriginal.get(JSON.stringify(eventList[2]))!.source;
  assert.deepEqual(dnat.destination.nat, { ip: '172.17.0.2', port: 8080 });
  assert.equal(dnat.container.name, 'web');
  const overrun = byOriginal.get(JSON.stringify(eventList[6]))!.source;
  assert.equal(overrun.event.kind, 'pipeline_error');
});

test('--raw: the documents are the events as they are', async () => {
  const s = await server();
  const r = await runBin('ct-es', ['--node', s.url, '--raw'], events);
  assert.equal(r.code, 0, r.stderr);
  const stored = s.docs().map((d) => JSON.stringify(d.source)).sort();
  assert.deepEqual(stored, eventList.map((e) => JSON.stringify(e)).sort());
  assert.deepEqual([...s.indices.keys()].sort(), ['ctpipe-2026.11.23', 'ctpipe-2026.11.24']);
});

test('bad lines: named as stdin:N on stderr, skipped, the rest indexed; exit 1', async () => {
  const s = await server();
  const ls = events.split('\n');
  const input = [ls[0], '{not json', '[1,2]', '{"event":"new","src":"10.0.0.1"}', '{"ts":"yesterday","event":"new"}', ...ls.slice(1)].join('\n');
  const r = await runBin('ct-es', ['--node', s.url], input);
  assert.equal(r.code, 1);
  const err = r.stderr.split('\n');
  assert.match(err[0], /^ct-es: stdin:2: not JSON/);
  assert.match(err[1], /^ct-es: stdin:3: not a JSON object: array/);
  assert.match(err[2], /^ct-es: stdin:4: "ts" is missing/);
  assert.match(err[3], /^ct-es: stdin:5: "ts" is not an ISO 8601 time/);
  assert.match(r.stderr, /4 bad input lines/);
  assert.equal(s.count(), N);
});

test('| head -1: ct-es writes nothing on stdout, indexes everything, exits 0 with empty stderr', async () => {
  const s = await server({ store: 'ids' });
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const c = spawn('sh', ['-c', `"${BIN('ct-es')}" --node ${s.url} < "${big}" | head -1`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  assert.equal(r.code, 0);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, '');
  assert.equal(s.count(), bigCount);
});

test('a replay indexes nothing twice: same _ids, overwritten (index) or conflicts counted as already indexed (create)', async () => {
  const s = await server();
  assert.equal((await runBin('ct-es', ['--node', s.url], events)).code, 0);
  const r2 = await runBin('ct-es', ['--node', s.url, '--stats'], events);
  assert.equal(r2.code, 0);
  assert.match(r2.stderr, new RegExp(`${N} indexed \\(0 new, ${N} already there\\)`));
  assert.equal(s.count(), N);
  for (const d of s.docs()) assert.equal(d.version, 2);
  const c = await server();
  assert.equal((await runBin('ct-es', ['--node', c.url, '--op-type', 'create'], events)).code, 0);
  const r3 = await runBin('ct-es', ['--node', c.url, '--op-type', 'create', '--stats'], events);
  assert.equal(r3.code, 0, 'conflicts are not failures');
  assert.match(r3.stderr, new RegExp(`${N} indexed \\(0 new, ${N} already there\\), 0 refused`));
  for (const d of c.docs()) assert.equal(d.version, 1);
});

test('--dead-letter: a refused document is written with the reason and its event; the rest indexed; exit 1', async () => {
  const s = await server();
  const victim = documentId(eventList[3], events.split('\n')[3]);
  s.rejectId(victim, 'mapper_parsing_exception', 400, "failed to parse field [source.port] of type [ip] in document with id 'x'");
  const dl = path.join(tmp, 'dead.ndjson');
  const r = await runBin('ct-es', ['--node', s.url, '--dead-letter', dl], events);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^ct-es: stdin:4: refused by the cluster \(400 mapper_parsing_exception: failed to parse field \[source\.port\]/);
  assert.match(r.stderr, new RegExp(`${N - 1} indexed .* 1 refused, 0 not indexed.*dead letters in ${dl.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  const dead = lines(readFileSync(dl, 'utf8'));
  assert.equal(dead.length, 1);
  assert.equal(dead[0].reason, 'rejected');
  assert.equal(dead[0].status, 400);
  assert.equal(dead[0].error.type, 'mapper_parsing_exception');
  assert.equal(dead[0]._id, victim);
  assert.equal(dead[0].line, 4);
  assert.equal(dead[0].index, 'ctpipe-2026.11.24');
  assert.deepEqual(dead[0].document.ctpipe, eventList[3], 'the event can be sent again from the dead letter');
  assert.equal(s.count(), N - 1);
});

test('--dead-letter is opened as ct-record\'s files: created 0600 whatever the umask, appended to, never through a symbolic link nor into a file with another name', async () => {
  const s = await server();
  const victim = documentId(eventList[3], events.split('\n')[3]);
  s.rejectId(victim, 'mapper_parsing_exception', 400, 'refused');
  const dir = mkdtempSync(path.join(tmpdir(), 'ctes-dl-'));
  try {
    const dl = path.join(dir, 'dead.ndjson');
    const r = await runBin('ct-es', ['--node', s.url, '--dead-letter', dl], events, { prefix: ['sh', '-c', 'umask 000; exec "$0" "$@"'] });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(statSync(dl).mode & 0o7777, 0o600);
    // Kept and appended to by the next run; a mode others could read is taken away.
    chmodSync(dl, 0o644);
    await runBin('ct-es', ['--node', s.url, '--dead-letter', dl], events);
    assert.equal(lines(readFileSync(dl, 'utf8')).length, 2);
    assert.equal(statSync(dl).mode & 0o7777, 0o600);
    // A symbolic link (to a file another user could be made to overwrite): refused before anything is read.
    const target = path.join(dir, 'target');
    writeFileSync(target, 'untouched\n', { mode: 0o644 });
    const link = path.join(dir, 'link.ndjson');
    symlinkSync(target, link);
    const viaLink = await runBin('ct-es', ['--node', s.url, '--dead-letter', link], events);
    assert.equal(viaLink.code, 1);
    assert.match(viaLink.stderr, /^ct-es: --dead-letter .*link\.ndjson: is a symbolic link; give the file itself$/m);
    assert.equal(readFileSync(target, 'utf8'), 'untouched\n');
    assert.equal(statSync(target).mode & 0o7777, 0o644);
    // A second name (hard link) of a file: refused too.
    const hard = path.join(dir, 'hard.ndjson');
    linkSync(target, hard);
    const viaHard = await runBin('ct-es', ['--node', s.url, '--dead-letter', hard], events);
    assert.equal(viaHard.code, 1);
    assert.match(viaHard.stderr, /has 2 names \(hard links\)/);
    assert.equal(readFileSync(target, 'utf8'), 'untouched\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('basic auth from the environment; API key from the option and the environment; 401 stops at once with exit 1', async () => {
  const s = await server({ users: { shipper: 's3cret' }, apiKeys: { keyid: 'keysecret' } });
  const env = { ...process.env, CT_ES_USER: 'shipper', CT_ES_PASSWORD: 's3cret' };
  const r1 = await runBin('ct-es', ['--node', s.url], events, { env });
  assert.equal(r1.code, 0, r1.stderr);
  const clear = /^ct-es: credentials would go in clear text over plain http to 127\.0\.0\.1:\d+: use https:\/\//;
  assert.match(r1.stderr, clear, 'one line says the password goes over plain http');
  assert.equal(r1.stderr.trimEnd().split('\n').length, 1, r1.stderr);
  assert.equal(s.log.at(-1)!.headers.authorization, 'Basic ' + Buffer.from('shipper:s3cret').toString('base64'));
  const r2 = await runBin('ct-es', ['--node', s.url, '--api-key', 'keyid:keysecret'], events);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(s.log.at(-1)!.headers.authorization, 'ApiKey ' + Buffer.from('keyid:keysecret').toString('base64'));
  const encoded = Buffer.from('keyid:keysecret').toString('base64');
  const r3 = await runBin('ct-es', ['--node', s.url], events, { env: { ...process.env, CT_ES_API_KEY: encoded } });
  assert.equal(r3.code, 0, r3.stderr);
  assert.equal(s.log.at(-1)!.headers.authorization, 'ApiKey ' + encoded);
  const u = new URL(s.url);
  u.username = 'shipper';
  u.password = 's3cret';
  const inUrl = await runBin('ct-es', ['--node', u.href], events);
  assert.equal(inUrl.code, 0, 'credentials in the URL');
  assert.match(inUrl.stderr, clear);
  assert.doesNotMatch(inUrl.stderr, /s3cret/, 'the warning does not repeat the password');
  const t0 = Date.now();
  const bad = await runBin('ct-es', ['--node', s.url, '--stats'], events, { env: { ...process.env, CT_ES_USER: 'shipper', CT_ES_PASSWORD: 'wrong' } });
  assert.equal(bad.code, 1);
  assert.ok(Date.now() - t0 < 10000, 'not retried');
  assert.match(bad.stderr, /stopped: http:\/\/127\.0\.0\.1:\d+: HTTP 401 security_exception: unable to authenticate user \[shipper\]/);
  assert.match(bad.stderr, new RegExp(`0 indexed .* ${N} not indexed`));
  assert.equal(s.count(), N);
});

test('TLS: --ca verifies the node; without it the certificate error stops ct-es; --insecure skips the check', async () => {
  const cert = makeCertificate();
  try {
    const s = await server({ tls: { key: cert.key, cert: cert.cert } });
    assert.match(s.url, /^https:/);
    const ok = await runBin('ct-es', ['--node', s.url, '--ca', cert.certPath], events);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(s.count(), N);
    const noCa = await runBin('ct-es', ['--node', s.url, '--drain-timeout', '5'], events);
    assert.equal(noCa.code, 1);
    assert.match(noCa.stderr, /stopped: https:\/\/127\.0\.0\.1:\d+: self[- ]signed certificate/);
    const insecure = await runBin('ct-es', ['--node', s.url, '--insecure'], events);
    assert.equal(insecure.code, 0, insecure.stderr);
    assert.equal(s.count(), N);
    for (const d of s.docs()) assert.equal(d.version, 2, 'sent twice, stored once');
  } finally {
    rmSync(cert.dir, { recursive: true, force: true });
  }
});

for (const flavor of ['es7', 'es8', 'es9', 'opensearch1', 'opensearch2', 'opensearch3'] as const) {
  test(`--setup then ship, on ${flavor}: template installed, every ECS document passes its types`, async () => {
    const s = await server({ flavor: FLAVORS[flavor] });
    const r = await runBin('ct-es', ['--node', s.url, '--setup', '--index', 'ct-%Y.%m.%d'], events);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, flavor.startsWith('opensearch') ? /OpenSearch \d/ : /Elasticsearch \d/);
    assert.match(r.stderr, /template ct installed for ct-\*/);
    assert.ok(s.templates.has('ct'));
    assert.equal(s.count(), N);
  });
}

test('--setup with nothing to ship (< /dev/null): only the template', async () => {
  const s = await server({ flavor: FLAVORS['es7.5'] });
  const r = await runBin('ct-es', ['--node', s.url, '--setup', '--index-template', 'conn'], '');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(s.templates.get('conn')!.legacy, true, 'Elasticsearch 7.5 gets a legacy template');
  assert.equal(s.bulkRequests, 0);
});

test('--data-stream with --setup: op_type create into the backing index, @timestamp added to --raw documents', async () => {
  const s = await server({ flavor: FLAVORS.es8 });
  const r = await runBin('ct-es', ['--node', s.url, '--data-stream', 'logs-ctpipe-default', '--setup', '--raw'], events);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /data stream logs-ctpipe-default created/);
  const backing = s.dataStreams.get('logs-ctpipe-default')!;
  assert.match(backing, /^\.ds-logs-ctpipe-default-\d{4}\.\d{2}\.\d{2}-000001$/);
  const docs = s.docs();
  assert.equal(docs.length, N);
  for (const d of docs) {
    assert.equal(d.index, backing);
    assert.equal(d.source['@timestamp'], d.source.ts);
  }
  assert.ok(s.log.filter((l) => l.url.includes('_bulk')).length > 0);
  // Sent again (as ECS this time: the _id names the event, not its form): conflicts, counted as already indexed.
  const again = await runBin('ct-es', ['--node', s.url, '--data-stream', 'logs-ctpipe-default', '--stats'], events);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, new RegExp(`${N} indexed \\(0 new, ${N} already there\\)`));
  assert.equal(s.count(), N);
});

test('whole-request 429 and 503, per-item 429, dropped connections, a slow answer: all retried; every document exactly once; exit 0', async () => {
  const s = await server();
  s.failNext(2, 429);
  s.failNext(1, 503);
  s.reject429Items(3);
  s.dropRequest(5, 'response');
  s.dropRequest(6, 'request');
  s.slow(300, 1);
  const r = await runBin('ct-es', ['--node', s.url, '--flush-bytes', '2k', '--concurrency', '1', '--stats', ...FAST], events);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(s.count(), N);
  assert.match(r.stderr, /retrying/);
  assert.match(r.stderr, /indexing again after/);
  const m = /(\d+) retried, (\d+) items retried/.exec(r.stderr)!;
  assert.ok(Number(m[1]) >= 5, r.stderr);
  // Three items are answered 429; one of them may be in the request whose answer is then dropped.
  assert.ok(Number(m[2]) >= 1 && Number(m[2]) <= 3, r.stderr);
});

test('the cluster down at the start and back later: ct-es waits, then indexes everything', async () => {
  const s = await server({ store: 'ids' });
  const down = s.down(1500);
  const r = await runBin('ct-es', ['--node', s.url, ...FAST], events);
  await down;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(s.count(), N);
  assert.match(r.stderr, /connection refused; retrying/);
});

test('end of input with the cluster down: after --drain-timeout the documents go to the dead letters as not indexed; exit 1', async () => {
  const s = await server();
  await s.close();
  const dl = path.join(tmp, 'undelivered.ndjson');
  const t0 = Date.now();
  const r = await runBin('ct-es', ['--node', s.url, '--drain-timeout', '1', '--dead-letter', dl, ...FAST], events);
  assert.equal(r.code, 1);
  assert.ok(Date.now() - t0 < 8000);
  assert.match(r.stderr, new RegExp(`0 indexed .* ${N} not indexed`));
  const dead = lines(readFileSync(dl, 'utf8'));
  assert.equal(dead.length, N);
  assert.ok(dead.every((d) => d.reason === 'not-indexed'));
  assert.deepEqual(dead.map((d) => JSON.stringify(d.document.ctpipe)).sort(), eventList.map((e) => JSON.stringify(e)).sort());
  // ...and they can be sent again from there.
  const s2 = await server();
  const again = await runBin('ct-es', ['--node', s2.url], dead.map((d) => JSON.stringify(d.document.ctpipe)).join('\n') + '\n');
  assert.equal(again.code, 0);
  assert.equal(s2.count(), N);
});

test('SIGTERM while the cluster is down: stops reading, waits --drain-timeout, exits 1 with what was not indexed', async () => {
  const s = await server();
  await s.close();
  const child = spawn(BIN('ct-es'), ['--node', s.url, '--drain-timeout', '1', '--stats', ...FAST], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  child.stdin.on('error', () => {});
  child.stdin.write(events); // input stays open
  await waitFor(() => /retrying/.test(stderr), 5000, 'the first retry');
  const t0 = Date.now();
  child.kill('SIGTERM');
  const code = await new Promise((r) => child.on('close', r));
  assert.equal(code, 1);
  assert.ok(Date.now() - t0 < 8000, 'within the drain timeout and a little');
  assert.match(stderr, new RegExp(`0 indexed .* ${N} not indexed`));
});

test('SIGINT with input from a pipe is ignored: ct-es finishes its input and indexes it', async () => {
  const s = await server();
  const child = spawn(BIN('ct-es'), ['--node', s.url, ...FAST], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  child.stdin.write(events.split('\n').slice(0, 5).join('\n') + '\n');
  await waitFor(() => s.count() === 5, 5000, 'the first five');
  child.kill('SIGINT');
  await sleep(100);
  child.stdin.end(events.split('\n').slice(5).join('\n'));
  const code = await new Promise((r) => child.on('close', r));
  assert.equal(code, 0, stderr);
  assert.equal(s.count(), N);
});

test('back-pressure: with the cluster down ct-es stops reading its input; when it is back everything arrives once', async () => {
  const s = await server({ store: 'ids' });
  const down = s.down(2500);
  const child = spawn(BIN('ct-es'), ['--node', s.url, '--flush-bytes', '64k', '--concurrency', '1', ...FAST], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  const input = readFileSync(big);
  // Write in 64 KB pieces, as a producer honouring back-pressure does; count what was taken.
  let offered = 0;
  let blocked = false;
  const writer = (async () => {
    while (offered < input.length) {
      const piece = input.subarray(offered, offered + 65536);
      offered += piece.length;
      if (!child.stdin.write(piece)) {
        blocked = true;
        await new Promise((r) => child.stdin.once('drain', r));
      }
    }
    child.stdin.end();
  })();
  await sleep(1500);
  assert.ok(blocked, 'the pipe filled up');
  // Taken while down: a few 64 KB batches of ECS documents (about 2.5 times the input), plus pipe and stream buffers.
  assert.ok(offered < 3 * 1024 * 1024, `only a bounded part of the ${input.length} bytes was taken while down: ${offered}`);
  assert.ok(offered < input.length);
  await down;
  await writer;
  const code = await new Promise((r) => child.on('close', r));
  assert.equal(code, 0, stderr);
  assert.equal(s.count(), bigCount);
});

test('bulk input through worker threads (--jobs 2) and without (--jobs 0): same documents, same stdin:N in messages and dead letters', async () => {
  const ls = readFileSync(big, 'utf8').trimEnd().split('\n');
  ls.splice(4999, 0, '{"broken":');
  ls.splice(15000, 0, JSON.stringify({ ts: '2026-11-23T01:00:00Z', event: 'new', pad: 'p'.repeat(2 * 1024 * 1024) }));
  const input = ls.join('\n') + '\n';
  const victimLine = 12346; // 1-based, after the first insertion
  const victim = documentId(JSON.parse(ls[victimLine - 1]), ls[victimLine - 1]);
  const results = [];
  for (const jobs of ['2', '0']) {
    const s = await server({ store: 'ids' });
    s.rejectId(victim, 'mapper_parsing_exception', 400, 'scripted');
    const dl = path.join(tmp, `dl-${jobs}.ndjson`);
    const r = await runBin('ct-es', ['--node', s.url, '--jobs', jobs, '--dead-letter', dl], input);
    assert.equal(r.code, 1);
    // The refusal comes when its batch is answered: its place among the other lines may vary.
    assert.match(r.stderr, /^ct-es: stdin:5000: not JSON/m);
    assert.match(r.stderr, /^ct-es: stdin:12346: refused by the cluster \(400 mapper_parsing_exception: scripted\)/m);
    assert.match(r.stderr, /^ct-es: stdin:15001: line of 2097\d{3} bytes is too long, skipped/m);
    assert.equal(s.count(), bigCount - 1);
    const dead = lines(readFileSync(dl, 'utf8'));
    assert.equal(dead.length, 1);
    assert.equal(dead[0].line, victimLine);
    assert.equal(dead[0]._id, victim);
    results.push(s.docs().map((d) => d.id).sort());
  }
  assert.deepEqual(results[0], results[1]);
});

test('several --node: one that refuses connections is skipped, the other takes everything', async () => {
  const s = await server();
  const gone = await server();
  await gone.close();
  const r = await runBin('ct-es', ['--node', gone.url, '--node', s.url, '--flush-bytes', '2k', ...FAST], events);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(s.count(), N);
});

test('pipeline: ct-attribute-shaped events | ct-filter --no-dns -p tcp,udp | ct-es: what ct-filter keeps is what is indexed', async () => {
  assert.ok(existsSync(BIN('ct-filter')), 'bin/ct-filter is part of the repository');
  const s = await server();
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const c = spawn('sh', ['-c', `"${BIN('ct-filter')}" --no-dns -p tcp,udp < "${EVENTS}" | "${BIN('ct-es')}" --node ${s.url} --index 'ct-%Y.%m.%d' --stats`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    c.stderr.on('data', (d) => (stderr += d));
    c.on('close', (code) => resolve({ code, stderr }));
  });
  assert.equal(r.code, 0, r.stderr);
  // What ct-filter keeps: TCP and UDP flows except DNS, and the special records, which always pass.
  const kept = eventList.filter((e) => !['new', 'update', 'destroy'].includes(e.event) || (['tcp', 'udp'].includes(e.proto) && e.dport !== 53 && e.sport !== 53));
  assert.ok(kept.length >= 6 && kept.length < N);
  const stored = s.docs().map((d) => JSON.stringify(d.source.ctpipe)).sort();
  assert.deepEqual(stored, kept.map((e) => JSON.stringify(e)).sort());
  assert.match(r.stderr, new RegExp(`ct-es: ${kept.length} indexed`));
});
