//! The audit page's download: the log as an export bundle (`entries.jsonl`, the `checkpoint`
//! signed for exactly those entries, `verifier-key`) in one tar archive, which
//! `trustledger verify --bundle` checks once unpacked. Written to an unnamed temporary file on
//! a blocking thread, then streamed: memory does not grow with the log.

use anyhow::Context as _;
use std::io::{BufWriter, Seek as _, SeekFrom, Write as _};

/// The archive's top folder.
pub const FOLDER: &str = "trustledger-export";

/// Writes the bundle of `log` as it is now into an unnamed temporary file, rewound.
///
/// # Errors
/// If the log cannot be read, has no checkpoint for its size, or the file cannot be written.
pub fn write_tar(log: &events::Log) -> anyhow::Result<std::fs::File> {
    let size = log.head().size;
    let checkpoint = log
        .checkpoint_at(size)?
        .context("the log has no signed checkpoint for its size")?;
    let key = log.verifier().context("the log signs no checkpoints")?;
    let mut entries = tempfile::tempfile()?;
    {
        let mut out = BufWriter::new(&mut entries);
        for item in log.iter_bytes_until(0, size) {
            let (_, bytes) = item?;
            out.write_all(&bytes)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
    }
    let entries_len = entries.stream_position()?;
    entries.seek(SeekFrom::Start(0))?;
    let mut archive = tar::Builder::new(tempfile::tempfile()?);
    let mut append = |name: &str, len: u64, data: &mut dyn std::io::Read| {
        let mut header = tar::Header::new_gnu();
        header.set_size(len);
        header.set_mode(0o644);
        header.set_cksum();
        archive.append_data(&mut header, format!("{FOLDER}/{name}"), data)
    };
    append("entries.jsonl", entries_len, &mut entries)?;
    append(
        "checkpoint",
        checkpoint.len() as u64,
        &mut checkpoint.as_bytes(),
    )?;
    let key = format!("{key}\n");
    append("verifier-key", key.len() as u64, &mut key.as_bytes())?;
    let mut file = archive.into_inner()?;
    file.seek(SeekFrom::Start(0))?;
    Ok(file)
}
