# The seed-000 recipe, the peer of `espipe reindex --workers 2 --transform`:
# elasticsearch-py 7.17 helpers.scan, the transform (transform.py, the same
# work as transform.lua) in a multiprocessing Pool(2), and
# helpers.parallel_bulk into the destination.
#   /usr/bin/python3 bench/scale/py_scale.py SRC_URL SRC DEST_URL DEST
import os
import sys
from multiprocessing import Pool

from elasticsearch import Elasticsearch, helpers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import transform  # noqa: E402

CHUNK = 1000


def transform_chunk(hits):
    return [(h["_id"], transform.transform(h["_source"])) for h in hits]


def chunks(hits):
    chunk = []
    for h in hits:
        chunk.append(h)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def main():
    src_url, src, dest_url, dest = sys.argv[1:5]
    source, target = Elasticsearch([src_url]), Elasticsearch([dest_url])
    hits = helpers.scan(source, index=src, size=CHUNK, scroll="5m")
    with Pool(2) as pool:
        actions = ({"_index": dest, "_id": i, "_source": doc}
                   for docs in pool.imap(transform_chunk, chunks(hits)) for i, doc in docs)
        ok = failed = 0
        for good, _ in helpers.parallel_bulk(target, actions, thread_count=2, chunk_size=CHUNK,
                                             raise_on_error=False):
            ok, failed = ok + good, failed + (not good)
    print("py scale: ok=%d failed=%d" % (ok, failed), file=sys.stderr)


if __name__ == "__main__":
    main()
