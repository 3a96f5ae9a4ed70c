//! Cloudflare's `tlog_tiles` crate (an implementation of C2SP tlog-tiles and tlog-checkpoint,
//! ported from Go's `sumdb/tlog`) as an oracle: its reading of our checkpoint, our tile paths and
//! our hash tiles must agree with ours. It authenticates every tile it reads against the
//! checkpoint's root, so a tile we wrote wrongly fails here whatever our own verifier thinks.

use events::merkle::leaf_hash;
use events::tiles::{tiles_of, TileKind};
use std::path::{Path, PathBuf};
use tlog_tiles::{
    check_record, check_tree, prove_record, prove_tree, tree_hash, Hash, Tile, TileHashReader,
    TileReader,
};

mod tlog;
use tlog::*;

/// Our exported tiles, read by the crate: its `tile/8/<L>/<N>` names ours `tile/<L>/<N>`.
struct Exported(PathBuf);

impl TileReader for Exported {
    fn height(&self) -> u8 {
        8
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        tiles
            .iter()
            .map(|t| {
                let ours = t.path().replacen("tile/8/", "tile/", 1);
                std::fs::read(self.0.join(ours)).map_err(|_| tlog_tiles::Error::InvalidTile)
            })
            .collect()
    }

    fn save_tiles(&self, _: &[Tile], _: &[Vec<u8>]) {}
}

fn exported(dir: &Path, entries: u64) -> (PathBuf, Vec<Vec<u8>>) {
    let signer = events::checkpoint::NoteSigner::from_seed(ORIGIN, [7; 32]).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    trustledger::data_dir::write_key_file(
        &dir.join("signing-key"),
        &signer.to_private_string(),
        false,
    )
    .unwrap();
    let log = log_with(
        &trustledger::data_dir::sled_dir(dir),
        &signer,
        entries,
        None,
    );
    let bytes = log.iter_bytes(0).map(|r| r.unwrap().1.to_vec()).collect();
    log.close();
    let tiles = dir.with_extension("tiles");
    trustledger::export_tiles::export_tiles(dir, &tiles, |_| {}).unwrap();
    (tiles, bytes)
}

#[test]
fn the_tlog_tiles_crate_reads_our_checkpoint_paths_and_tiles_as_we_do() {
    let tmp = tempfile::tempdir().unwrap();
    let size = 700u64;
    let (tiles, entries) = exported(&tmp.path().join("log"), size);

    // The checkpoint body.
    let note = std::fs::read_to_string(tiles.join("checkpoint")).unwrap();
    let body = &note[..note.find("\n\n").unwrap() + 1];
    let theirs = tlog_tiles::Checkpoint::from_bytes(body.as_bytes()).unwrap();
    let ours = events::checkpoint::Checkpoint::parse_text(body).unwrap();
    assert_eq!(
        (theirs.origin(), theirs.size(), theirs.hash().0),
        (ours.origin.as_str(), ours.size, ours.root.0)
    );
    let root = Hash(ours.root.0);

    // Every hash tile's path, as the crate spells it less its height element.
    for tile in tiles_of(size).filter(|t| t.kind != TileKind::Entries) {
        let theirs = Tile::new(
            8,
            tile.level(),
            tile.index,
            u32::try_from(tile.width).unwrap(),
            false,
        );
        assert_eq!(theirs.path().replacen("tile/8/", "tile/", 1), tile.path());
        assert!(tiles.join(tile.path()).exists(), "{}", tile.path());
    }

    // The crate authenticates our tiles against the root, and its proofs check.
    let reader = Exported(tiles.clone());
    let hashes = TileHashReader::new(size, root, &reader);
    assert_eq!(tree_hash(size, &hashes).unwrap(), root);
    for n in [0, 1, 255, 256, 511, 699] {
        let proof = prove_record(size, n, &hashes).unwrap();
        let leaf = Hash(leaf_hash(&entries[usize::try_from(n).unwrap()]).0);
        check_record(&proof, size, root, n, leaf).unwrap();
    }
    for m in [1, 256, 300, 699] {
        let mut tree = events::merkle::MemoryTree::new();
        for entry in &entries[..usize::try_from(m).unwrap()] {
            tree.push_entry(entry);
        }
        let proof = prove_tree(size, m, &hashes).unwrap();
        check_tree(&proof, size, root, m, Hash(tree.root().0)).unwrap();
    }

    // A hash tile changed by one bit: the crate no longer authenticates the tree.
    let damaged = tiles.join("tile/0/002.p/188");
    let mut bytes = std::fs::read(&damaged).unwrap();
    bytes[5] ^= 1;
    std::fs::write(&damaged, bytes).unwrap();
    let reader = Exported(tiles);
    assert!(tree_hash(size, &TileHashReader::new(size, root, &reader)).is_err());
}
