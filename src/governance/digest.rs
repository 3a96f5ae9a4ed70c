//! Streaming SHA-256 of uploads (artifacts and SBOMs), never holding them in memory.

use sha2::{Digest as _, Sha256};
use std::io::Read;

/// Largest artifact the release gate accepts (the API's default; `serve --artifact-bytes-max`).
pub const ARTIFACT_BYTES_MAX: u64 = 1024 * 1024 * 1024;
/// Largest SBOM the release gate accepts (the API's default; `serve --sbom-bytes-max`).
pub const SBOM_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// Why streamed bytes could not be digested.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// Reading failed.
    #[error("reading: {0}")]
    Io(#[from] std::io::Error),
    /// More than the limit.
    #[error("more than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
}

/// SHA-256 (lowercase hex) and size of everything `reader` yields, streamed in 256 KiB chunks,
/// never holding more than that in memory.
///
/// # Errors
/// [`DigestError`] on a read error or more than `limit` bytes.
pub fn digest_stream(mut reader: impl Read, limit: u64) -> Result<(String, u64), DigestError> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if size > limit {
            return Err(DigestError::TooLarge { limit });
        }
        hasher.update(&buffer[..n]);
    }
    Ok((hex::encode(hasher.finalize()), size))
}
