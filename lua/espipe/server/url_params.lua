-- The URL parameters each API accepts (Elasticsearch 8.15's REST API
-- definitions), so that an unknown one is ES's 400 "request [...] contains
-- unrecognized parameter" instead of being ignored. Routes not listed here
-- (_cat, _nodes, _espipe, ...) are not checked.
local es = require("espipe.server.es_errors")

local M = {}

local COMMON = "pretty human error_trace filter_path format source source_content_type"
local INDEX_OPTIONS = "allow_no_indices expand_wildcards ignore_unavailable ignore_throttled"
local SOURCE = "_source _source_excludes _source_includes"
local QUERY_STRING = "analyze_wildcard analyzer default_operator df lenient q"

local APIS = {
  ["search.search"] = SOURCE .. " " .. INDEX_OPTIONS .. " " .. QUERY_STRING .. [[ allow_partial_search_results
    batched_reduce_size ccs_minimize_roundtrips docvalue_fields explain force_synthetic_source from
    include_named_queries_score max_concurrent_shard_requests min_compatible_shard_node pre_filter_shard_size
    preference request_cache rest_total_hits_as_int routing scroll search_type seq_no_primary_term size sort
    stats stored_fields suggest_field suggest_mode suggest_size suggest_text terminate_after timeout track_scores
    track_total_hits typed_keys version]],
  ["search.count"] = INDEX_OPTIONS .. " " .. QUERY_STRING .. " min_score preference routing terminate_after",
  ["search.scroll"] = "rest_total_hits_as_int scroll scroll_id",
  ["search.clear_scroll"] = "scroll_id",
  ["search.msearch"] = INDEX_OPTIONS .. [[ ccs_minimize_roundtrips max_concurrent_searches
    max_concurrent_shard_requests pre_filter_shard_size rest_total_hits_as_int search_type typed_keys
    include_named_queries_score]],
  ["search.open_pit"] = [[expand_wildcards ignore_unavailable keep_alive preference routing
    allow_partial_search_results]],
  ["search.close_pit"] = "",
  ["docs.get"] = SOURCE .. [[ force_synthetic_source preference realtime refresh routing stored_fields version
    version_type]],
  ["docs.source"] = SOURCE .. " preference realtime refresh routing version version_type",
  ["docs.mget"] = SOURCE .. " force_synthetic_source preference realtime refresh routing stored_fields",
  ["docs.index"] = [[if_primary_term if_seq_no op_type pipeline refresh require_alias require_data_stream routing
    timeout version version_type wait_for_active_shards]],
  ["docs.delete"] = "if_primary_term if_seq_no refresh routing timeout version version_type wait_for_active_shards",
  ["docs.update"] = SOURCE .. [[ if_primary_term if_seq_no lang refresh require_alias retry_on_conflict routing
    timeout wait_for_active_shards]],
  ["bulk.bulk"] = SOURCE .. [[ list_executed_pipelines pipeline refresh require_alias require_data_stream routing
    timeout type wait_for_active_shards]],
  ["by_query.delete_by_query"] = INDEX_OPTIONS .. " " .. QUERY_STRING .. [[ conflicts from max_docs preference
    refresh request_cache requests_per_second routing scroll scroll_size search_timeout search_type slices sort
    stats terminate_after timeout version wait_for_active_shards wait_for_completion]],
  ["by_query.get_task"] = "timeout wait_for_completion",
  -- include_type_name: 6.7 to 7.x (espipe.server.doc_types reads it on 6.x)
  ["indices.create"] = "include_type_name master_timeout timeout wait_for_active_shards",
  ["indices.delete"] = INDEX_OPTIONS .. " master_timeout timeout",
  ["indices.get"] = INDEX_OPTIONS .. " features flat_settings include_defaults include_type_name local master_timeout",
  ["indices.get_mapping"] = INDEX_OPTIONS .. " include_type_name local master_timeout",
  ["indices.put_mapping"] = INDEX_OPTIONS .. " master_timeout timeout write_index_only",
  ["indices.get_settings"] = INDEX_OPTIONS .. " flat_settings include_defaults local master_timeout",
  ["indices.put_settings"] = INDEX_OPTIONS .. " flat_settings master_timeout preserve_existing reopen timeout",
  ["indices.refresh"] = INDEX_OPTIONS,
  ["indices.get_alias"] = INDEX_OPTIONS .. " local",
  ["indices.put_alias"] = "master_timeout timeout",
  ["indices.delete_alias"] = "master_timeout timeout",
  ["indices.update_aliases"] = "master_timeout timeout",
  ["indices.close"] = INDEX_OPTIONS .. " master_timeout timeout wait_for_active_shards",
  ["stats.stats"] = INDEX_OPTIONS .. [[ completion_fields fielddata_fields fields forbid_closed_indices groups
    include_segment_file_sizes include_unloaded_segments level]],
  ["info.capabilities"] = "method path parameters capabilities local_only",
  ["cluster.get_settings"] = "flat_settings include_defaults local master_timeout timeout",
  ["cluster.put_settings"] = "flat_settings master_timeout timeout",
  ["info.health"] = [[expand_wildcards level local master_timeout timeout wait_for_active_shards wait_for_events
    wait_for_no_initializing_shards wait_for_no_relocating_shards wait_for_nodes wait_for_status]],
}
APIS["docs.create"] = APIS["docs.index"]
APIS["docs.index_auto"] = APIS["docs.index"]
APIS["by_query.update_by_query"] = APIS["by_query.delete_by_query"] .. " pipeline version_type"
APIS["indices.exists"] = APIS["indices.get"]
APIS["indices.open"] = APIS["indices.close"]

local sets = {}
for key, list in pairs(APIS) do
  local set = {}
  for p in (COMMON .. " " .. list):gmatch("%S+") do set[p] = true end
  sets[key] = set
end

-- check(module, fn, path, args) -> nil | status, body
function M.check(module, fn, path, args)
  local set = sets[module .. "." .. fn]
  if not set then return nil end
  local bad = {}
  for k in pairs(args) do
    if not set[k] then bad[#bad + 1] = k end
  end
  if #bad == 0 then return nil end
  table.sort(bad)
  local parts = {}
  for i, k in ipairs(bad) do parts[i] = "[" .. k .. "]" end
  return es.bad_request("request [" .. path .. "] contains unrecognized parameter" .. (#bad > 1 and "s" or "")
    .. ": " .. table.concat(parts, ", "))
end

return M
