"""Debian's elasticsearch-py 7.17 against `espipe serve`, printing TAP.

Run by spec/conformance/run.sh with ES_URL set; every test checks what the
server returns against what the test sent (counts, ids, sources, versions).
"""
import os
import sys
import traceback
import warnings

from elasticsearch import Elasticsearch, helpers
from elasticsearch.exceptions import ConflictError, NotFoundError, RequestError

# the 7.17 client nags about its own body= style; server warnings still show
warnings.filterwarnings("ignore", category=DeprecationWarning, module="elasticsearch")
warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*'body' parameter")

ES_URL = os.environ.get("ES_URL", "http://127.0.0.1:9200")
es = Elasticsearch([ES_URL], timeout=30, max_retries=0)

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def check(cond, what, got=None):
    if not cond:
        raise AssertionError(what + ("" if got is None else ": got %r" % (got,)))


def eq(got, expected, what):
    if got != expected:
        raise AssertionError("%s: expected %r, got %r" % (what, expected, got))


def doc(i):
    return {"n": i, "name": "doc %d" % i, "even": i % 2 == 0,
            "tags": ["t%d" % (i % 3), "all"], "nested": {"v": i * 10}}


SRC = "py-src"
DST = "py-dst"
N = 600


@test
def info_reports_an_elasticsearch_version():
    info = es.info()
    check("number" in info["version"], "version.number in GET /", info)


@test
def create_index_with_mappings_then_exists():
    for name in (SRC, DST, "py-mapping", "py-par", "py-stream"):
        es.indices.delete(index=name, ignore=[404])
    r = es.indices.create(index=SRC, body={
        "settings": {"number_of_shards": 2, "number_of_replicas": 0},
        "mappings": {"properties": {"n": {"type": "long"}, "name": {"type": "text"},
                                    "even": {"type": "boolean"}, "tags": {"type": "keyword"}}}})
    eq(r.get("acknowledged"), True, "acknowledged")
    eq(r.get("index"), SRC, "index")
    eq(es.indices.exists(index=SRC), True, "exists after create")
    eq(es.indices.exists(index="py-never-created"), False, "exists for a missing index")


@test
def create_existing_index_is_a_400():
    try:
        es.indices.create(index=SRC)
    except RequestError as e:
        eq(e.status_code, 400, "status")
        eq(e.error, "resource_already_exists_exception", "error type")
        return
    raise AssertionError("creating an existing index did not fail")


@test
def helpers_bulk_indexes_every_document():
    actions = ({"_index": SRC, "_id": str(i), "_source": doc(i)} for i in range(N))
    ok, errors = helpers.bulk(es, actions, chunk_size=128)
    eq(ok, N, "acknowledged count")
    eq(errors, [], "errors")
    es.indices.refresh(index=SRC)
    eq(es.count(index=SRC)["count"], N, "count after refresh")


@test
def get_returns_the_source_sent():
    r = es.get(index=SRC, id="17")
    eq(r["found"], True, "found")
    eq(r["_id"], "17", "_id")
    eq(r["_version"], 1, "_version")
    eq(r["_source"], doc(17), "_source")
    check(isinstance(r.get("_seq_no"), int), "_seq_no is an integer", r)


@test
def get_missing_document_and_index_are_404():
    try:
        es.get(index=SRC, id="no-such-id")
        raise AssertionError("missing document did not raise")
    except NotFoundError as e:
        eq(e.status_code, 404, "status")
        eq(e.info.get("found"), False, "found")
    try:
        es.get(index="py-no-such-index", id="1")
        raise AssertionError("missing index did not raise")
    except NotFoundError as e:
        eq(e.error, "index_not_found_exception", "error type")


@test
def mget_returns_docs_in_request_order():
    r = es.mget(index=SRC, body={"ids": ["3", "nope", "5"]})
    docs = r["docs"]
    eq([d["_id"] for d in docs], ["3", "nope", "5"], "ids in order")
    eq([d["found"] for d in docs], [True, False, True], "found flags")
    eq(docs[0]["_source"], doc(3), "first source")
    eq(docs[2]["_source"], doc(5), "third source")


@test
def update_merges_and_bumps_the_version_then_noops():
    r = es.update(index=SRC, id="20", body={"doc": {"name": "renamed", "extra": [1, 2]}})
    eq(r["result"], "updated", "result")
    eq(r["_version"], 2, "_version")
    got = es.get(index=SRC, id="20")
    expected = doc(20)
    expected.update({"name": "renamed", "extra": [1, 2]})
    eq(got["_source"], expected, "merged source")
    eq(got["_version"], 2, "version seen by get")
    r = es.update(index=SRC, id="20", body={"doc": {"name": "renamed"}})
    eq(r["result"], "noop", "identical update")
    eq(r["_version"], 2, "noop keeps the version")


@test
def update_with_upsert_creates_a_missing_document():
    r = es.update(index=SRC, id="upserted", body={"doc": {"a": 1}, "upsert": {"a": 0, "b": "x"}})
    eq(r["result"], "created", "result")
    eq(es.get(index=SRC, id="upserted")["_source"], {"a": 0, "b": "x"}, "upsert body stored")
    try:
        es.update(index=SRC, id="never", body={"doc": {"a": 1}})
        raise AssertionError("update of a missing doc did not raise")
    except NotFoundError as e:
        eq(e.error, "document_missing_exception", "error type")


@test
def create_conflicts_with_an_existing_id():
    try:
        es.create(index=SRC, id="1", body={"x": 1})
        raise AssertionError("create over an existing id did not raise")
    except ConflictError as e:
        eq(e.status_code, 409, "status")
        eq(e.error, "version_conflict_engine_exception", "error type")


@test
def index_twice_gives_created_then_updated():
    r1 = es.index(index=SRC, id="twice", body={"v": 1})
    r2 = es.index(index=SRC, id="twice", body={"v": 2})
    eq((r1["result"], r1["_version"]), ("created", 1), "first index")
    eq((r2["result"], r2["_version"]), ("updated", 2), "second index")
    check(r2["_seq_no"] > r1["_seq_no"], "seq_no grows", (r1["_seq_no"], r2["_seq_no"]))
    eq(es.get(index=SRC, id="twice")["_source"], {"v": 2}, "latest source")


@test
def delete_removes_a_document():
    r = es.delete(index=SRC, id="twice")
    eq(r["result"], "deleted", "result")
    eq(r["_version"], 3, "delete bumps the version")
    eq(es.exists(index=SRC, id="twice"), False, "exists after delete")
    try:
        es.delete(index=SRC, id="twice")
        raise AssertionError("second delete did not raise")
    except NotFoundError as e:
        eq(e.info.get("result"), "not_found", "result of a second delete")
    es.delete(index=SRC, id="upserted")
    es.indices.refresh(index=SRC)
    eq(es.count(index=SRC)["count"], N, "count back to N")


@test
def count_and_search_with_queries():
    evens = es.count(index=SRC, body={"query": {"term": {"even": True}}})["count"]
    eq(evens, N // 2, "count of even docs")
    r = es.search(index=SRC, body={"query": {"range": {"n": {"gte": 10, "lt": 20}}},
                                   "sort": [{"n": "asc"}], "size": 50})
    eq(r["hits"]["total"]["value"], 10, "hits.total")
    eq([h["_id"] for h in r["hits"]["hits"]], [str(i) for i in range(10, 20)], "sorted ids")
    eq([h["sort"] for h in r["hits"]["hits"]], [[i] for i in range(10, 20)], "sort values")
    r = es.search(index=SRC, body={"query": {"bool": {
        "must": [{"match": {"name": {"query": "DOC 42", "operator": "and"}}}],
        "filter": [{"term": {"tags": "t0"}}]}}})
    eq([h["_id"] for h in r["hits"]["hits"]], ["42"], "match + filter")


@test
def sources_round_trip_byte_exact_values():
    weird = {"big": 12345678901234567890, "beyond_double": 9007199254740993, "f": 0.1, "tiny": 1e-7,
             "neg": -0.5, "text": "Γειά σου 🙂 a/b \"q\" \\ \u0001", "empty_list": [], "empty_obj": {},
             "nothing": None, "deep": {"a": [[1, [2, []]], 3], "b": {"x": {"y": [None, True, False]}}}}
    es.index(index=SRC, id="weird", body=weird, refresh=True)
    eq(es.get(index=SRC, id="weird")["_source"], weird, "source from get")
    r = es.search(index=SRC, body={"query": {"ids": {"values": ["weird"]}}})
    eq(r["hits"]["hits"][0]["_source"], weird, "source from search")
    eq(es.mget(body={"docs": [{"_index": SRC, "_id": "weird"}]})["docs"][0]["_source"], weird,
       "source from mget")
    es.delete(index=SRC, id="weird", refresh=True)


@test
def routing_is_stored_and_used_by_get():
    r = es.index(index=SRC, id="routed", body={"r": 1}, routing="user-7")
    eq(r["result"], "created", "result")
    got = es.get(index=SRC, id="routed", routing="user-7")
    eq(got["_routing"], "user-7", "_routing in get")
    eq(got["_source"], {"r": 1}, "source")
    es.delete(index=SRC, id="routed", routing="user-7", refresh=True)


@test
def source_filtering_in_get_and_search():
    got = es.get(index=SRC, id="7", _source_includes=["name", "nested.*"])
    eq(got["_source"], {"name": "doc 7", "nested": {"v": 70}}, "get _source_includes")
    got = es.get(index=SRC, id="7", _source_excludes=["tags", "nested"])
    eq(got["_source"], {"n": 7, "name": "doc 7", "even": False}, "get _source_excludes")
    r = es.search(index=SRC, body={"_source": ["n"], "query": {"ids": {"values": ["8"]}}})
    eq(r["hits"]["hits"][0]["_source"], {"n": 8}, "search _source list")
    r = es.search(index=SRC, body={"_source": False, "query": {"ids": {"values": ["8"]}}})
    check("_source" not in r["hits"]["hits"][0], "no _source with _source: false", r["hits"]["hits"][0])


@test
def filter_path_trims_responses():
    r = es.search(index=SRC, filter_path=["hits.hits._id", "hits.total"],
                  body={"query": {"ids": {"values": ["9", "10"]}}, "sort": [{"n": "asc"}]})
    eq(set(r.keys()), {"hits"}, "top-level keys")
    eq(r["hits"]["hits"], [{"_id": "9"}, {"_id": "10"}], "hits reduced to ids")
    body = [{"create": {"_index": SRC, "_id": "1"}}, {"x": 1},
            {"index": {"_index": SRC, "_id": "fp-new"}}, {"x": 2}]
    r = es.bulk(body=body, filter_path="items.*.error")
    eq(len(r["items"]), 1, "only the failed item is left")
    eq(r["items"][0]["create"]["error"]["type"], "version_conflict_engine_exception", "its error")
    check("took" not in r and "errors" not in r, "took/errors filtered out", r)
    es.delete(index=SRC, id="fp-new", refresh=True)


@test
def total_hits_forms():
    r = es.search(index=SRC, size=0)
    eq(r["hits"]["total"], {"value": N, "relation": "eq"}, "total object")
    eq(r["hits"]["hits"], [], "size 0 gives no hits")
    r = es.search(index=SRC, size=0, rest_total_hits_as_int=True)
    eq(r["hits"]["total"], N, "total as int")
    r = es.search(index=SRC, size=0, track_total_hits=100)
    eq(r["hits"]["total"], {"value": 100, "relation": "gte"}, "track_total_hits=100")


@test
def settings_are_strings_and_can_change():
    s = es.indices.get_settings(index=SRC)[SRC]["settings"]["index"]
    eq(s["number_of_shards"], "2", "number_of_shards")
    eq(s["number_of_replicas"], "0", "number_of_replicas")
    r = es.indices.put_settings(index=SRC, body={"index": {"refresh_interval": "-1"}})
    eq(r.get("acknowledged"), True, "acknowledged")
    s = es.indices.get_settings(index=SRC)[SRC]["settings"]["index"]
    eq(s.get("refresh_interval"), "-1", "refresh_interval after put")
    es.indices.put_settings(index=SRC, body={"index": {"refresh_interval": None}})


@test
def optimistic_concurrency_with_seq_no():
    r = es.index(index=SRC, id="occ", body={"v": 1})
    r2 = es.index(index=SRC, id="occ", body={"v": 2}, if_seq_no=r["_seq_no"], if_primary_term=r["_primary_term"])
    eq(r2["_version"], 2, "conditional write")
    try:
        es.index(index=SRC, id="occ", body={"v": 3}, if_seq_no=r["_seq_no"], if_primary_term=r["_primary_term"])
        raise AssertionError("stale if_seq_no did not conflict")
    except ConflictError as e:
        eq(e.error, "version_conflict_engine_exception", "error type")
    eq(es.get(index=SRC, id="occ")["_source"], {"v": 2}, "source unchanged by the stale write")
    es.delete(index=SRC, id="occ", refresh=True)


@test
def cluster_health_is_yellow_or_green():
    h = es.cluster.health(wait_for_status="yellow", timeout="10s")
    check(h["status"] in ("yellow", "green"), "status", h)
    eq(h["timed_out"], False, "timed_out")


@test
def aliases_swap_atomically_and_resolve_in_searches():
    es.indices.update_aliases(body={"actions": [{"add": {"index": SRC, "alias": "py-alias"}}]})
    eq(es.count(index="py-alias")["count"], N, "count through the alias")
    eq(es.indices.get_alias(name="py-alias"), {SRC: {"aliases": {"py-alias": {}}}}, "get_alias")
    es.indices.create(index="py-alias-next")
    es.indices.update_aliases(body={"actions": [{"remove": {"index": SRC, "alias": "py-alias"}},
                                                {"add": {"index": "py-alias-next", "alias": "py-alias"}}]})
    eq(es.count(index="py-alias")["count"], 0, "count after the swap")
    eq(list(es.indices.get_alias(name="py-alias").keys()), ["py-alias-next"], "alias target after swap")
    es.indices.delete(index="py-alias-next")


@test
def from_and_size_page_a_sorted_search():
    r = es.search(index=SRC, body={"sort": [{"n": "asc"}], "from": 30, "size": 5, "query": {"match_all": {}}})
    eq([h["_id"] for h in r["hits"]["hits"]], [str(i) for i in range(30, 35)], "page 7 of 5")


@test
def get_source_returns_the_bare_source():
    eq(es.get_source(index=SRC, id="11"), doc(11), "bare _source")


@test
def sliced_scans_partition_the_index():
    seen = []
    for sid in range(4):
        part = [h["_id"] for h in helpers.scan(es, index=SRC, size=50,
                                               query={"slice": {"id": sid, "max": 4}})]
        seen.extend(part)
    eq(len(seen), N, "hits over all slices")
    eq(len(set(seen)), N, "no document in two slices")


@test
def streaming_bulk_reports_each_item():
    es.indices.create(index="py-stream")
    actions = [{"_index": "py-stream", "_id": "a", "_source": {"k": 1}},
               {"_op_type": "create", "_index": "py-stream", "_id": "a", "_source": {"k": 2}},
               {"_op_type": "update", "_index": "py-stream", "_id": "a", "doc": {"k": 3}},
               {"_op_type": "delete", "_index": "py-stream", "_id": "missing"},
               {"_index": "py-stream", "_id": "b", "_source": {"k": 4}}]
    results = list(helpers.streaming_bulk(es, actions, raise_on_error=False,
                                          raise_on_exception=False, chunk_size=2))
    eq(len(results), len(actions), "one result per action")
    oks = [ok for ok, _ in results]
    eq(oks, [True, False, True, False, True], "ok flags")
    eq(results[1][1]["create"]["status"], 409, "conflict status")
    eq(results[3][1]["delete"]["status"], 404, "delete of a missing doc")
    eq(es.get(index="py-stream", id="a")["_source"], {"k": 3}, "final source of a")


@test
def helpers_bulk_raises_bulk_index_error_with_the_failed_items():
    actions = [{"_op_type": "create", "_index": "py-stream", "_id": "a", "_source": {}},
               {"_op_type": "create", "_index": "py-stream", "_id": "c", "_source": {}}]
    try:
        helpers.bulk(es, actions)
        raise AssertionError("BulkIndexError not raised")
    except helpers.BulkIndexError as e:
        eq(len(e.errors), 1, "failed items")
        eq(e.errors[0]["create"]["_id"], "a", "failed id")
    eq(es.exists(index="py-stream", id="c"), True, "the good item was indexed")


@test
def parallel_bulk_indexes_everything_from_threads():
    es.indices.create(index="py-par", body={"settings": {"number_of_shards": 3}})
    total = 1500
    actions = ({"_index": "py-par", "_id": "p%d" % i, "_source": {"i": i}} for i in range(total))
    results = list(helpers.parallel_bulk(es, actions, thread_count=4, chunk_size=100))
    eq(len(results), total, "results")
    eq(sum(1 for ok, _ in results if ok), total, "successful items")
    es.indices.refresh(index="py-par")
    eq(es.count(index="py-par")["count"], total, "count")


@test
def scan_returns_every_document_once():
    seen = {}
    for hit in helpers.scan(es, index=SRC, size=97, query={"query": {"match_all": {}}}):
        check(hit["_id"] not in seen, "duplicate id from scan", hit["_id"])
        seen[hit["_id"]] = hit["_source"]
    eq(len(seen), N, "documents scanned")
    eq(seen["123"], doc(123), "a scanned source")
    eq(seen["20"]["name"], "renamed", "the updated doc as updated")


@test
def scan_with_a_query_and_preserved_order():
    hits = list(helpers.scan(es, index=SRC, size=10, preserve_order=True,
                             query={"query": {"range": {"n": {"lt": 35}}}, "sort": [{"n": "desc"}]}))
    eq([h["_id"] for h in hits], [str(i) for i in range(34, -1, -1)], "ids in descending n")


@test
def scroll_is_cleared_after_scan():
    r = es.search(index=SRC, scroll="1m", size=5, body={"sort": ["_doc"]})
    sid = r["_scroll_id"]
    eq(len(r["hits"]["hits"]), 5, "first page size")
    r2 = es.scroll(scroll_id=sid, scroll="1m")
    eq(len(r2["hits"]["hits"]), 5, "second page size")
    eq(r2["hits"]["total"]["value"], N, "total on every page")
    first = set(h["_id"] for h in r["hits"]["hits"])
    check(not first & set(h["_id"] for h in r2["hits"]["hits"]), "pages are disjoint")
    c = es.clear_scroll(scroll_id=r2.get("_scroll_id", sid))
    eq(c.get("succeeded"), True, "clear succeeded")
    try:
        es.scroll(scroll_id=sid, scroll="1m")
        raise AssertionError("scroll after clear did not fail")
    except NotFoundError:
        pass


@test
def reindex_copies_all_documents():
    ok, errors = helpers.reindex(es, SRC, DST, chunk_size=200)
    eq(ok, N, "documents copied")
    es.indices.refresh(index=DST)
    eq(es.count(index=DST)["count"], N, "count in target")
    eq(es.get(index=DST, id="321")["_source"], doc(321), "a copied source")


@test
def put_mapping_then_get_mapping():
    es.indices.create(index="py-mapping", body={"mappings": {"properties": {"a": {"type": "keyword"}}}})
    r = es.indices.put_mapping(index="py-mapping", body={"properties": {"b": {"type": "long"}}})
    eq(r.get("acknowledged"), True, "acknowledged")
    m = es.indices.get_mapping(index="py-mapping")
    props = m["py-mapping"]["mappings"]["properties"]
    eq(props.get("a"), {"type": "keyword"}, "field a")
    eq(props.get("b"), {"type": "long"}, "field b")
    try:
        es.indices.put_mapping(index="py-mapping", body={"properties": {"a": {"type": "long"}}})
        raise AssertionError("changing a field type did not fail")
    except RequestError as e:
        eq(e.status_code, 400, "status")


@test
def delete_indices():
    for name in (SRC, DST, "py-mapping", "py-par", "py-stream"):
        eq(es.indices.delete(index=name).get("acknowledged"), True, "delete " + name)
        eq(es.indices.exists(index=name), False, "exists after delete " + name)


def main():
    print("1..%d" % len(TESTS))
    failed = 0
    for i, fn in enumerate(TESTS, 1):
        name = "python " + fn.__name__.replace("_", " ")
        try:
            fn()
            print("ok %d - %s" % (i, name))
        except Exception as e:  # noqa: BLE001 - every failure is reported as TAP
            failed += 1
            print("not ok %d - %s" % (i, name))
            for line in ("%s: %s" % (type(e).__name__, e)).splitlines()[:20]:
                print("# " + line)
            tb = traceback.extract_tb(e.__traceback__)
            for frame in tb[-3:]:
                print("#   at %s:%d %s" % (os.path.basename(frame.filename), frame.lineno, frame.line))
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
