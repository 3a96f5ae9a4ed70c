//! Receipts: C2SP `tlog-proof` proofs that one entry is in the log, checkable offline years later
//! with the entry's bytes and the log's verifier key alone.
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! index <seq>
//! <base64 of each inclusion proof hash, leaf's sibling first>
//!
//! <the signed checkpoint, verbatim>
//! ```

use crate::checkpoint::{Checkpoint, NoteVerifier};
use crate::merkle::{leaf_hash, verify_inclusion};
use crate::Digest;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

/// The first line of every receipt.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// A receipt: an entry's index, its inclusion proof, and the signed checkpoint it is proved in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The entry's seq.
    pub index: u64,
    /// The RFC 9162 inclusion proof in the checkpoint's tree.
    pub proof: Vec<Digest>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint: String,
}

impl Receipt {
    /// The receipt as text (`.tlog-proof`).
    pub fn to_text(&self) -> String {
        let mut text = format!("{HEADER}\nindex {}\n", self.index);
        for hash in &self.proof {
            text.push_str(&B64.encode(hash.0));
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&self.checkpoint);
        text
    }

    /// Parses a receipt (an `extra` line is allowed and ignored: it is not authenticated).
    ///
    /// # Errors
    /// What is malformed.
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix(HEADER)
            .and_then(|r| r.strip_prefix('\n'))
            .ok_or_else(|| format!("the first line is not {HEADER}"))?;
        let rest = match rest.strip_prefix("extra ") {
            Some(extra) => extra.split_once('\n').map_or("", |(_, r)| r),
            None => rest,
        };
        let (index_line, mut rest) = rest.split_once('\n').ok_or("no index line")?;
        let index_text = index_line
            .strip_prefix("index ")
            .ok_or("the line after the header is not `index N`")?;
        let canonical = !index_text.is_empty()
            && index_text.bytes().all(|b| b.is_ascii_digit())
            && (index_text == "0" || !index_text.starts_with('0'));
        let index: u64 = canonical
            .then(|| index_text.parse().ok())
            .flatten()
            .ok_or("the index is not a decimal without leading zeros")?;
        let mut proof = Vec::new();
        loop {
            let (line, after) = rest
                .split_once('\n')
                .ok_or("no empty line before the checkpoint")?;
            rest = after;
            if line.is_empty() {
                break;
            }
            let bytes = B64
                .decode(line)
                .map_err(|e| format!("proof line {}: {e}", proof.len() + 1))?;
            let hash: [u8; 32] = bytes
                .try_into()
                .map_err(|_| format!("proof line {} is not 32 bytes", proof.len() + 1))?;
            proof.push(Digest(hash));
        }
        Ok(Self {
            index,
            proof,
            checkpoint: rest.to_owned(),
        })
    }

    /// Checks that `entry` (its stored bytes) is the entry at the receipt's index in the tree
    /// of a checkpoint `verifier` signed, and returns that checkpoint.
    ///
    /// # Errors
    /// What does not hold.
    pub fn verify(&self, entry: &[u8], verifier: &NoteVerifier) -> Result<Checkpoint, String> {
        let checkpoint = Checkpoint::verify(&self.checkpoint, verifier)
            .map_err(|e| format!("the checkpoint: {e}"))?;
        let parsed = crate::Entry::parse(entry).map_err(|e| format!("the entry: {e}"))?;
        if parsed.seq != self.index {
            return Err(format!(
                "the entry is seq {}, the receipt is for index {}",
                parsed.seq, self.index
            ));
        }
        if parsed.source != checkpoint.origin {
            return Err(format!(
                "the entry is from {}, the checkpoint from {}",
                parsed.source, checkpoint.origin
            ));
        }
        verify_inclusion(
            &leaf_hash(entry),
            self.index,
            checkpoint.size,
            &self.proof,
            &checkpoint.root,
        )
        .map_err(|e| format!("the inclusion proof: {e}"))?;
        Ok(checkpoint)
    }
}
