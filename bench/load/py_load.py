# elasticsearch-py 7.17 helpers.bulk reading an NDJSON file, as espipe load does.
#   /usr/bin/python3 bench/load/py_load.py URL FILE plain|id|pattern
# plain: each line goes as it is (helpers.bulk sends a str source untouched);
# id: the line decoded for its request_id; pattern: also for the month of its
# @timestamp (index logs-YYYY.MM), the raw line still the source.
import json, sys
from elasticsearch import Elasticsearch, helpers

url, path, mode = sys.argv[1], sys.argv[2], sys.argv[3]

def actions():
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if mode == "plain":
                yield line
                continue
            doc = json.loads(line)
            action = {"_index": "bench", "_id": doc["request_id"], "_source": line}
            if mode == "pattern":
                ts = doc["@timestamp"]
                action["_index"] = "logs-%s.%s" % (ts[0:4], ts[5:7])
            yield action

es = Elasticsearch([url])
ok, errs = helpers.bulk(es, actions(), index="bench", chunk_size=1000, max_chunk_bytes=5 * 1024 * 1024)
print("py_%s ok=%d errors=%s" % (mode, ok, errs))
