//! The power-cut harness's two halves outside the library: building `powercut.c`, and turning
//! the durable image it kept into a directory. Shared by the sled store's power-cut test and
//! PostgreSQL's.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds `source` (`powercut.c`) into `out`, or says why it cannot.
pub fn build_library(source: &Path, out: &Path) -> Result<PathBuf, String> {
    let library = out.join("libpowercut.so");
    let built = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-U_FORTIFY_SOURCE", "-Wall"])
        .args(["-Wno-format-truncation", "-o"])
        .arg(&library)
        .arg(source)
        .args(["-ldl", "-lpthread"])
        .output()
        .map_err(|e| format!("no C compiler (cc): {e}"))?;
    if !built.status.success() {
        return Err(String::from_utf8_lossy(&built.stderr).into_owned());
    }
    Ok(library)
}

/// Writes the durable image kept in `shadow` as the directory `out`.
pub fn materialise(shadow: &Path, out: &Path) {
    let root = std::fs::read_to_string(shadow.join("root")).unwrap();
    build_directory(shadow, root.trim(), out);
}

fn build_directory(shadow: &Path, key: &str, out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    // A directory created and never synced has no durable listing: it is empty.
    let listing = std::fs::read_to_string(shadow.join("d").join(key)).unwrap_or_default();
    for line in listing.lines() {
        let mut parts = line.splitn(3, '\t');
        let (kind, name, child) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let path = out.join(name);
        if kind == "d" {
            build_directory(shadow, child, &path);
        } else {
            // A file named durably whose data never was is empty.
            let data = std::fs::read(shadow.join("f").join(child)).unwrap_or_default();
            std::fs::write(&path, data).unwrap();
        }
    }
}
