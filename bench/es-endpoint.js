// The ES bench's bulk endpoint in a process of its own (node bench/es-endpoint.js,
// started with fork() by bench/es.bench.js): test/es-server.ts's faithful
// _bulk endpoint (Elasticsearch 8 flavour, storing index/_id/version only),
// so that the endpoint's CPU is not the measured tools' and the other way
// round. Speaks over the IPC channel: it sends {url} once listening, and
// answers {op:'count'} with {count, bulk}, {op:'faultEvery', request429,
// item429} and {op:'down', ms} (stop listening for ms, then listen again on
// the same port) with {done}. Ends with its parent or on {op:'close'}.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { EsServer } = await import(path.join(root, 'dist/test/es-server.js'));
const server = await new EsServer({ store: 'ids' }).start();
process.on('disconnect', () => process.exit(0));
process.on('message', async (m) => {
  switch (m.op) {
    case 'count': return process.send({ count: server.count(), bulk: server.bulkRequests });
    case 'faultEvery': server.faultEvery({ request429: m.request429, item429: m.item429 }); return process.send({ done: true });
    case 'down': await server.down(m.ms); return process.send({ done: true });
    case 'close': await server.close(); process.exit(0);
  }
});
process.send({ url: server.url });
