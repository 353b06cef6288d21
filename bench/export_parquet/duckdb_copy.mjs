// The obvious alternative to espipe's Parquet export: NDJSON of the same
// documents (the _source of the pages saved by run.lua's PAGES_DIR), then
// DuckDB's COPY ... TO 'x.parquet'. One DuckDB thread, to compare with one
// espipe core; the NDJSON is written before the clock starts.
//   node bench/export_parquet/duckdb_copy.mjs PAGES_DIR [docs=200000] [codec=snappy]
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { readFileSync, writeFileSync, statSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.resolve(here, '..', '..', 'spec', 'node', 'package.json'));
const api = await import(require.resolve('@duckdb/node-api'));

const [dir, docsArg, codec = 'snappy'] = process.argv.slice(2);
const total = Number(docsArg || 200000);
const pages = [];
for (let i = 1; existsSync(path.join(dir, `page${String(i).padStart(3, '0')}.json`)); i++) {
  pages.push(JSON.parse(readFileSync(path.join(dir, `page${String(i).padStart(3, '0')}.json`), 'utf8')));
}
const lines = [];
for (let i = 0; lines.length < total; i = (i + 1) % pages.length) {
  for (const hit of pages[i].hits.hits) {
    if (lines.length === total) break;
    lines.push(JSON.stringify({ _id: hit._id, ...hit._source }));
  }
}
const ndjson = path.join(tmpdir(), `espipe-bench-${process.pid}.ndjson`);
const out = path.join(tmpdir(), `espipe-bench-${process.pid}.parquet`);
writeFileSync(ndjson, lines.join('\n') + '\n');
const con = await (await api.DuckDBInstance.create(':memory:', { threads: '1' })).connect();
const t0 = process.hrtime.bigint();
await con.run(`COPY (SELECT * FROM read_json_auto('${ndjson}')) TO '${out}' (FORMAT parquet, COMPRESSION ${codec})`);
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const bytes = statSync(out).size;
rmSync(ndjson);
rmSync(out);
console.log(`duckdb COPY ${codec}: ${total} docs, ${(total / seconds / 1000).toFixed(0)} k docs/s (wall, 1 thread), `
  + `${(bytes / total).toFixed(1)} bytes/doc`);
