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
use crate::cluster::ClusterState;
use crate::registry::add_remote;

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

/// `GET /api/swarms`: this node's swarms with peer and seeder counts (of
/// the whole cluster, in cluster mode), largest first.
pub(crate) async fn swarms(
    State(tracker): State<Tracker>,
    Query(q): Query<SwarmsQuery>,
) -> Response {
    let limit = q.limit.unwrap_or(SWARMS_DEFAULT).min(SWARMS_DEFAULT);
    let (mut summaries, (total, _)) = {
        let registry = tracker.inner.registry();
        (registry.summaries(limit), registry.totals())
    };
    // In a cluster, the counts of these swarms include other nodes' members.
    let hashes: Vec<InfoHash> = summaries
        .iter()
        .filter_map(|s| InfoHash::from_hex(&s.info_hash))
        .collect();
    let remote = tracker.inner.cluster.remote_counts(&hashes).await;
    for (summary, remote) in summaries.iter_mut().zip(remote) {
        summary.seeders += remote.complete;
        summary.leechers += remote.incomplete;
        summary.peers += (remote.complete + remote.incomplete) as usize;
    }
    Json(serde_json::json!({ "total": total, "swarms": summaries })).into_response()
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

/// `GET /api/search?q=&limit=`: the catalog, with live peer counts.
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
    Json(serde_json::json!({ "query": query, "results": results })).into_response()
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
