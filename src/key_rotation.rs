//! `trustledger rotate-key --data DIR`: replaces the key that signs the log's checkpoints, with a
//! `trustledger.log.key_rotated` entry that both keys sign (see `events::rotation`). Run while no
//! server holds the directory.
//!
//! The steps are ordered so that a crash anywhere leaves a directory the next run completes:
//! the new key is written to `signing-key.next` first, then the rotation is appended (durably),
//! then the old key moves to `signing-key.retired-<seq>` and the new one takes its place.
//! `serve` refuses a directory with a `signing-key.next` until `rotate-key` has finished.

use crate::data_dir::{self, key_file, read_key_file, write_key_file};
use anyhow::{bail, Context as _};
use events::checkpoint::{NoteSigner, NoteVerifier};
use events::rotation::{self, KeyRotated};
use events::Log;
use std::path::{Path, PathBuf};

/// Where a rotation in progress keeps the new key.
pub fn next_key_file(dir: &Path) -> PathBuf {
    dir.join("signing-key.next")
}

/// Rotates the data directory's checkpoint key to a new one named after the log's origin, and
/// returns the new verifier key; finishes an interrupted rotation instead when there is one.
///
/// # Errors
/// If the directory holds no log or its key cannot be read or written.
pub fn rotate_key(dir: &Path) -> anyhow::Result<NoteVerifier> {
    let next_path = next_key_file(dir);
    let log = data_dir::open_existing(dir)?;
    if next_path.exists() {
        let next = read_key_file(&next_path)?;
        if latest_rotation_to(&log)?.as_ref() == Some(&next.verifier()) {
            log.close();
            return finish(dir, &next);
        }
        // The rotation was never appended: start again.
        std::fs::remove_file(&next_path)?;
    }
    let old = read_key_file(&key_file(dir))?;
    let new = NoteSigner::generate(log.origin())?;
    write_key_file(&next_path, &new.to_private_string(), false)?;
    let statement = rotation::statement(log.origin(), &old, &new);
    let draft = events::catalogue::draft(
        uuid::Uuid::new_v4(),
        rotation::SUBJECT,
        "operator",
        "key-rotation",
        &KeyRotated { statement },
    )
    .map_err(anyhow::Error::msg)?;
    log.append_blocking(draft)
        .context("cannot append the key rotation")?;
    log.close();
    finish(dir, &new)
}

/// The last step: the old key retired beside the new one, which takes its place.
fn finish(dir: &Path, new: &NoteSigner) -> anyhow::Result<NoteVerifier> {
    let key_path = key_file(dir);
    let mut retired = 0u32;
    while dir.join(format!("signing-key.retired-{retired}")).exists() {
        retired += 1;
    }
    if key_path.exists() && read_key_file(&key_path)?.verifier() != new.verifier() {
        std::fs::rename(
            &key_path,
            dir.join(format!("signing-key.retired-{retired}")),
        )?;
    }
    std::fs::rename(next_key_file(dir), &key_path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(new.verifier())
}

/// The new key of the log's latest rotation, if it has any.
///
/// # Errors
/// If the log cannot be read.
pub fn latest_rotation_to(log: &Log) -> anyhow::Result<Option<NoteVerifier>> {
    let Some(version) = log.stream_last_version(rotation::SUBJECT)? else {
        return Ok(None);
    };
    let entry = log
        .read_stream(rotation::SUBJECT, version, 1)?
        .pop()
        .context("the rotation stream's last entry is missing")?;
    let rotation = events::catalogue::decode::<KeyRotated>(&entry)?;
    let text = rotation
        .statement
        .split_once("\n\n")
        .map(|(text, _)| text)
        .context("a key rotation statement without signatures")?;
    let new = text
        .lines()
        .nth(3)
        .context("a key rotation statement without a new key")?;
    Ok(Some(NoteVerifier::parse(new)?))
}

/// Refuses to serve a directory in the middle of a rotation, or with a key other than the one
/// its latest rotation named.
///
/// # Errors
/// Saying which, and what to do.
pub fn check_key_in_force(dir: &Path, log: &Log) -> anyhow::Result<()> {
    if next_key_file(dir).exists() {
        bail!(
            "a key rotation was interrupted: run `trustledger rotate-key --data {}` to finish it",
            dir.display()
        );
    }
    if let (Some(rotated_to), Some(key)) = (latest_rotation_to(log)?, log.verifier()) {
        if rotated_to != *key {
            bail!(
                "the log's latest key rotation names {rotated_to}, but the configured key is {key}"
            );
        }
    }
    Ok(())
}
