// Test-only: read Parquet files with parquet-wasm (the Rust Arrow/Parquet
// implementation, independent of DuckDB) and print them as JSON.
//   node spec/parquet/arrow_read.mjs FILE...
// stdout: a JSON array with, per file, { schema: [{ name, type }], metadata:
// { key: value }, metadata_keys: [ key ] in the footer's order, rows: [ { column: value } ] }. Lists are arrays, structs
// objects, maps arrays of { key, value }, top-level timestamps their epoch value in
// the column's unit (as text) and 64-bit integers strings (no precision lost).
// Exit 2 when parquet-wasm cannot be loaded, 1 when a file cannot be read.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeDir = path.resolve(here, '..', 'node');
let wasm, arrow;
try {
  const require = createRequire(path.join(nodeDir, 'package.json'));
  wasm = require('parquet-wasm/node');
  arrow = require('apache-arrow');
} catch (e) {
  process.stderr.write(`cannot load parquet-wasm / apache-arrow from ${nodeDir}/node_modules `
    + `(run: npm install --prefix spec/node): ${e.message}\n`);
  process.exit(2);
}

function plain(v, type) {
  if (v === null || v === undefined) return null;
  const id = type.typeId;
  if (arrow.DataType.isList(type)) {
    return Array.from(v, (x) => plain(x, type.children[0].type));
  }
  if (arrow.DataType.isMap(type)) {
    const entry = type.children[0].type;
    const out = [];
    for (const [k, x] of v) out.push({ key: plain(k, entry.children[0].type), value: plain(x, entry.children[1].type) });
    return out;
  }
  if (arrow.DataType.isStruct(type)) {
    const out = {};
    for (const f of type.children) out[f.name] = plain(v[f.name], f.type);
    return out;
  }
  if (typeof v === 'bigint') return v.toString();
  if (arrow.DataType.isTimestamp(type) && typeof v === 'number') return v;
  if (id === arrow.Type.Decimal) return v.toString();
  return v;
}

// A top-level 64-bit column's value i exactly (the getters round timestamps to milliseconds).
function rawInt64(vector, i) {
  for (const data of vector.data) {
    if (i < data.length) {
      if (data.nullCount > 0 && !vector.isValid(i)) return null;
      return data.values[data.offset + i].toString();
    }
    i -= data.length;
  }
  return null;
}

const results = [];
for (const file of process.argv.slice(2)) {
  try {
    const bytes = new Uint8Array(readFileSync(file));
    const table = arrow.tableFromIPC(wasm.readParquet(bytes).intoIPCStream());
    const fields = table.schema.fields;
    const rows = [];
    for (let i = 0; i < table.numRows; i++) {
      const row = {};
      for (const f of fields) {
        const col = table.getChild(f.name);
        row[f.name] = arrow.DataType.isTimestamp(f.type) ? (col.isValid(i) ? rawInt64(col, i) : null)
          : plain(col.get(i), f.type);
      }
      rows.push(row);
    }
    const metadata = {};
    for (const [k, v] of table.schema.metadata) metadata[k] = v;
    results.push({ schema: fields.map((f) => ({ name: f.name, type: String(f.type) })), metadata,
      metadata_keys: Object.keys(metadata), rows });
  } catch (e) {
    process.stderr.write(`parquet-wasm failed on ${file}: ${e.stack || e}\n`);
    process.exit(1);
  }
}
process.stdout.write(JSON.stringify(results));
