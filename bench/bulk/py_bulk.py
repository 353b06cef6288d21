# elasticsearch-py 7.17 helpers.bulk / parallel_bulk against espipe serve --blackhole.
#   /usr/bin/python3 bench/bulk/py_bulk.py URL N bulk|parallel
import sys, time
from elasticsearch import Elasticsearch, helpers

url, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def doc(i):
    return {
        "@timestamp": "2026-01-%02dT%02d:%02d:%02d.%03dZ" % (i % 28 + 1, i % 24, i % 60, (i * 7) % 60, i % 1000),
        "host": {"name": "web-%d" % (i % 50), "ip": "10.%d.%d.%d" % (i % 256, (i // 256) % 256, i % 200)},
        "http": {"method": "GET", "status": 200 + (i % 5), "bytes": i * 37 % 100000},
        "url": "/api/v1/items/%d?page=%d&sort=desc" % (i, i % 10),
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) bench/1.0",
        "message": "request %d served in %d ms by upstream pool-%d" % (i, i % 500, i % 8),
        "tags": ["bench", "web", "even" if i % 2 == 0 else "odd"],
        "latency_ms": (i % 500) + 0.25,
    }

def actions():
    for i in range(1, n + 1):
        yield {"_index": "bench", "_id": str(i), "_source": doc(i)}

es = Elasticsearch([url])
t0 = time.monotonic()
if mode == "bulk":
    ok, errs = helpers.bulk(es, actions(), chunk_size=5000, max_chunk_bytes=5 * 1024 * 1024)
    assert ok == n, (ok, errs)
else:
    ok = 0
    for success, _ in helpers.parallel_bulk(es, actions(), thread_count=4, chunk_size=5000,
                                            max_chunk_bytes=5 * 1024 * 1024):
        ok += success
    assert ok == n
dt = time.monotonic() - t0
print("py_%s %d %.2f %.0f" % (mode, n, dt, n / dt))
