//! `trustledger witness serve`: a C2SP `tlog-witness` for auditors to run beside a log they do
//! not operate. For each log it is told to trust (origin and checkpoint key) it keeps the latest
//! tree head it cosigned, cosigns only checkpoints consistent with it, and keeps every validly
//! signed checkpoint it refused (a rollback or a fork is proof of the log's misbehaviour).
//!
//! - `POST /add-checkpoint`: the spec's request and answers (200 cosignature lines; 400, 403,
//!   404, 409 with `text/x.tlog.size`, 422 as plain text).
//! - `GET /<hex SHA-256 of the origin>/checkpoint`: the latest checkpoint it cosigned, with the
//!   log's signature and its own cosignature.
//!
//! The check and the update are one step under a lock, and the new head is synced to disk
//! before the cosignature leaves.

use crate::data_dir::write_key_file;
use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use events::checkpoint::NoteVerifier;
use events::cosignature::{CosignatureVerifier, Cosigner};
use events::witness::{self, AddCheckpoint, Refusal, TreeHead};
use events::Digest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The key file in a witness's data directory.
pub const KEY_FILE: &str = "witness-key";

/// A witness: its key, the logs it trusts, and what it has cosigned.
pub struct Witness {
    cosigner: Cosigner,
    /// Each trusted origin's checkpoint keys (more than one across a key rotation).
    logs: BTreeMap<String, Vec<NoteVerifier>>,
    heads: sled::Tree,
    refused: sled::Tree,
    db: sled::Db,
    /// Check-and-update is atomic: two requests never both pass against the same head.
    updating: Mutex<()>,
}

/// What the witness keeps per log: the tree head and the checkpoint it cosigned.
#[derive(Serialize, Deserialize)]
struct Held {
    size: u64,
    root: String,
    /// The checkpoint with the log's signature and this witness's cosignature.
    note: String,
}

impl Witness {
    /// Opens (creating on first use) a witness's data directory: its key (`name` names a new
    /// one) and its store. `logs` maps each trusted origin to the log's checkpoint key.
    ///
    /// # Errors
    /// If the directory, key or store cannot be opened, or a log's key names another origin.
    pub fn open(dir: &Path, name: &str, logs: Vec<(String, NoteVerifier)>) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let key_path = dir.join(KEY_FILE);
        let cosigner = if key_path.exists() {
            let text = std::fs::read_to_string(&key_path)
                .with_context(|| format!("cannot read {}", key_path.display()))?;
            Cosigner::parse(text.trim())
                .with_context(|| format!("key in {}", key_path.display()))?
        } else {
            let cosigner = Cosigner::generate(name)?;
            write_key_file(&key_path, &cosigner.to_private_string(), false)?;
            cosigner
        };
        let new_store = !dir.join("store").join("db").exists();
        let db = sled::open(dir.join("store"))
            .with_context(|| format!("cannot open the witness store in {}", dir.display()))?;
        if new_store {
            // A tree head the witness forgot after a power cut would let it cosign a rollback.
            events::sync_store_directory(&dir.join("store"))?;
        }
        let mut by_origin: BTreeMap<String, Vec<NoteVerifier>> = BTreeMap::new();
        for (origin, key) in logs {
            by_origin.entry(origin).or_default().push(key);
        }
        Ok(Self {
            cosigner,
            logs: by_origin,
            heads: db.open_tree("heads")?,
            refused: db.open_tree("refused")?,
            db,
            updating: Mutex::new(()),
        })
    }

    /// The witness's public key, for logs and clients to configure.
    pub fn verifier(&self) -> CosignatureVerifier {
        self.cosigner.verifier()
    }

    fn held(&self, origin: &str) -> anyhow::Result<Option<Held>> {
        self.heads
            .get(origin.as_bytes())?
            .map(|raw| serde_json::from_slice(&raw).context("a stored tree head is malformed"))
            .transpose()
    }

    /// Handles an `add-checkpoint` body at `now` (POSIX seconds): the cosignature line, or why
    /// not.
    ///
    /// # Errors
    /// The protocol's refusal, or a store that cannot be read or synced.
    pub fn add_checkpoint(&self, body: &str, now: u64) -> Result<String, AddError> {
        let request = AddCheckpoint::parse(body)?;
        let origin = witness::origin_of(&request)?;
        let keys = self
            .logs
            .get(origin)
            .ok_or_else(|| Refusal::UnknownOrigin(origin.to_owned()))?;
        // The key that signed it, if any does (else the first, to say why not).
        let key = keys
            .iter()
            .find(|k| events::checkpoint::Checkpoint::verify(&request.checkpoint, k).is_ok())
            .unwrap_or(&keys[0]);
        let _updating = self
            .updating
            .lock()
            .map_err(|_| AddError::Store("poisoned".into()))?;
        let held = self
            .held(origin)
            .map_err(|e| AddError::Store(e.to_string()))?;
        let head = held
            .as_ref()
            .map(|h| -> Result<TreeHead, AddError> {
                Ok(TreeHead {
                    size: h.size,
                    root: Digest::from_hex(&h.root)
                        .ok_or_else(|| AddError::Store("a stored root is malformed".into()))?,
                })
            })
            .transpose()?;
        let checkpoint = match witness::check(&request, key, head) {
            Ok(checkpoint) => checkpoint,
            Err(refusal) => {
                if matches!(refusal, Refusal::BadRequest(_) | Refusal::Inconsistent(_))
                    && events::checkpoint::Checkpoint::verify(&request.checkpoint, key).is_ok()
                {
                    self.keep_refused(body, &refusal);
                }
                return Err(refusal.into());
            }
        };
        let text = checkpoint.to_note_text();
        let line = self.cosigner.cosign(&text, now);
        let held = Held {
            size: checkpoint.size,
            root: checkpoint.root.to_hex(),
            note: format!("{}{line}", request.checkpoint),
        };
        let stored = serde_json::to_vec(&held).map_err(|e| AddError::Store(e.to_string()))?;
        self.heads
            .insert(origin.as_bytes(), stored)
            .and_then(|_| self.db.flush())
            .map_err(|e| AddError::Store(e.to_string()))?;
        Ok(line)
    }

    /// A validly signed checkpoint the witness refused is evidence: kept, and logged loudly.
    fn keep_refused(&self, body: &str, refusal: &Refusal) {
        tracing::warn!(%refusal, "refused a validly signed checkpoint (a rollback or a fork?)");
        let key = self.db.generate_id().unwrap_or(0).to_be_bytes();
        let _ = self
            .refused
            .insert(key, format!("{refusal}\n{body}").as_bytes())
            .and_then(|_| self.db.flush());
    }

    /// Validly signed checkpoints this witness refused, with why.
    ///
    /// # Errors
    /// If the store cannot be read.
    pub fn refused(&self) -> anyhow::Result<Vec<String>> {
        self.refused
            .iter()
            .values()
            .map(|v| Ok(String::from_utf8_lossy(&v?).into_owned()))
            .collect()
    }

    /// The checkpoint last cosigned for the log whose origin hashes to `origin_hash`.
    fn checkpoint_by_hash(&self, origin_hash: &str) -> anyhow::Result<Option<String>> {
        for origin in self.logs.keys() {
            if hex::encode(Sha256::digest(origin.as_bytes())) == origin_hash {
                return Ok(self.held(origin)?.map(|h| h.note));
            }
        }
        Ok(None)
    }
}

/// Why `add-checkpoint` gave no cosignature.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The protocol says no.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The witness could not read or persist its state.
    #[error("the witness store failed: {0}")]
    Store(String),
}

/// The witness's HTTP interface (submission and monitoring prefix are both the root).
pub fn router(witness: Arc<Witness>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .route("/{origin_hash}/checkpoint", get(checkpoint))
        .layer(DefaultBodyLimit::max(witness::REQUEST_BYTES_MAX))
        .with_state(witness)
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Bytes) -> Response {
    let Ok(body) = std::str::from_utf8(&body) else {
        return text(
            StatusCode::BAD_REQUEST,
            "text/plain",
            "the request is not UTF-8\n".into(),
        );
    };
    let body = body.to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let answer = tokio::task::spawn_blocking(move || witness.add_checkpoint(&body, now)).await;
    match answer {
        Ok(Ok(line)) => text(StatusCode::OK, "text/plain; charset=utf-8", line),
        Ok(Err(AddError::Refused(Refusal::Conflict(size)))) => text(
            StatusCode::CONFLICT,
            witness::SIZE_CONTENT_TYPE,
            format!("{size}\n"),
        ),
        Ok(Err(AddError::Refused(refusal))) => text(
            StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST),
            "text/plain; charset=utf-8",
            format!("{refusal}\n"),
        ),
        Ok(Err(e @ AddError::Store(_))) => {
            tracing::error!(error = %e, "add-checkpoint failed");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "the witness cannot store its state\n".into(),
            )
        }
        Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            "internal error\n".into(),
        ),
    }
}

async fn checkpoint(
    State(witness): State<Arc<Witness>>,
    UrlPath(origin_hash): UrlPath<String>,
) -> Response {
    match witness.checkpoint_by_hash(&origin_hash) {
        Ok(Some(note)) => text(StatusCode::OK, "text/plain; charset=utf-8", note),
        Ok(None) => text(
            StatusCode::NOT_FOUND,
            "text/plain",
            "this witness has cosigned no checkpoint of that log\n".into(),
        ),
        Err(e) => {
            tracing::error!(error = %e, "reading a tree head failed");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "the witness cannot read its state\n".into(),
            )
        }
    }
}

/// Parses `ORIGIN=VERIFIER_KEY` (the key itself or a file holding it; the origin is up to the
/// first `=`), checking the key is a checkpoint key. An origin given twice is trusted under
/// both keys (across a key rotation).
///
/// # Errors
/// If it is malformed.
pub fn parse_log(text: &str) -> anyhow::Result<(String, NoteVerifier)> {
    let (origin, key) = text
        .split_once('=')
        .context("--log must be ORIGIN=VERIFIER_KEY")?;
    anyhow::ensure!(!origin.is_empty(), "--log {text:?} has an empty origin");
    Ok((origin.to_owned(), crate::commands::read_verifier(key)?))
}

/// Opens the witness in `dir`, prints its verifier key on stdout (and keeps it in
/// `DIR/witness-key.pub`), and serves until Ctrl-C or SIGTERM.
///
/// # Errors
/// If the witness cannot be opened or the address cannot be bound.
pub fn serve(
    dir: &Path,
    name: &str,
    logs: Vec<(String, NoteVerifier)>,
    listen: std::net::SocketAddr,
) -> anyhow::Result<()> {
    let witness = Arc::new(Witness::open(dir, name, logs)?);
    let verifier = witness.verifier().to_string();
    std::fs::write(dir.join(format!("{KEY_FILE}.pub")), format!("{verifier}\n"))?;
    println!("{verifier}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        tracing::info!(%listen, key = %verifier, logs = witness.logs.len(), "witness serving");
        crate::api::server::serve(
            listener,
            router(Arc::clone(&witness)),
            crate::api::server::ServerLimits::default(),
            crate::api::server::shutdown_signal(),
        )
        .await?;
        anyhow::Ok(())
    })?;
    witness.db.flush()?;
    Ok(())
}
