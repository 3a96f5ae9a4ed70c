//! `trustledger monitor`: follows a log through its public C2SP tiles and alarms on anything a
//! split view or a rewrite would show. Each observation:
//! 1. reads the log's published checkpoint and checks the log's signature and the witness
//!    policy's cosignatures;
//! 2. proves it consistent with the checkpoint the monitor kept from its last observation (a
//!    smaller size is a rollback), with an RFC 9162 proof computed from the hash tiles
//!    ([`crate::tile_nodes`]) and verified against both signed roots;
//! 3. reads the checkpoint each watched witness holds for the log and proves it consistent with
//!    the log's: two witnesses shown two histories cannot both pass;
//! 4. optionally reads every new entry from the entry bundles and checks it as `verify` does
//!    (canonical form, seq, `prevhash` chain, time order, origin), the Merkle root of all of them
//!    equal to the checkpoint's, going on from where the last observation stopped.
//!
//! The state kept between observations is small (a checkpoint and the chain's right edge); the
//! caller saves it only after an observation that passed.

use crate::tile_nodes::{TileError, TileNodes};
use crate::tiles::{check_entries_bundle, TileSource};
use events::checkpoint::{Checkpoint, NoteVerifier};
use events::cosignature::WitnessPolicy;
use events::merkle::{consistency_proof, verify_consistency};
use events::rotation::KeySchedule;
use events::verify::{ChainPosition, ChainVerifier};
use events::Digest;
use serde::{Deserialize, Serialize};

/// What the monitor checks a log against.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// The log's checkpoint key.
    pub log_key: NoteVerifier,
    /// Witnesses whose cosignatures the published checkpoint must carry.
    pub policy: WitnessPolicy,
    /// Witnesses' monitoring prefixes: the checkpoint each holds for the log must be consistent
    /// with the log's.
    pub witness_views: Vec<String>,
    /// Whether to read and check every new entry.
    pub entries: bool,
}

/// What the monitor keeps between observations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorState {
    /// The log's origin.
    pub origin: String,
    /// The size of the last checkpoint accepted.
    pub size: u64,
    /// Its root.
    pub root: Digest,
    /// The checkpoint note itself, with its signatures.
    pub checkpoint: String,
    /// Where entry checking stopped (when entries are checked).
    pub chain: Option<ChainPosition>,
    /// The log's key in force as of that checkpoint (it follows key rotations).
    #[serde(default)]
    pub key: Option<String>,
}

/// An observation that passed: the new state and what was checked.
#[derive(Debug, Clone)]
pub struct Observation {
    /// The state to keep.
    pub state: MonitorState,
    /// What was checked, in a few lines.
    pub report: String,
}

/// Why an observation could not be made at all (as opposed to one that found a problem).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Unreachable(pub String);

/// One observation of the log `source` serves. `Ok(Err(alarm))` names the inconsistency found.
///
/// # Errors
/// [`Unreachable`] when the log or a witness could not be read.
pub fn observe(
    source: &impl TileSource,
    config: &MonitorConfig,
    kept: Option<&MonitorState>,
) -> Result<Result<Observation, String>, Unreachable> {
    let Some(note) = source.fetch("checkpoint").map_err(Unreachable)? else {
        return Err(Unreachable("the log serves no checkpoint".into()));
    };
    let note = String::from_utf8_lossy(&note).into_owned();
    let claimed = match crate::tiles::unverified(&note) {
        Ok(c) => c,
        Err(e) => return Ok(Err(format!("the log's checkpoint: {e}"))),
    };
    if let Some(kept) = kept.filter(|k| claimed.size < k.size) {
        return Ok(Err(format!(
            "rollback: the log's checkpoint is at size {}, below the size {} it published before",
            claimed.size, kept.size
        )));
    }
    let key_in_force = match kept.and_then(|k| k.key.as_deref()) {
        Some(text) => NoteVerifier::parse(text)
            .map_err(|e| Unreachable(format!("the kept state's key: {e}")))?,
        None => config.log_key.clone(),
    };
    let mut keys = KeySchedule::new(key_in_force);
    // The entries first, when they are read: a key rotation among them changes the key that
    // signs the checkpoint.
    let checked = if config.entries {
        let position = kept.and_then(|k| k.chain.clone());
        match check_entries(source, &claimed, position, &mut keys)? {
            Ok(checked) => Some(checked),
            Err(alarm) => return Ok(Err(alarm)),
        }
    } else {
        None
    };
    let (checkpoint, cosigned) = match config.policy.verify(&note, keys.key_for(claimed.size)) {
        Ok(verified) if keys.anchored() => verified,
        Ok(_) => return Ok(Err(format!("the key {} is none of this log's", config.log_key))),
        Err(e) if config.entries => return Ok(Err(format!("the log's checkpoint: {e}"))),
        Err(e) => {
            return Ok(Err(format!(
                "the log's checkpoint: {e} (if the log rotated its key, --entries follows the rotation)"
            )))
        }
    };
    let mut report = vec![format!(
        "checkpoint of {} at size {}{}",
        checkpoint.origin,
        checkpoint.size,
        if cosigned.is_empty() {
            String::new()
        } else {
            format!(
                ", cosigned by {}",
                cosigned
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    )];
    // Every (label, size, root) that must be consistent with the log's checkpoint.
    let mut heads = Vec::new();
    if let Some(kept) = kept {
        if kept.origin != checkpoint.origin {
            return Ok(Err(format!(
                "the log's origin is {:?}, not {:?} as before",
                checkpoint.origin, kept.origin
            )));
        }
        heads.push((
            "the checkpoint kept from last time".to_owned(),
            kept.size,
            kept.root,
        ));
    }
    for url in &config.witness_views {
        match witness_view(url, &checkpoint.origin, config, &keys)? {
            Ok(Some((size, root))) => heads.push((format!("the witness at {url}"), size, root)),
            Ok(None) => report.push(format!(
                "the witness at {url} holds no checkpoint of this log yet"
            )),
            Err(alarm) => return Ok(Err(alarm)),
        }
    }
    let tree_size = heads
        .iter()
        .map(|(_, size, _)| *size)
        .fold(checkpoint.size, u64::max);
    let nodes = TileNodes::new(source, tree_size);
    for (label, size, root) in &heads {
        let (from, to, from_root, to_root) = if *size <= checkpoint.size {
            (*size, checkpoint.size, *root, checkpoint.root)
        } else {
            (checkpoint.size, *size, checkpoint.root, *root)
        };
        let proof = match consistency_proof(&nodes, from, to) {
            Ok(proof) => proof,
            Err(TileError::Unreadable(why)) => return Err(Unreachable(why)),
            Err(TileError::Invalid(why)) => {
                return Ok(Err(format!(
                    "no consistency proof between {label} (size {size}) and the log's checkpoint: {why}"
                )))
            }
        };
        if let Err(e) = verify_consistency(from, to, &from_root, &to_root, &proof) {
            return Ok(Err(format!(
                "fork: {label} (size {size}, root {root}) is not consistent with the log's checkpoint (size {}, root {}): {e}",
                checkpoint.size, checkpoint.root
            )));
        }
        report.push(format!("consistent with {label} (size {size})"));
    }
    let chain = checked.and_then(|(position, count)| {
        report.push(format!(
            "{count} new entries checked, their root the checkpoint's"
        ));
        if keys.rotations() > 0 {
            report.push(format!(
                "key rotated: checkpoints are now signed by {}",
                keys.current()
            ));
        }
        position
    });
    Ok(Ok(Observation {
        state: MonitorState {
            origin: checkpoint.origin.clone(),
            size: checkpoint.size,
            root: checkpoint.root,
            checkpoint: note,
            chain,
            key: Some(keys.current().to_string()),
        },
        report: report.join("\n  "),
    }))
}

/// The checkpoint a witness holds for `origin`, checked: the log's signature, and (when the
/// policy names witnesses) a cosignature by one of them.
fn witness_view(
    url: &str,
    origin: &str,
    config: &MonitorConfig,
    keys: &KeySchedule,
) -> Result<Result<Option<(u64, Digest)>, String>, Unreachable> {
    let origin_hash = events::Digest::of(origin.as_bytes()).to_hex();
    let address = format!("{}/{origin_hash}/checkpoint", url.trim_end_matches('/'));
    let note = match ureq::get(&address).call() {
        Ok(response) => response
            .into_string()
            .map_err(|e| Unreachable(format!("{address}: {e}")))?,
        Err(ureq::Error::Status(404, _)) => return Ok(Ok(None)),
        Err(e) => return Err(Unreachable(format!("{address}: {e}"))),
    };
    let size = crate::tiles::unverified(&note).map_or(0, |c| c.size);
    let checkpoint = match Checkpoint::verify(&note, keys.key_for(size)) {
        Ok(c) => c,
        Err(e) => {
            return Ok(Err(format!(
                "the witness at {url} holds a checkpoint that is not the log's: {e}"
            )))
        }
    };
    let witnesses = &config.policy.witnesses;
    if !witnesses.is_empty() && !witnesses.iter().any(|w| w.verify_note(&note).is_ok()) {
        return Ok(Err(format!(
            "the checkpoint the witness at {url} serves carries no valid cosignature by a --witness key"
        )));
    }
    Ok(Ok(Some((checkpoint.size, checkpoint.root))))
}

/// Reads and checks the entries from where `position` stopped (the start, without one) to the
/// checkpoint's size; returns where it stops now and how many it checked.
fn check_entries(
    source: &impl TileSource,
    checkpoint: &Checkpoint,
    position: Option<ChainPosition>,
    keys: &mut KeySchedule,
) -> Result<Result<(Option<ChainPosition>, u64), String>, Unreachable> {
    let mut chain = match position {
        Some(p) if p.size <= checkpoint.size => match ChainVerifier::resume(p) {
            Ok(chain) => chain,
            Err(why) => return Err(Unreachable(format!("the kept state: {why}"))),
        },
        _ => ChainVerifier::with_origin(checkpoint.origin.clone()),
    };
    let start = chain.size();
    while chain.size() < checkpoint.size {
        let checked = check_entries_bundle(
            source,
            checkpoint.size,
            &mut chain,
            Some(&mut *keys),
            |_| {},
        )
        .map_err(Unreachable)?;
        if let Err(problem) = checked {
            return Ok(Err(problem));
        }
    }
    if chain.root() != checkpoint.root {
        return Ok(Err(format!(
            "the entries' Merkle root {} is not the checkpoint's {}",
            chain.root(),
            checkpoint.root
        )));
    }
    Ok(Ok((chain.position(), checkpoint.size - start)))
}
