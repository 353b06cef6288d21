# elasticsearch-py 7.17 helpers.reindex, the peer of `espipe reindex`.
#   /usr/bin/python3 bench/reindex/py_reindex.py URL SRC DEST
import sys
from elasticsearch import Elasticsearch, helpers
es = Elasticsearch([sys.argv[1]])
ok, errors = helpers.reindex(es, sys.argv[2], sys.argv[3], chunk_size=1000, scroll="5m")
print("py reindex: ok=%s errors=%s" % (ok, errors), file=sys.stderr)
