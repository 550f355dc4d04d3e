// The template engine and the presets (src/format/template.ts), in process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compileTemplate, compilePreset, parseTemplate, templateFields, valueText, escapeControls, rawText,
  PRESETS, PRESET_NAMES, DEFAULT_TEMPLATE, FieldError, TemplateError, CSV_FIELDS,
} from '../../src/format/template.js';

const EV = {
  ts: '2026-11-23T09:42:44.164506Z', event: 'new', id: 2644840459, family: 'ipv4', proto: 'tcp',
  src: '10.0.0.5', sport: 41856, dst: '93.184.216.34', dport: 443,
  reply: { src: '93.184.216.34', sport: 443, dst: '192.0.2.7', dport: 41856 },
  state: 'SYN_SENT', status: ['CONFIRMED'], timeout: 120, mark: 0, zone: 0, host: 'vm', direction: 'out',
  process: {
    pid: 2314, ppid: 2290, uid: 1000, user: 'alice', gid: 100, group: 'users', comm: 'curl', exe: '/usr/bin/curl',
    cmdline: ['curl', '-s', 'https://example.com/'], cgroup: '/user.slice/session-3.scope', unit: 'session-3.scope', container: null, inode: 631905,
  },
  attribution: { method: 'sock_diag', ok: true },
};
const NOPROC = { ...EV, process: undefined, attribution: { method: 'sock_diag', ok: false, reason: 'socket-gone' } };

test('placeholders: fields, dotted paths, array indexes; literal text kept', () => {
  const r = compileTemplate('<ts>: <proto> <src>/<sport> > <reply.dst>/<reply.dport> [<process.cmdline.0>]');
  assert.equal(r(EV), '2026-11-23T09:42:44.164506Z: tcp 10.0.0.5/41856 > 192.0.2.7/41856 [curl]');
});

test('arrays are joined with spaces, objects are JSON, numbers and booleans as text', () => {
  const r = compileTemplate('<process.cmdline>|<status>|<attribution>|<attribution.ok>|<zone>');
  assert.equal(r(EV), 'curl -s https://example.com/|CONFIRMED|{"method":"sock_diag","ok":true}|true|0');
});

test('missing fields: "-" by default, settable, per-placeholder default wins', () => {
  assert.equal(compileTemplate('<process.pid> <extra:nope> <process.container>')(NOPROC), '- - -');
  assert.equal(compileTemplate('<process.pid> <extra:nope>', { missing: 'NA' })(NOPROC), 'NA NA');
  assert.equal(compileTemplate('<process.pid|?> <extra:nope|none> <src|x>', { missing: 'NA' })(NOPROC), '? none 10.0.0.5');
  // empty string and empty array count as missing; 0 and false do not
  assert.equal(compileTemplate('<extra:a>,<extra:b>,<extra:c>,<extra:d>')({ a: '', b: [], c: 0, d: false }), '-,-,0,false');
  // an intermediate that is not an object reads as missing
  assert.equal(compileTemplate('<extra:src.x.y>')(EV), '-');
});

test('escapes: \\n \\t \\\\ \\< ; a < that is not a placeholder is literal', () => {
  assert.equal(compileTemplate('a\\tb\\n\\<src> <src> 1 < 2 <> \\<bad field> <- \\q')(EV), 'a\tb\n<src> 10.0.0.5 1 < 2 <> <bad field> <- \\q');
});

test('control characters in values are escaped so an event stays one line', () => {
  const ev = { process: { cmdline: ['a\nb', 'c\td', 'e\x1b[31m', 'f\x7f\x85'] } };
  assert.equal(compileTemplate('<process.cmdline>')(ev), 'a\\nb c\\td e\\x1b[31m f\\x7f\\x85');
  assert.equal(escapeControls('plain'), 'plain');
  assert.equal(valueText('x\ry'), 'x\\ry');
  assert.equal(rawText([1, null, 'a']), '1  a');
});

test('parseTemplate and templateFields list the placeholders', () => {
  assert.deepEqual(parseTemplate('x<reply.src|d>y'), [{ lit: 'x' }, { path: 'reply.src', dflt: 'd' }, { lit: 'y' }]);
  assert.deepEqual(parseTemplate('<extra:a.b|process.comm|-><process.user|unknown>'), [{ path: 'a.b', alts: ['process.comm'], dflt: '-' }, { path: 'process.user', dflt: 'unknown' }]);
  assert.deepEqual(templateFields(DEFAULT_TEMPLATE), ['ts', 'event', 'family', 'proto', 'src', 'sport', 'dst', 'dport', 'process.pid', 'process.user', 'process.group', 'process.unit', 'process.cmdline', 'process.comm']);
});

test('fallback fields: <process.cmdline|process.comm> shows the name when the command line is gone', () => {
  const gone = { process: { pid: 12135, comm: 'getent', cmdline: [] as string[] } };
  const both = { process: { pid: 1, comm: 'curl', cmdline: ['curl', '-s'] } };
  for (const color of [false, true]) {
    const r = compileTemplate('<process.pid> <process.cmdline|process.comm> <process.exe|process.comm|?> <stop|ts|->', { color, tsFormat: 'epoch' });
    assert.equal(r(gone), '12135 getent getent -');
    assert.equal(r({ ...both, ts: '2026-11-23T07:41:33Z' }), '1 curl -s curl 1795419693');
    assert.equal(r({}), '- - ? -');
  }
});

test('a placeholder naming no field of the contract is a TemplateError naming the nearest field', () => {
  const err = (t: string) => { try { compileTemplate(t); } catch (e) { assert.ok(e instanceof TemplateError); return (e as Error).message; } return 'no error'; };
  assert.match(err('<process.pdi> <dts>'), /'<process\.pdi>' names no field of ct-event\(5\): did you mean process\.pid\? \(a field from another tool: <extra:process\.pdi>\)/);
  assert.match(err('<dts>'), /did you mean ts\?/);
  assert.match(err('<process.cmdline|process.comn>'), /'<process\.cmdline\|process\.comn>' names no field.*did you mean process\.comm\?/);
  assert.match(err('<zzzzzzzz>'), /^'<zzzzzzzz>' names no field of ct-event\(5\) \(a field/);
  assert.match(err('<ts> <src'), /^unclosed placeholder '<src' at character 6/);
  assert.match(err('<src <dst>'), /^unclosed placeholder '<src ' at character 1/);
  assert.match(err('<src foo>'), /'<src foo>' is not a placeholder/);
  assert.match(err('<src|a b|dst>'), /only the last alternative may be text/);
  // Fields the contract leaves open: array elements, undecoded kernel attributes.
  assert.equal(err('<process.cmdline.0> <unknown.ct.99> <status.0> <peer.comm> <counters.orig.bytes>'), 'no error');
});

test('ts formats: iso unchanged, epoch, epoch-ms/us, strftime with %f, UTC and local', () => {
  const t = (fmt: string, tz?: 'utc' | 'local') => compileTemplate('<ts>', { tsFormat: fmt, tz })(EV);
  assert.equal(t('iso'), '2026-11-23T09:42:44.164506Z');
  assert.equal(t('epoch'), '1795426964');
  assert.equal(t('epoch-ms'), '1795426964164');
  assert.equal(t('epoch-us'), '1795426964164506');
  assert.equal(t('%Y-%m-%d %H:%M:%S.%f %z %Z %j %a %b %e %I%p %s %%'), '2026-11-23 09:42:44.164506 +0000 UTC 327 Mon Nov 23 09AM 1795426964 %');
  assert.equal(t('%F %T.%L'), '2026-11-23 09:42:44.164');
  const saved = process.env.TZ;
  try {
    process.env.TZ = 'Asia/Kolkata'; // +05:30, no DST
    assert.equal(t('%Y-%m-%d %H:%M:%S.%f %z', 'local'), '2026-11-23 15:12:44.164506 +0530');
    assert.equal(t('iso', 'local'), '2026-11-23T15:12:44.164506+05:30');
    assert.equal(t('epoch', 'local'), '1795426964');
  } finally {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  }
});

test('timestamps with an offset or fewer digits are read correctly', () => {
  const r = compileTemplate('<ts>', { tsFormat: '%Y-%m-%dT%H:%M:%S.%f' });
  assert.equal(r({ ts: '2026-11-23T10:42:44.5+01:00' }), '2026-11-23T09:42:44.500000');
  assert.equal(r({ ts: '2026-11-23T09:42:44Z' }), '2026-11-23T09:42:44.000000');
  assert.equal(compileTemplate('<ts>')({ ts: '2026-11-23T09:42:44.1Z' }), '2026-11-23T09:42:44.100000Z');
});

test('a ts that is not a timestamp is a FieldError naming the field', () => {
  const r = compileTemplate('<ts> <start>');
  assert.throws(() => r({ ts: 'yesterday' }), (e: Error) => e instanceof FieldError && /^ts: /.test(e.message));
  assert.throws(() => r({ ts: 12 }), (e: Error) => e instanceof FieldError && /ts: expected a timestamp string/.test(e.message));
  assert.throws(() => r({ ts: '2026-13-40T00:00:00Z' }), FieldError);
  assert.equal(r({}), '- -');
});

test('colour: timestamp dim, event kind coloured; none unless asked', () => {
  const r = compileTemplate('<ts> <event>', { color: true });
  assert.equal(r(EV), '\x1b[2m2026-11-23T09:42:44.164506Z\x1b[22m \x1b[32mnew\x1b[39m');
  assert.equal(r({ ...EV, event: 'destroy' }).includes('\x1b[31mdestroy'), true);
  assert.doesNotMatch(compileTemplate('<ts> <event>')(EV), /\x1b/);
});

test('default preset: the default template', () => {
  const f = compilePreset('default');
  assert.equal(f.render(EV), '2026-11-23T09:42:44.164506Z new ipv4/tcp 10.0.0.5/41856 > 93.184.216.34/443 :: 2314 alice:users session-3.scope :: curl -s https://example.com/');
  assert.equal(f.render(NOPROC), '2026-11-23T09:42:44.164506Z new ipv4/tcp 10.0.0.5/41856 > 93.184.216.34/443 :: ? -:- - :: -');
  assert.equal(f.header, undefined);
});

test('conntrack-logger: epoch seconds, family/proto, pid uid:gid cgroup :: cmdline; "? -:- - :: -" without a process', () => {
  const f = compilePreset('conntrack-logger');
  assert.equal(f.render(EV), '1795426964: ipv4/tcp 10.0.0.5/41856 > 93.184.216.34/443 :: 2314 1000:100 /user.slice/session-3.scope :: curl -s https://example.com/');
  assert.equal(f.render(NOPROC), '1795426964: ipv4/tcp 10.0.0.5/41856 > 93.184.216.34/443 :: ? -:- - :: -');
  // --ts-format overrides the preset's own
  assert.match(compilePreset('conntrack-logger', { tsFormat: 'iso' }).render(EV), /^2026-11-23T09:42:44.164506Z: /);
});

test('ctrecorder: local time with microseconds, S/U/E, + once replied, original then reply tuple', () => {
  const saved = process.env.TZ;
  try {
    process.env.TZ = 'UTC';
    const f = compilePreset('ctrecorder');
    assert.equal(f.render(EV), '2026.11.23 09:42:44.164506 S  src=10.0.0.5:41856 dst=93.184.216.34:443 src=93.184.216.34:443 dst=192.0.2.7:41856');
    const upd = { ...EV, event: 'update', status: ['SEEN_REPLY', 'ASSURED', 'CONFIRMED'] };
    assert.equal(f.render(upd).slice(26, 30), ' U+ ');
    assert.equal(f.render({ ...EV, event: 'destroy' }).slice(26, 30), ' E  ');
    const v6 = { ...EV, src: '2001:db8::1', dst: '2001:db8::2', reply: { src: '2001:db8::2', sport: 443, dst: '2001:db8::1', dport: 41856 } };
    assert.match(f.render(v6), / src=\[2001:db8::1\]:41856 dst=\[2001:db8::2\]:443 /);
    const icmp = { ...EV, proto: 'icmp', sport: undefined, dport: undefined, reply: { src: '93.184.216.34', dst: '10.0.0.5' } };
    assert.match(f.render(icmp), / src=10\.0\.0\.5:0 dst=93\.184\.216\.34:0 src=93\.184\.216\.34:0 dst=10\.0\.0\.5:0$/);
    process.env.TZ = 'Asia/Kolkata';
    assert.match(compilePreset('ctrecorder').render(EV), /^2026\.11\.23 15:12:44\.164506 S /);
  } finally {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  }
});

test('ctrecorder-squeeze: ct-flows records as start, end, both tuples; the placeholder for a time not known', () => {
  const saved = process.env.TZ;
  try {
    process.env.TZ = 'UTC';
    const f = compilePreset('ctrecorder-squeeze');
    const flow = { ...EV, event: 'flow', start: '2026-11-23T09:42:44.164506Z', stop: '2026-11-23T09:42:46.000120Z', duration: 1.835614, finished: true };
    const tuples = 'src=10.0.0.5:41856 dst=93.184.216.34:443 src=93.184.216.34:443 dst=192.0.2.7:41856';
    assert.equal(f.render(flow), `2026.11.23 09:42:44.164506 2026.11.23 09:42:46.000120 ${tuples}`);
    // Not finished (interim, end of input): no end. Incomplete (NEW not seen, no kernel time): no start.
    const NODATE = '-          -              ';
    assert.equal(NODATE.length, '2026.11.23 09:42:44.164506'.length);
    assert.equal(f.render({ ...flow, stop: undefined, finished: false, reason: 'interim' }), `2026.11.23 09:42:44.164506 ${NODATE} ${tuples}`);
    assert.equal(f.render({ ...flow, start: undefined, incomplete: true }), `${NODATE} 2026.11.23 09:42:46.000120 ${tuples}`);
    // Raw events: a destroy alone gives its line (kernel start if any, its stop or ts); new and update give nothing.
    assert.equal(f.render({ ...EV, event: 'destroy', start: '2026-11-23T09:40:00.000001Z' }), `2026.11.23 09:40:00.000001 2026.11.23 09:42:44.164506 ${tuples}`);
    assert.equal(f.render(EV), '');
    assert.equal(f.render({ ...EV, event: 'update' }), '');
    assert.match(compilePreset('ctrecorder-squeeze', { tsFormat: 'iso', tz: 'utc' }).render(flow), /^2026-11-23T09:42:44.164506Z 2026-11-23T09:42:46.000120Z src=/);
  } finally {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  }
});

test('packettrail: local end as sip/sport, remote as rip/rport, whitespace removed from names', () => {
  const f = compilePreset('packettrail');
  assert.equal(f.render(EV), 'username=alice process=curl pid=2314 sip=10.0.0.5 sport=41856 rip=93.184.216.34 rport=443');
  const inbound = { ...EV, direction: 'in', process: { ...EV.process, comm: 'my server' } };
  assert.equal(f.render(inbound), 'username=alice process=myserver pid=2314 sip=93.184.216.34 sport=443 rip=10.0.0.5 rport=41856');
  assert.equal(f.render(NOPROC), 'username=- process=- pid=- sip=10.0.0.5 sport=41856 rip=93.184.216.34 rport=443');
});

test('notrust: open and close records in NoTrust-Track field order; close carries the open uuid', () => {
  let n = 0;
  const f = compilePreset('notrust', { uuid: () => `00000000-0000-4000-8000-00000000000${++n}` });
  const open = f.render(EV);
  const o = JSON.parse(open);
  assert.deepEqual(Object.keys(o), ['hash', 'uuid', 'agent', 'timestamp', 'protocol', 'source', 'destination', 'source_port', 'destination_port', 'username', 'uid', 'program_details']);
  assert.equal(o.uuid, '00000000-0000-4000-8000-000000000001');
  assert.equal(o.timestamp, '2026-11-23T09:42:44.164506+00:00');
  assert.equal(o.protocol, 'TCP');
  assert.deepEqual([o.source, o.destination, o.source_port, o.destination_port, o.username, o.uid], ['10.0.0.5', '93.184.216.34', 41856, 443, 'alice', 1000]);
  assert.deepEqual(o.program_details, { inode: 631905, pid: 2314, process_name: 'curl', command_line: ['curl', '-s', 'https://example.com/'] });
  assert.match(o.agent, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  // the hash is written as a full signed 64-bit integer
  assert.match(open, /^\{"hash":-?\d{1,19},/);
  assert.equal(f.render({ ...EV, event: 'update' }), '', 'NoTrust had no update records');
  const closeText = f.render({ ...EV, event: 'destroy' });
  const close = JSON.parse(closeText);
  assert.deepEqual(Object.keys(close), ['hash', 'agent', 'uuid', 'timestamp', 'protocol', 'source', 'destination', 'source_port', 'destination_port']);
  assert.equal(close.uuid, o.uuid);
  assert.equal(close.agent, o.agent);
  assert.equal(open.slice(0, open.indexOf(',')), closeText.slice(0, closeText.indexOf(',')), 'same hash');
  // a close with no open seen: uuid null
  assert.equal(JSON.parse(f.render({ ...EV, event: 'destroy', sport: 1 })).uuid, null);
  // without a process: username "", uid 0, program_details null
  const np = JSON.parse(f.render(NOPROC));
  assert.deepEqual([np.username, np.uid, np.program_details], ['', 0, null]);
  // the agent is stable per host, and settable
  assert.equal(JSON.parse(compilePreset('notrust').render(EV)).agent, o.agent);
  assert.notEqual(JSON.parse(compilePreset('notrust').render({ ...EV, host: 'other' })).agent, o.agent);
  assert.equal(JSON.parse(compilePreset('notrust', { agent: 'A' }).render(EV)).agent, 'A');
});

test('kv: every field, nested keys dotted, quoted where needed', () => {
  const line = compilePreset('kv').render({ ...EV, process: { ...EV.process, comm: 'say "hi"', exe: null, cmdline: ['a\\b'] } });
  assert.match(line, /^ts=2026-11-23T09:42:44\.164506Z event=new id=2644840459 family=ipv4 /);
  assert.match(line, / reply\.src=93\.184\.216\.34 reply\.sport=443 /);
  assert.match(line, / status=CONFIRMED /);
  assert.match(line, / process\.comm="say \\"hi\\"" process\.exe=- process\.cmdline="a\\\\b" /);
  assert.match(line, / attribution\.method=sock_diag attribution\.ok=true$/);
  assert.match(compilePreset('kv').render({ event: 'new', a: 'x y', b: '' }), /^event=new a="x y" b=-$/);
  assert.match(compilePreset('kv', { tsFormat: 'epoch' }).render(EV), /^ts=1795426964 /);
});

test('csv: header, RFC 4180 quoting, empty for missing; --fields picks columns', () => {
  const f = compilePreset('csv');
  assert.equal(f.header, CSV_FIELDS.join(','));
  const row = f.render({ ...EV, process: { ...EV.process, cmdline: ['sh', '-c', 'echo "a,b"'] } });
  assert.equal(row.split(',')[0], EV.ts);
  assert.ok(row.includes(',"sh -c echo ""a,b""",'), row);
  const g = compilePreset('csv', { fields: ['src', 'process.pid', 'nope'] });
  assert.equal(g.header, 'src,process.pid,nope');
  assert.equal(g.render(EV), '10.0.0.5,2314,');
  assert.equal(g.render(NOPROC), '10.0.0.5,,');
});

test('tsv: header, tabs, newlines and backslashes escaped', () => {
  const f = compilePreset('tsv', { fields: ['src', 'process.cmdline'] });
  assert.equal(f.header, 'src\tprocess.cmdline');
  assert.equal(f.render({ src: 'a', process: { cmdline: ['x\ty', 'z\\w\n'] } }), 'a\tx\\ty z\\\\w\\n');
});

test('presets: every name compiles, unknown names are a TemplateError', () => {
  assert.deepEqual([...PRESET_NAMES].sort(), ['conntrack-logger', 'csv', 'ctrecorder', 'ctrecorder-squeeze', 'default', 'kv', 'notrust', 'packettrail', 'tsv', 'who']);
  for (const n of PRESET_NAMES) {
    assert.equal(typeof compilePreset(n).render, 'function');
    assert.ok(PRESETS[n].description.length > 10);
  }
  assert.throws(() => compilePreset('nope'), TemplateError);
  assert.throws(() => compilePreset('toString'), TemplateError);
});

test('csv: a value a spreadsheet would run as a formula (= + - @, tab, CR first) is quoted with a leading \', numbers are not', () => {
  const f = compilePreset('csv', { fields: ['process.comm', 'process.user', 'process.cmdline', 'mark', 'host', 'state'] });
  const ev = { event: 'new', process: { comm: '=cmd|\' /C calc\'!A0', user: '@SUM(1+1)', cmdline: ['+1+1', 'x'] }, mark: -5, host: '-h', state: '\tx' };
  assert.equal(f.render(ev), `"'=cmd|' /C calc'!A0","'@SUM(1+1)","'+1+1 x",-5,"'-h",\\tx`, 'control characters are escaped already');
  assert.equal(f.render({ event: 'new', process: { comm: 'a=b', user: 'x@y', cmdline: ['-'] }, mark: 1e21, host: 'h', state: 'S' }), `a=b,x@y,"'-",1e+21,h,S`);
});

test('tsv: a value a spreadsheet would run as a formula gets a leading \' (no quotes in TSV), numbers and escaped controls do not', () => {
  const f = compilePreset('tsv', { fields: ['process.comm', 'process.user', 'process.cmdline', 'mark', 'host', 'state', 'dst'] });
  const ev = { event: 'new', process: { comm: '=cmd|\' /C calc\'!A0', user: '@SUM(1+1)', cmdline: ['+1+1', 'x'] }, mark: -5, host: '-h', state: '\tx', dst: '=1\t2' };
  assert.equal(f.render(ev), "'=cmd|' /C calc'!A0\t'@SUM(1+1)\t'+1+1 x\t-5\t'-h\t\\tx\t'=1\\t2");
  assert.equal(f.render({ event: 'new', process: { comm: 'a=b', user: 'x@y', cmdline: ['-'] }, mark: 1e21, host: '+3.5', state: 'S', dst: '-1e5' }), "a=b\tx@y\t'-\t1e+21\t+3.5\tS\t-1e5");
  assert.equal(f.render(ev).split('\t').length, 7, 'still one field per column');
});

test('notrust: agents of many hosts are remembered within a bound, and the same again after they were forgotten', () => {
  const f = compilePreset('notrust', { uuid: () => '00000000-0000-4000-8000-000000000000' });
  const agentOf = (host: string) => JSON.parse(f.render({ ts: '2026-11-23T09:42:44.164506Z', event: 'new', proto: 'tcp', src: '10.0.0.1', sport: 1, dst: '10.0.0.2', dport: 2, host })).agent;
  const first = agentOf('host-0');
  for (let i = 1; i < 5000; i++) agentOf(`host-${i}`);
  assert.equal(agentOf('host-0'), first);
  assert.notEqual(agentOf('host-1'), first);
});
