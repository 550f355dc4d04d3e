// Write what is derived from the schema table (src/event/schema.ts, built
// into dist/): schema/ct-event.schema.json, and the field table in
// man/ct-event.5.md (the preformatted block under "## FIELD TABLE").
// `npm run schema` after a change to the table; test/unit/schema.test.ts
// fails while either is stale.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const { jsonSchema, fieldTable, withFieldTable } = await import(path.join(root, 'dist', 'src', 'event', 'json-schema.js'));

mkdirSync(path.join(root, 'schema'), { recursive: true });
writeFileSync(path.join(root, 'schema', 'ct-event.schema.json'), JSON.stringify(jsonSchema(), null, 2) + '\n');
const man = path.join(root, 'man', 'ct-event.5.md');
writeFileSync(man, withFieldTable(readFileSync(man, 'utf8'), fieldTable()));
