//! The JSON API (swarms, pieces, catalog search) and the operational
//! endpoints (`/metrics`, `/healthz`).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chunkswarm_core::metainfo::InfoHash;
use serde::Deserialize;

use crate::Tracker;
use crate::cluster::{ClusterState, RemoteSwarm};
use crate::registry::{SwarmSummary, add_remote};

/// Default and largest number of swarms listed.
const SWARMS_DEFAULT: usize = 1000;
/// Default and largest number of search results.
const SEARCH_DEFAULT: usize = 50;
const SEARCH_MAX: usize = 200;
/// The longest search query accepted.
const MAX_QUERY: usize = 256;

#[derive(Debug, Deserialize)]
pub(crate) struct SwarmsQuery {
    limit: Option<usize>,
}

/// `GET /api/swarms`: the swarms with peer and seeder counts, largest
/// first, and `total`, the number of swarms. In cluster mode they are the
/// cluster's (`"view": "cluster"`), a swarm whose members are all on other
/// nodes included; while Redis is unreachable, this node's alone
/// (`"view": "local"`, `"cluster": "redis unreachable"`).
pub(crate) async fn swarms(
    State(tracker): State<Tracker>,
    Query(q): Query<SwarmsQuery>,
) -> Response {
    let limit = q.limit.unwrap_or(SWARMS_DEFAULT).min(SWARMS_DEFAULT);
    let cluster = &tracker.inner.cluster;
    let state = cluster.state();
    if state == ClusterState::Alone {
        let (summaries, (total, _)) = {
            let registry = tracker.inner.registry();
            (registry.summaries(limit), registry.totals())
        };
        return Json(serde_json::json!({ "total": total, "swarms": summaries })).into_response();
    }
    let remote = match state {
        ClusterState::Connected => cluster.remote_swarms().await,
        _ => None,
    };
    let view = if remote.is_some() { "cluster" } else { "local" };
    let mut summaries = tracker.inner.registry().summaries(usize::MAX);
    merge_remote(&mut summaries, remote.unwrap_or_default());
    let total = summaries.len();
    summaries.truncate(limit);
    let mut answer = serde_json::json!({ "total": total, "view": view, "swarms": summaries });
    if view == "local" {
        answer["cluster"] = serde_json::json!(ClusterState::Unreachable.as_str());
    }
    Json(answer).into_response()
}

/// Adds other nodes' members to the local `summaries` (and their swarms
/// this node has no member in), then sorts them largest first.
fn merge_remote(summaries: &mut Vec<SwarmSummary>, remote: Vec<(InfoHash, RemoteSwarm)>) {
    let index: HashMap<String, usize> = summaries
        .iter()
        .enumerate()
        .map(|(i, s)| (s.info_hash.clone(), i))
        .collect();
    for (info_hash, swarm) in remote {
        let hex = info_hash.to_hex();
        let summary = match index.get(&hex) {
            Some(&i) => &mut summaries[i],
            None => {
                let piece_count = swarm
                    .members
                    .iter()
                    .find_map(|m| m.report.pieces.as_ref().map(|(count, _)| *count));
                summaries.push(SwarmSummary {
                    info_hash: hex,
                    peers: 0,
                    seeders: 0,
                    leechers: 0,
                    downloaded: 0,
                    piece_count,
                });
                let last = summaries.len() - 1;
                &mut summaries[last]
            }
        };
        summary.seeders += swarm.counts.complete;
        summary.leechers += swarm.counts.incomplete;
        summary.peers += (swarm.counts.complete + swarm.counts.incomplete) as usize;
    }
    summaries.sort_by(|a, b| b.peers.cmp(&a.peers).then(a.info_hash.cmp(&b.info_hash)));
}

#[derive(Debug, Deserialize)]
pub(crate) struct PiecesQuery {
    holders: Option<bool>,
}

/// `GET /api/swarms/{info_hash}/pieces`: per piece, how many peers hold it
/// and which (`?holders=false` leaves out the which).
pub(crate) async fn pieces(
    State(tracker): State<Tracker>,
    Path(hex): Path<String>,
    Query(q): Query<PiecesQuery>,
) -> Response {
    let Some(info_hash) = InfoHash::from_hex(&hex) else {
        return (StatusCode::BAD_REQUEST, "info hash must be 40 hex digits\n").into_response();
    };
    let local = tracker.inner.registry().pieces(&info_hash);
    let remote = tracker.inner.cluster.members(info_hash).await;
    match add_remote(&info_hash, local, &remote.members) {
        Some(mut report) => {
            if q.holders == Some(false) {
                report
                    .pieces
                    .iter_mut()
                    .for_each(|p| p.holders = Vec::new());
            }
            Json(report).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such swarm\n").into_response(),
    }
}

/// `GET /api/search?q=&limit=`: the catalog, with live peer counts (the
/// cluster's in cluster mode, with `view` as in [`swarms`]).
pub(crate) async fn search(
    State(tracker): State<Tracker>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let query = params.get("q").map(String::as_str).unwrap_or_default();
    if query.len() > MAX_QUERY {
        return (StatusCode::BAD_REQUEST, "query too long\n").into_response();
    }
    let limit = params
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(SEARCH_DEFAULT)
        .min(SEARCH_MAX);
    let inner = &tracker.inner;
    let mut results = match inner.catalog.search(query, limit).await {
        Ok(results) => results,
        Err(e) => {
            tracing::warn!(error = %e, "catalog search failed");
            return (StatusCode::BAD_GATEWAY, "catalog unavailable\n").into_response();
        }
    };
    let hashes: Vec<(usize, InfoHash)> = results
        .iter()
        .enumerate()
        .filter_map(|(i, e)| Some((i, InfoHash::from_hex(e.info_hash.as_deref()?)?)))
        .collect();
    let only_hashes: Vec<InfoHash> = hashes.iter().map(|(_, ih)| *ih).collect();
    let remote = inner.cluster.remote_counts(&only_hashes).await;
    let registry = inner.registry();
    for ((i, info_hash), remote) in hashes.into_iter().zip(remote) {
        let local = registry.counts(&info_hash).unwrap_or_default();
        let counts = crate::cluster::sum(local, remote);
        if let Some(entry) = results.get_mut(i) {
            entry.peers = Some(counts.complete + counts.incomplete);
            entry.seeders = Some(counts.complete);
        }
    }
    drop(registry);
    let mut answer = serde_json::json!({ "query": query, "results": results });
    // As for `/api/swarms`: whose peers the counts are, in cluster mode.
    match inner.cluster.state() {
        ClusterState::Alone => {}
        ClusterState::Connected => answer["view"] = serde_json::json!("cluster"),
        state => {
            answer["view"] = serde_json::json!("local");
            answer["cluster"] = serde_json::json!(state.as_str());
        }
    }
    Json(answer).into_response()
}

/// `GET /metrics`: Prometheus text.
pub(crate) async fn metrics(State(tracker): State<Tracker>) -> Response {
    let text = tracker.metrics_text();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// `GET /healthz`: `ok` while serving, 503 once shutting down. In cluster
/// mode a second line tells whether swarms are shared (`cluster: connected`)
/// or this node serves its own peers only (`cluster: redis unreachable`).
pub(crate) async fn healthz(State(tracker): State<Tracker>) -> Response {
    if tracker.inner.shutting_down() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match tracker.inner.cluster.state() {
        ClusterState::Alone => "ok\n".into_response(),
        state => format!("ok\ncluster: {}\n", state.as_str()).into_response(),
    }
}
