// @opensearch-project/opensearch 2 (npm) against `espipe serve --flavor
// opensearch-2`. Run by spec/conformance/run.sh with OPENSEARCH_URL set:
// node --test --test-reporter=tap. OpenSearch's own client, its own point in
// time API: every test checks what comes back against what it sent.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'

const require = createRequire(new URL('../node/package.json', import.meta.url))
const { Client } = require('@opensearch-project/opensearch')

const client = new Client({ node: process.env.OPENSEARCH_URL || 'http://127.0.0.1:9200', maxRetries: 0, requestTimeout: 30000 })
const INDEX = 'os-docs'
const N = 500

after(async () => {
  await client.indices.delete({ index: INDEX }, { ignore: [404] })
  await client.close()
})

test('opensearch info says OpenSearch 2', async () => {
  const { body } = await client.info()
  assert.equal(body.version.distribution, 'opensearch')
  assert.match(body.version.number, /^2\.\d+\.\d+$/)
})

test('opensearch helpers.bulk indexes every document', async () => {
  await client.indices.delete({ index: INDEX }, { ignore: [404] })
  await client.indices.create({ index: INDEX, body: { settings: { number_of_shards: 3 } } })
  const docs = Array.from({ length: N }, (_, i) => ({ id: String(i), n: i }))
  const dropped = []
  const stats = await client.helpers.bulk({
    datasource: docs,
    onDocument: (d) => [{ index: { _index: INDEX, _id: d.id } }, { n: d.n }],
    onDrop: (d) => dropped.push(d),
    flushBytes: 5000,
    refreshOnCompletion: INDEX
  })
  assert.deepEqual(dropped, [])
  assert.equal(stats.successful, N)
  const { body } = await client.count({ index: INDEX })
  assert.equal(body.count, N)
})

test('opensearch get and search read back what was written', async () => {
  const { body: got } = await client.get({ index: INDEX, id: '42' })
  assert.deepEqual(got._source, { n: 42 })
  const { body } = await client.search({ index: INDEX, body: { query: { range: { n: { gte: 490 } } }, size: 20 } })
  assert.equal(body.hits.total.value, 10)
  assert.deepEqual(body.hits.hits.map(h => h._source.n).sort((a, b) => a - b), [490, 491, 492, 493, 494, 495, 496, 497, 498, 499])
})

test('opensearch point in time: create, page with search_after on _doc then _id, delete', async () => {
  const { body: pit } = await client.createPit({ index: INDEX, keep_alive: '1m' })
  assert.equal(typeof pit.pit_id, 'string')
  const seen = new Set()
  let after
  for (;;) {
    const { body } = await client.search({
      body: { size: 37, pit: { id: pit.pit_id, keep_alive: '1m' }, sort: ['_doc', '_id'], ...(after ? { search_after: after } : {}) }
    })
    const hits = body.hits.hits
    if (hits.length === 0) break
    for (const h of hits) {
      assert.equal(seen.has(h._id), false, `twice: ${h._id}`)
      seen.add(h._id)
    }
    after = hits[hits.length - 1].sort
  }
  assert.equal(seen.size, N)
  const { body: deleted } = await client.deletePit({ body: { pit_id: [pit.pit_id] } })
  assert.deepEqual(deleted.pits, [{ successful: true, pit_id: pit.pit_id }])
})

test('opensearch has no _shard_doc (before 3.3): the sort is refused', async () => {
  await assert.rejects(client.search({ index: INDEX, body: { sort: ['_shard_doc'] } }),
    (e) => e.meta.statusCode === 400 && /No mapping found for \[_shard_doc\]/.test(JSON.stringify(e.meta.body)))
})
