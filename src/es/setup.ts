// --setup: find out what the cluster is (GET /), then install an index
// template whose mappings give ctpipe's fields their types (ip, keyword,
// date, long), and for --data-stream create the data stream.
//
// APIs, per the Elasticsearch and OpenSearch references:
// - composable templates, `PUT _index_template/<name>` {index_patterns,
//   priority, template: {mappings}, data_stream?: {}}: Elasticsearch 7.8+ and
//   every OpenSearch;
// - legacy templates, `PUT _template/<name>` {index_patterns, order,
//   mappings}: Elasticsearch 7.0-7.7 (index names only; data streams came in 7.9);
// - `PUT _data_stream/<name>`: Elasticsearch 7.9+, OpenSearch 1.0+.
// Only types both products have are used. The priority is 200, above
// Elasticsearch's built-in `logs-*-*` template (100), so a data stream named
// logs-ctpipe-default gets these mappings.
//
// This module does no retrying: setup runs once at start, and a failure is
// reported to the user.
import { documentMapping } from './ecs.js';
import { errorSummary } from './bulk.js';
import type { BulkTransport } from './shipper.js';
import { VERSION } from '../version.js';

export interface ClusterInfo {
  product: 'elasticsearch' | 'opensearch';
  version: string;
  major: number;
  minor: number;
}

export class SetupError extends Error {}

/** Read `GET /`: OpenSearch says `version.distribution: "opensearch"`; Elasticsearch has none. */
export function readClusterInfo(body: string): ClusterInfo {
  let r: any;
  try {
    r = JSON.parse(body);
  } catch {
    throw new SetupError('GET / did not answer JSON: is this an Elasticsearch or OpenSearch node?');
  }
  const v = r && r.version;
  const number = v && typeof v.number === 'string' ? v.number : null;
  if (!number) throw new SetupError('GET / has no version.number: is this an Elasticsearch or OpenSearch node?');
  const [major, minor] = number.split('.').map((x: string) => parseInt(x, 10));
  return { product: v.distribution === 'opensearch' ? 'opensearch' : 'elasticsearch', version: number, major, minor: minor || 0 };
}

export interface SetupOptions {
  /** The template's name. */
  name: string;
  /** index_patterns: the index pattern with its date parts as `*`, or the data stream's name. */
  pattern: string;
  dataStream: boolean;
  raw: boolean;
}

/** The template body for a cluster. */
export function templateFor(info: ClusterInfo, o: SetupOptions): { path: string; body: Record<string, unknown> } {
  const mappings = documentMapping(o.raw);
  const meta = { managed_by: 'ctpipe ct-es', ctpipe_version: VERSION, format: o.raw ? 'raw' : 'ecs' };
  const composable = info.product === 'opensearch' || info.major > 7 || (info.major === 7 && info.minor >= 8);
  if (info.product === 'elasticsearch' && info.major < 7) throw new SetupError(`Elasticsearch ${info.version} is too old: ct-es needs 7.0 or later`);
  if (o.dataStream && info.product === 'elasticsearch' && info.major === 7 && info.minor < 9) {
    throw new SetupError(`Elasticsearch ${info.version} has no data streams (7.9 or later): use --index`);
  }
  if (!composable) {
    return { path: `/_template/${encodeURIComponent(o.name)}`, body: { index_patterns: [o.pattern], order: 200, mappings: { ...mappings, _meta: meta } } };
  }
  const body: Record<string, unknown> = {
    index_patterns: [o.pattern],
    priority: 200,
    template: { mappings },
    _meta: meta,
  };
  if (o.dataStream) body.data_stream = {};
  return { path: `/_index_template/${encodeURIComponent(o.name)}`, body };
}

/** Install the template (and create the data stream). Returns lines to tell the user. */
export async function setup(t: BulkTransport, o: SetupOptions): Promise<string[]> {
  const said: string[] = [];
  const root = await t.request('GET', '/');
  if (root.status !== 200) throw new SetupError(`${root.node}: GET /: HTTP ${root.status} ${errorSummary(root.body)}`);
  const info = readClusterInfo(root.body);
  said.push(`${root.node}: ${info.product === 'opensearch' ? 'OpenSearch' : 'Elasticsearch'} ${info.version}`);
  const { path, body } = templateFor(info, o);
  const put = await t.request('PUT', path, JSON.stringify(body));
  if (put.status !== 200) throw new SetupError(`${put.node}: PUT ${path}: HTTP ${put.status} ${errorSummary(put.body)}`);
  said.push(`template ${o.name} installed for ${o.pattern}`);
  if (o.dataStream) {
    const ds = `/_data_stream/${encodeURIComponent(o.pattern)}`;
    const r = await t.request('PUT', ds);
    if (r.status === 200) said.push(`data stream ${o.pattern} created`);
    else if (/resource_already_exists_exception/.test(r.body)) said.push(`data stream ${o.pattern} already exists`);
    else throw new SetupError(`${r.node}: PUT ${ds}: HTTP ${r.status} ${errorSummary(r.body)}`);
  }
  return said;
}
