// Test-only: run SQL statements through DuckDB and print their results as JSON.
//   node spec/support/duckdb_query.mjs < statements.json
// stdin: a JSON array of SQL strings. stdout: a JSON array with, per
// statement, an array of row objects. Values use DuckDB's JSON forms
// (BIGINT and HUGEINT as strings, so no precision is lost on the way).
// Exit 2 when @duckdb/node-api cannot be loaded, 1 when a statement fails.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeDir = path.resolve(here, '..', 'node');

let api;
try {
  const require = createRequire(path.join(nodeDir, 'package.json'));
  api = await import(require.resolve('@duckdb/node-api'));
} catch (e) {
  process.stderr.write(`cannot load @duckdb/node-api from ${nodeDir}/node_modules `
    + `(run: npm install --prefix spec/node): ${e.message}\n`);
  process.exit(2);
}

let input = '';
for await (const chunk of process.stdin) input += chunk;
const statements = JSON.parse(input);

const instance = await api.DuckDBInstance.create(':memory:');
const con = await instance.connect();
const results = [];
for (const sql of statements) {
  try {
    const reader = await con.runAndReadAll(sql);
    results.push(reader.getRowObjectsJson());
  } catch (e) {
    process.stderr.write(`DuckDB failed on: ${sql}\n${e.message}\n`);
    process.exit(1);
  }
}
process.stdout.write(JSON.stringify(results));
