//! The log as a C2SP `tlog-tiles` log under `/tlog/`: the signed checkpoint, hash tiles and
//! entry bundles (`events::tiles`), public like the checkpoint and cacheable: full tiles never
//! change, partial tiles and the checkpoint briefly.

use crate::api::*;
use events::tiles::Tile;

/// How long a full tile may be cached: it never changes.
const FULL_TILE_CACHE: &str = "public, max-age=31536000, immutable";
/// How long a partial tile may be cached (a fuller one replaces it as the log grows).
const PARTIAL_TILE_CACHE: &str = "public, max-age=5";
/// How long the checkpoint may be cached: a few seconds, as the spec asks.
const CHECKPOINT_CACHE: &str = "public, max-age=2";

/// This resource's routes.
pub(super) fn routes() -> Vec<RouteEntry> {
    vec![
        route(
            "/tlog/checkpoint",
            get(checkpoint),
            vec![op(
                "get",
                "The published checkpoint: the latest one the witness policy accepts, with the cosignatures (the latest signed one when the log has no witnesses)",
                &[],
            )
            .returns_text(200, "The signed note", "text/plain")],
        ),
        route(
            "/tlog/tile/{*path}",
            get(tile),
            vec![op(
                "get",
                "A hash tile (<L>/<N>[.p/<W>]) or an entry bundle (entries/<N>[.p/<W>]), C2SP tlog-tiles",
                &[],
            )
            .returns_bytes(200, "The tile's hashes, or the bundle's length-prefixed entries")],
        ),
    ]
}

async fn checkpoint(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let note = state
        .published_checkpoint()?
        .ok_or_else(|| ApiError::not_found("no published checkpoint yet"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, CHECKPOINT_CACHE),
        ],
        note,
    )
        .into_response())
}

async fn tile(
    State(state): State<Arc<AppState>>,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let path = format!("tile/{path}");
    let tile = Tile::parse(&path).ok_or_else(|| {
        ApiError::not_found(format!(
            "{path} is not a tile path (tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>], N in groups of three digits)"
        ))
    })?;
    let bytes = state
        .gov
        .log()
        .tile(&tile)?
        .ok_or_else(|| ApiError::not_found(format!("the log does not hold all of {path}")))?;
    let cache = if tile.is_full() {
        FULL_TILE_CACHE
    } else {
        PARTIAL_TILE_CACHE
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, cache),
        ],
        bytes,
    )
        .into_response())
}
