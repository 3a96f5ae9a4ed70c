//! `trustledger export --tiles DIR` (and `verify --tiles`, `verify --receipt`): the log as the static files of a C2SP `tlog-tiles` log
//! (`checkpoint`, `tile/<L>/<N>[.p/<W>]`, `tile/entries/<N>[.p/<W>]`), for any web server or
//! object store to serve as they are. The same bytes as the server's `/tlog/`.

use crate::{commands, data_dir};
use anyhow::{bail, Context as _};
use events::cosignature::WitnessPolicy;
use events::tiles::{self, Tile, TileKind, TILE_WIDTH};
use events::Digest;
use std::path::Path;

/// Writes the tiles of the log in `data` as it is now under `out`; returns the entries written.
///
/// # Errors
/// If the log cannot be read or a file cannot be written.
pub fn export_tiles(data: &Path, out: &Path, mut progress: impl FnMut(u64)) -> anyhow::Result<u64> {
    let log = data_dir::open_existing(data)?;
    // Everything below refers to this one size, whatever is appended meanwhile.
    let size = log.head().size;
    let note = commands::checkpoint_note(&log, data, size)?;
    // `levels[l]`: every hash of tile level l.
    let mut levels: Vec<Vec<Digest>> = vec![Vec::with_capacity(usize::try_from(size)?)];
    let mut bundle = Vec::new();
    let mut written = 0u64;
    for item in log.iter_bytes_until(0, size) {
        let (seq, bytes) = item?;
        if seq != written {
            bail!(
                "the log has no entry at seq {written}: run `trustledger verify --data {}`",
                data.display()
            );
        }
        bundle.push(bytes);
        written += 1;
        if bundle.len() as u64 == TILE_WIDTH || written == size {
            let tile = Tile {
                kind: TileKind::Entries,
                index: (written - 1) / TILE_WIDTH,
                width: bundle.len() as u64,
            };
            let bytes = tiles::encode_bundle(bundle.iter().map(AsRef::as_ref));
            write(out, &tile, &bytes)?;
            // The leaf hashes as the index records hold them (hashing the entries again would
            // cost more than the rest of the export).
            let leaves = Tile {
                kind: TileKind::Hashes { level: 0 },
                ..tile
            };
            let hashes = log
                .tile(&leaves)?
                .and_then(|bytes| tiles::tile_hashes(&bytes, leaves.width))
                .with_context(|| format!("the log does not hold {}", leaves.path()))?;
            levels[0].extend(hashes);
            bundle.clear();
            progress(written);
        }
    }
    if written != size {
        bail!("the log ends at seq {written}, before its head {size}");
    }
    while levels.last().is_some_and(|l| l.len() as u64 >= TILE_WIDTH) {
        let above = levels[levels.len() - 1]
            .chunks_exact(TILE_WIDTH as usize)
            .map(tiles::full_tile_root)
            .collect();
        levels.push(above);
    }
    for tile in tiles::tiles_of(size).filter(|t| t.kind != TileKind::Entries) {
        let first = usize::try_from(tile.first_item())?;
        let width = usize::try_from(tile.width)?;
        let hashes = &levels[usize::from(tile.level())][first..first + width];
        write(out, &tile, &tiles::tile_bytes(hashes))?;
    }
    // Last, so that a reader who sees the checkpoint finds every tile it names.
    std::fs::write(out.join("checkpoint"), note)?;
    Ok(written)
}

fn write(out: &Path, tile: &Tile, bytes: &[u8]) -> anyhow::Result<()> {
    let path = out.join(tile.path());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// `trustledger verify --tiles URL|DIR --key KEY`: a tiled log verified from its tiles alone.
///
/// # Errors
/// If the key does not parse, or a tile cannot be read at all.
pub fn verify_tiles(
    source: &str,
    key: &str,
    witnesses: &WitnessPolicy,
    progress: impl FnMut(u64),
) -> anyhow::Result<commands::Verdict> {
    let verifier = commands::read_verifier(key)?;
    let result = if source.starts_with("http://") || source.starts_with("https://") {
        replay::tiles::verify_tiles(
            &replay::tiles::UrlTiles(source.to_owned()),
            &verifier,
            witnesses,
            progress,
        )
    } else {
        replay::tiles::verify_tiles(
            &replay::tiles::DirTiles(source.into()),
            &verifier,
            witnesses,
            progress,
        )
    }
    .map_err(|e| anyhow::anyhow!(e))?;
    Ok(match result {
        Ok(log) => commands::Verdict::Valid(format!(
            "valid: {} entries of {} from their tiles\n  Merkle root {} (equals the signed checkpoint's)\n  {} hash tiles checked against the entries{}",
            log.size,
            log.origin,
            log.root,
            log.hash_tiles,
            cosigned_line(&log.cosigned_by)
        )),
        Err(problem) => commands::Verdict::Invalid(format!("INVALID: {problem}")),
    })
}

/// `trustledger verify --receipt FILE --entry FILE --key KEY`: one entry proved in a signed
/// checkpoint, offline. The entry file holds its stored bytes (one trailing newline, as an
/// export's line has, is ignored).
///
/// # Errors
/// If a file cannot be read or the key does not parse.
pub fn verify_receipt(
    receipt: &Path,
    entry: &Path,
    key: &str,
    witnesses: &WitnessPolicy,
) -> anyhow::Result<commands::Verdict> {
    let verifier = commands::read_verifier(key)?;
    let text = std::fs::read_to_string(receipt)
        .with_context(|| format!("cannot read {}", receipt.display()))?;
    let bytes = std::fs::read(entry).with_context(|| format!("cannot read {}", entry.display()))?;
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    let checked = events::receipt::Receipt::parse(&text).and_then(|r| {
        let checkpoint = r.verify(bytes, &verifier)?;
        let (_, cosigned) = witnesses
            .verify(&r.checkpoint, &verifier)
            .map_err(|e| format!("the checkpoint: {e}"))?;
        Ok((r.index, checkpoint, cosigned))
    });
    Ok(match checked {
        Ok((index, checkpoint, cosigned)) => commands::Verdict::Valid(format!(
            "valid: entry {index} is in the tree of size {} of {}, signed by {verifier}{}",
            checkpoint.size,
            checkpoint.origin,
            cosigned_line(&cosigned.into_iter().map(|(n, _)| n).collect::<Vec<_>>())
        )),
        Err(problem) => commands::Verdict::Invalid(format!("INVALID: {problem}")),
    })
}

/// "  cosigned by …" for a report, or nothing when no witness was asked for.
fn cosigned_line(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!("\n  cosigned by {}", names.join(", "))
    }
}
