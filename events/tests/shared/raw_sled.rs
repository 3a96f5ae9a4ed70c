//! Shared by the test crates that tamper with a store (`events/tests/tamper.rs`,
//! `tests/cli.rs`), each including this file by path.

use std::path::Path;

/// Opens the store's sled directly, as an attacker with disk access would, waiting out the lock
/// that sled's IO threads of the just-closed log may hold for a few milliseconds.
pub fn open_raw_sled(path: &Path) -> sled::Db {
    let started = std::time::Instant::now();
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            Err(_) if started.elapsed() < std::time::Duration::from_secs(5) => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("cannot open {}: {e}", path.display()),
        }
    }
}
