// @elastic/elasticsearch 8 (npm) against `espipe serve`. Run by
// spec/conformance/run.sh with ES_URL set: node --test --test-reporter=tap.
// Every test checks what comes back against what it sent.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'

const require = createRequire(new URL('../node/package.json', import.meta.url))
const { Client, errors } = require('@elastic/elasticsearch')

const client = new Client({ node: process.env.ES_URL || 'http://127.0.0.1:9200', maxRetries: 0, requestTimeout: 30000 })
const INDEX = 'node-docs'
const N = 700
const doc = (i) => ({ n: i, name: `doc ${i}`, odd: i % 2 === 1, tags: [`t${i % 4}`], at: 1700000000000 + i * 1000 })

after(async () => {
  await client.indices.delete({ index: [INDEX, 'node-bulk-fail'] }, { ignore: [404] })
  await client.close()
})

async function status (promise) {
  try {
    await promise
  } catch (e) {
    if (e instanceof errors.ResponseError) return { status: e.meta.statusCode, body: e.meta.body }
    throw e
  }
  return { status: 200 }
}

test('node info reports a version (product check passes)', async () => {
  const info = await client.info()
  assert.match(info.version.number, /^\d+\.\d+\.\d+/)
})

test('node indices.create with mappings', async () => {
  await client.indices.delete({ index: [INDEX, 'node-bulk-fail'] }, { ignore: [404] })
  const r = await client.indices.create({
    index: INDEX,
    settings: { number_of_shards: 2, number_of_replicas: 0 },
    mappings: { properties: { n: { type: 'long' }, name: { type: 'text' }, odd: { type: 'boolean' }, tags: { type: 'keyword' }, at: { type: 'date' } } }
  })
  assert.equal(r.acknowledged, true)
  assert.equal(r.index, INDEX)
  assert.equal(await client.indices.exists({ index: INDEX }), true)
})

test('node helpers.bulk indexes every document', async () => {
  const docs = Array.from({ length: N }, (_, i) => ({ id: String(i), ...doc(i) }))
  const dropped = []
  const stats = await client.helpers.bulk({
    datasource: docs,
    onDocument: (d) => { const { id, ...rest } = d; return [{ index: { _index: INDEX, _id: id } }, rest] },
    onDrop: (d) => dropped.push(d),
    flushBytes: 20000,
    concurrency: 3,
    refreshOnCompletion: INDEX
  })
  assert.deepEqual(dropped, [])
  assert.equal(stats.total, N)
  assert.equal(stats.successful, N)
  assert.equal(stats.failed, 0)
  assert.equal((await client.count({ index: INDEX })).count, N)
})

test('node helpers.bulk reports failed items through onDrop', async () => {
  await client.indices.create({ index: 'node-bulk-fail' })
  await client.index({ index: 'node-bulk-fail', id: 'taken', document: { a: 1 } })
  const dropped = []
  const stats = await client.helpers.bulk({
    datasource: [{ id: 'taken' }, { id: 'free' }],
    onDocument: (d) => ({ create: { _index: 'node-bulk-fail', _id: d.id } }),
    onDrop: (d) => dropped.push(d)
  })
  assert.equal(stats.total, 2)
  assert.equal(stats.successful, 1)
  assert.equal(stats.failed, 1)
  assert.equal(dropped.length, 1)
  assert.equal(dropped[0].status, 409)
  assert.equal(dropped[0].error.type, 'version_conflict_engine_exception')
  assert.equal(dropped[0].document.id, 'taken')
})

test('node get returns the source sent', async () => {
  const r = await client.get({ index: INDEX, id: '41' })
  assert.equal(r.found, true)
  assert.equal(r._id, '41')
  assert.equal(r._version, 1)
  assert.deepEqual(r._source, doc(41))
  const missing = await status(client.get({ index: INDEX, id: 'nope' }))
  assert.equal(missing.status, 404)
  assert.equal(missing.body.found, false)
})

test('node index, update and delete move the version', async () => {
  const c = await client.index({ index: INDEX, id: 'v', document: { a: 1 }, refresh: true })
  assert.equal(c.result, 'created')
  assert.equal(c._version, 1)
  const u = await client.update({ index: INDEX, id: 'v', doc: { b: 2 } })
  assert.equal(u.result, 'updated')
  assert.equal(u._version, 2)
  assert.deepEqual((await client.get({ index: INDEX, id: 'v' }))._source, { a: 1, b: 2 })
  const noop = await client.update({ index: INDEX, id: 'v', doc: { b: 2 } })
  assert.equal(noop.result, 'noop')
  const stale = await status(client.index({ index: INDEX, id: 'v', document: { a: 9 }, if_seq_no: c._seq_no, if_primary_term: c._primary_term }))
  assert.equal(stale.status, 409)
  const d = await client.delete({ index: INDEX, id: 'v', refresh: true })
  assert.equal(d.result, 'deleted')
  assert.equal(d._version, 3)
  assert.equal(await client.exists({ index: INDEX, id: 'v' }), false)
  assert.equal((await client.count({ index: INDEX })).count, N)
})

test('node search with a query, sort and search_after', async () => {
  const r = await client.search({ index: INDEX, query: { range: { n: { gte: 100, lt: 110 } } }, sort: [{ n: 'desc' }], size: 4 })
  assert.equal(r.hits.total.value, 10)
  assert.deepEqual(r.hits.hits.map((h) => h._id), ['109', '108', '107', '106'])
  const next = await client.search({
    index: INDEX,
    query: { range: { n: { gte: 100, lt: 110 } } },
    sort: [{ n: 'desc' }],
    size: 4,
    search_after: r.hits.hits[3].sort
  })
  assert.deepEqual(next.hits.hits.map((h) => h._id), ['105', '104', '103', '102'])
  const odd = await client.count({ index: INDEX, query: { bool: { filter: [{ term: { odd: true } }, { terms: { tags: ['t1', 't3'] } }] } } })
  assert.equal(odd.count, N / 2)
})

test('node helpers.scrollDocuments yields every document once', async () => {
  const seen = new Map()
  for await (const d of client.helpers.scrollDocuments({ index: INDEX, size: 90, query: { match_all: {} } })) {
    assert.equal(seen.has(d.n), false, `duplicate ${d.n}`)
    seen.set(d.n, d)
  }
  assert.equal(seen.size, N)
  assert.deepEqual(seen.get(650), doc(650))
})

test('node helpers.scrollSearch pages through a query', async () => {
  let pages = 0
  const ids = []
  for await (const page of client.helpers.scrollSearch({ index: INDEX, size: 25, query: { range: { n: { lt: 60 } } }, sort: ['_doc'] })) {
    pages++
    assert.equal(page.body.hits.total.value, 60)
    for (const h of page.body.hits.hits) ids.push(Number(h._id))
  }
  assert.equal(pages, 3)
  assert.deepEqual(ids.sort((a, b) => a - b), Array.from({ length: 60 }, (_, i) => i))
})

test('node errors carry the ES error envelope', async () => {
  const r = await status(client.search({ index: INDEX, query: { no_such_query: {} } }))
  assert.equal(r.status, 400)
  assert.equal(r.body.error.type, 'parsing_exception')
  const m = await status(client.search({ index: 'node-no-such-index' }))
  assert.equal(m.status, 404)
  assert.equal(m.body.error.type, 'index_not_found_exception')
})

test('node point in time with search_after pages through everything', async () => {
  const pit = await client.openPointInTime({ index: INDEX, keep_alive: '1m' })
  assert.equal(typeof pit.id, 'string')
  const seen = new Set()
  let after
  let pitId = pit.id
  for (;;) {
    const r = await client.search({ pit: { id: pitId, keep_alive: '1m' }, size: 150, sort: [{ n: 'asc' }], ...(after ? { search_after: after } : {}) })
    pitId = r.pit_id || pitId
    if (r.hits.hits.length === 0) break
    for (const h of r.hits.hits) {
      assert.equal(seen.has(h._id), false, `duplicate ${h._id}`)
      seen.add(h._id)
    }
    after = r.hits.hits[r.hits.hits.length - 1].sort
  }
  assert.equal(seen.size, N)
  const closed = await client.closePointInTime({ id: pitId })
  assert.equal(closed.succeeded, true)
  const again = await status(client.closePointInTime({ id: pitId }))
  assert.equal(again.status, 404)
})

test('node sliced scrolls are disjoint and cover the index', async () => {
  const all = new Set()
  for (let id = 0; id < 3; id++) {
    for await (const d of client.helpers.scrollDocuments({ index: INDEX, size: 100, slice: { id, max: 3 }, query: { match_all: {} } })) {
      assert.equal(all.has(d.n), false, `doc ${d.n} in two slices`)
      all.add(d.n)
    }
  }
  assert.equal(all.size, N)
})

test('node mget and exists', async () => {
  const r = await client.mget({ index: INDEX, ids: ['1', 'missing', '2'] })
  assert.deepEqual(r.docs.map((d) => d.found), [true, false, true])
  assert.deepEqual(r.docs[2]._source, doc(2))
  assert.equal(await client.exists({ index: INDEX, id: '1' }), true)
  assert.equal(await client.exists({ index: INDEX, id: 'missing' }), false)
})
