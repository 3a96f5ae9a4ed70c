//! The log as a C2SP tlog-tiles log: served under `/tlog/` by the real server, written as static
//! files by `trustledger export --tiles`, and verified from the tiles alone by
//! `trustledger verify --tiles`, which reports a damaged tile or entry.

use events::merkle::leaf_hash;
use events::tiles::{self, Tile, TileKind};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use trustledger::api::{app, AppState};
use trustledger::governance::{Governance, IdSource};

mod http_client;
use http_client::{http_with_head, serve};

fn trustledger(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trustledger"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A simulated log of a few hundred entries (more than one full tile) in `dir`.
fn simulated(dir: &Path) -> u64 {
    let o = trustledger(&[
        "simulate",
        "--data",
        dir.to_str().unwrap(),
        "--weeks",
        "1",
        "--per-week",
        "50",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let log = trustledger::data_dir::open_existing(dir).unwrap();
    let size = log.head().size;
    assert!(size > 300, "{size} entries: want more than one full tile");
    size
}

/// A simulated log (see [`simulated`]) opened for serving: its size, verifier key, entries'
/// stored bytes and the service over it.
struct Opened {
    size: u64,
    key: String,
    entries: Vec<Vec<u8>>,
    gov: Arc<Governance>,
}

fn opened(data: &Path) -> Opened {
    let size = simulated(data);
    let log = trustledger::data_dir::open_existing(data).unwrap();
    let key = log.verifier().unwrap().to_string();
    let entries: Vec<Vec<u8>> = log.iter_bytes(0).map(|r| r.unwrap().1.to_vec()).collect();
    let gov =
        Arc::new(Governance::open(log, Arc::new(events::SystemClock), IdSource::Random).unwrap());
    Opened {
        size,
        key,
        entries,
        gov,
    }
}

#[test]
fn a_served_log_is_a_tiled_log_its_tiles_alone_verify() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let Opened {
        size,
        key,
        entries,
        gov,
    } = opened(&data);
    let served = serve(app(AppState::new(Arc::clone(&gov))));
    let get = |path: &str| http_with_head(served.port, "GET", path, None, b"");

    // Public, with the spec's content types and cache lifetimes.
    let (status, head, note) = get("/tlog/checkpoint");
    assert_eq!(status, 200);
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("content-type: text/plain; charset=utf-8"),
        "{head}"
    );
    assert!(head.contains("cache-control: public, max-age=2"), "{head}");
    assert!(String::from_utf8_lossy(&note).contains(&format!("\n{size}\n")));
    let (status, head, tile) = get("/tlog/tile/0/000");
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("immutable"), "{head}");
    let leaves: Vec<u8> = entries[..256].iter().flat_map(|e| leaf_hash(e).0).collect();
    assert_eq!(
        tile, leaves,
        "a level-0 tile holds the entries' leaf hashes"
    );
    let (status, _, bundle) = get("/tlog/tile/entries/000");
    assert_eq!(status, 200);
    let bundled = tiles::decode_bundle(&bundle).unwrap();
    assert_eq!(bundled.len(), 256);
    assert!(bundled
        .iter()
        .zip(&entries)
        .all(|(b, e)| *b == e.as_slice()));
    let partial = Tile {
        kind: TileKind::Hashes { level: 0 },
        index: size / 256,
        width: size % 256,
    };
    let (status, head, tile) = get(&format!("/tlog/{}", partial.path()));
    assert_eq!(status, 200, "{}", partial.path());
    assert!(head.to_ascii_lowercase().contains("max-age=5"), "{head}");
    assert_eq!(tile.len() as u64, partial.width * 32);
    // The level-1 partial tile holds the root of the full level-0 tile.
    let hashes: Vec<events::Digest> = tiles::tile_hashes(&leaves, 256).unwrap();
    let (status, _, level1) = get("/tlog/tile/1/000.p/1");
    assert_eq!(status, 200);
    assert_eq!(level1, tiles::full_tile_root(&hashes).0.to_vec());
    // A tile the log does not hold yet, or a path that is not a tile's: a 404 problem.
    for path in [
        "/tlog/tile/0/999",
        "/tlog/tile/0/00",
        "/tlog/tile/0/000.p/256",
        "/tlog/tile/entries/x001/000",
    ] {
        let (status, head, _) = get(path);
        assert_eq!(status, 404, "{path}");
        assert!(
            head.to_ascii_lowercase()
                .contains("application/problem+json"),
            "{head}"
        );
    }

    // An outsider verifies the log from the served tiles alone.
    let url = format!("http://127.0.0.1:{}/tlog", served.port);
    let o = trustledger(&["verify", "--tiles", &url, "--key", &key]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("valid: {size} entries")),
        "{}",
        text(&o)
    );
}

#[test]
fn exported_tiles_verify_and_any_damage_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let size = simulated(&data);
    let out = dir.path().join("tiles");
    let o = trustledger(&[
        "export",
        "--data",
        data.to_str().unwrap(),
        "--tiles",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    for tile in tiles::tiles_of(size) {
        assert!(
            out.join(tile.path()).is_file(),
            "{} was not written",
            tile.path()
        );
    }
    let key = trustledger::data_dir::open_existing(&data)
        .unwrap()
        .verifier()
        .unwrap()
        .to_string();
    let verify = || trustledger(&["verify", "--tiles", out.to_str().unwrap(), "--key", &key]);
    let o = verify();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("valid: {size} entries")),
        "{}",
        text(&o)
    );

    // A hash tile that does not hold its entries' hashes.
    let tile_path = out.join("tile/0/000");
    let original = std::fs::read(&tile_path).unwrap();
    let mut damaged = original.clone();
    damaged[100] ^= 1;
    std::fs::write(&tile_path, &damaged).unwrap();
    let o = verify();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("tile/0/000 does not hold"),
        "{}",
        text(&o)
    );
    std::fs::write(&tile_path, &original).unwrap();

    // An entry changed inside a bundle: found by the chain at its seq.
    let bundle_path = out.join("tile/entries/000");
    let original = std::fs::read(&bundle_path).unwrap();
    let text_of = String::from_utf8_lossy(&original).into_owned();
    let at = text_of
        .find("\"seq\":7,")
        .expect("entry 7 is in the first bundle");
    let mut damaged = original.clone();
    damaged[at + 7] = b'8';
    std::fs::write(&bundle_path, &damaged).unwrap();
    let o = verify();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("seq 7") || text(&o).contains("seq 8"),
        "{}",
        text(&o)
    );
    std::fs::write(&bundle_path, &original).unwrap();

    // A missing bundle, or a key that did not sign the checkpoint.
    std::fs::remove_file(&bundle_path).unwrap();
    let o = verify();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("tile/entries/000 is missing"),
        "{}",
        text(&o)
    );
    std::fs::write(&bundle_path, &original).unwrap();
    let o = trustledger(&[
        "keygen",
        "--out",
        dir.path().join("other").to_str().unwrap(),
    ]);
    let other = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    let o = trustledger(&["verify", "--tiles", out.to_str().unwrap(), "--key", &other]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

/// A receipt fetched from the server is checked offline, after the server is gone: the entry,
/// the inclusion proof and the checkpoint's signature; any other entry, proof or key fails.
#[test]
fn a_receipt_verifies_offline_after_the_server_is_gone() {
    use events::catalogue::access::AccessGranted;
    use projections::policy::Command as PolicyCommand;
    use trustledger::governance::{new_token, Principal, Role, CLI_ADMIN};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let Opened {
        size,
        key,
        entries,
        gov,
    } = opened(&data);
    let (token, token_sha256) = new_token();
    let grant = AccessGranted {
        principal: "audrey".into(),
        roles: vec!["auditor".into()],
        token_sha256,
    };
    gov.execute(
        &Principal::new(CLI_ADMIN, &[Role::Admin]),
        &PolicyCommand::GrantAccess(grant),
    )
    .unwrap();
    let served = serve(app(AppState::new(Arc::clone(&gov))));
    let get =
        |path: &str, token: Option<&str>| http_with_head(served.port, "GET", path, token, b"");
    let (status, _, receipt) = get("/api/v1/log/receipt?seq=5", Some(&token));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&receipt));
    assert!(receipt.starts_with(b"c2sp.org/tlog-proof@v1\nindex 5\n"));
    let (status, _, _) = get("/api/v1/log/receipt?seq=5", None);
    assert_eq!(status, 401);
    let (status, _, _) = get(
        &format!("/api/v1/log/receipt?seq={}", size + 10),
        Some(&token),
    );
    assert_eq!(status, 404);
    drop(served);
    drop(gov);

    let file = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let receipt_file = file("5.tlog-proof", &receipt);
    let entry_file = file("5.json", &entries[5]);
    let verify = |receipt: &str, entry: &str, key: &str| {
        trustledger(&[
            "verify",
            "--receipt",
            receipt,
            "--entry",
            entry,
            "--key",
            key,
        ])
    };
    let o = verify(&receipt_file, &entry_file, &key);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("valid: entry 5 is in the tree"),
        "{}",
        text(&o)
    );
    // Another entry, a changed proof hash, another key: each refused (exit 1).
    let other_entry = file("6.json", &entries[6]);
    let o = verify(&receipt_file, &other_entry, &key);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let receipt_text = String::from_utf8(receipt.clone()).unwrap();
    let first_hash = receipt_text.lines().nth(2).unwrap().to_owned();
    let flipped = first_hash.replacen(
        &first_hash[..1],
        if &first_hash[..1] == "A" { "B" } else { "A" },
        1,
    );
    let bad_proof = file(
        "bad.tlog-proof",
        receipt_text.replacen(&first_hash, &flipped, 1).as_bytes(),
    );
    let o = verify(&bad_proof, &entry_file, &key);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let o = trustledger(&[
        "keygen",
        "--out",
        dir.path().join("other").to_str().unwrap(),
    ]);
    let other_key = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    let o = verify(&receipt_file, &entry_file, &other_key);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}
