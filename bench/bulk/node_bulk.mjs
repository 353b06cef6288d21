// @elastic/elasticsearch helpers.bulk against espipe serve --blackhole.
//   node bench/bulk/node_bulk.mjs URL N   (npm install --prefix spec/node first)
import { createRequire } from 'node:module'
const require = createRequire(new URL('../../spec/node/package.json', import.meta.url))
const { Client } = require('@elastic/elasticsearch')
const [url, nStr] = process.argv.slice(2)
const n = Number(nStr)
const p2 = (v, w = 2) => String(v).padStart(w, '0')
function doc (i) {
  return {
    '@timestamp': `2026-01-${p2(i % 28 + 1)}T${p2(i % 24)}:${p2(i % 60)}:${p2((i * 7) % 60)}.${p2(i % 1000, 3)}Z`,
    host: { name: `web-${i % 50}`, ip: `10.${i % 256}.${Math.floor(i / 256) % 256}.${i % 200}` },
    http: { method: 'GET', status: 200 + (i % 5), bytes: i * 37 % 100000 },
    url: `/api/v1/items/${i}?page=${i % 10}&sort=desc`,
    user_agent: 'Mozilla/5.0 (X11; Linux x86_64) bench/1.0',
    message: `request ${i} served in ${i % 500} ms by upstream pool-${i % 8}`,
    tags: ['bench', 'web', i % 2 === 0 ? 'even' : 'odd'],
    latency_ms: (i % 500) + 0.25
  }
}
async function * docs () { for (let i = 1; i <= n; i++) yield { id: String(i), doc: doc(i) } }
const client = new Client({ node: url })
const t0 = process.hrtime.bigint()
const stats = await client.helpers.bulk({
  datasource: docs(), concurrency: 4, flushBytes: 5000000,
  onDocument: (d) => [{ index: { _index: 'bench', _id: d.id } }, d.doc],
  onDrop: () => { throw new Error('dropped') }
})
const dt = Number(process.hrtime.bigint() - t0) / 1e9
if (stats.successful !== n) throw new Error('not all indexed')
console.log(`node_bulk ${n} ${dt.toFixed(2)} ${Math.round(n / dt)}`)
