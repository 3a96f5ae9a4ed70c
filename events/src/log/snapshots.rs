//! Projection snapshots: opaque bytes kept beside the log, never in it.

use super::{Log, ReadError};

fn snapshot_error(reason: String) -> ReadError {
    ReadError::SnapshotIo(std::io::Error::other(reason))
}

impl Log {
    /// Stores an opaque projection snapshot under `name`, replacing the previous one.
    ///
    /// Snapshots live beside the log, never in it, as files in a sled store's directory (rows of `tl_snapshots` in PostgreSQL): a state of
    /// a million entries is a value of ~100 MB, which sled 0.34 took 1.3 s to read back in a
    /// fresh process (and rewrote through its log every time). Losing or tearing one only costs a
    /// rebuild (its checksum fails), so the file is written whole and renamed into place, not
    /// fsynced.
    ///
    /// # Errors
    /// [`ReadError::SnapshotIo`] when the file cannot be written.
    ///
    /// # Panics
    /// If `name` holds anything but ASCII letters, digits and `@._-` (names are the service's
    /// own constants, never input).
    pub fn put_snapshot(&self, name: &str, bytes: &[u8]) -> Result<(), ReadError> {
        let path = self.snapshot_path(name);
        if let Some(pg) = self.shared.store.postgres() {
            return pg.put_snapshot(name, bytes).map_err(snapshot_error);
        }
        std::fs::create_dir_all(&self.shared.snapshot_dir)?;
        let partial = path.with_extension("partial");
        std::fs::write(&partial, bytes)?;
        std::fs::rename(&partial, &path)?;
        Ok(())
    }

    /// The snapshot stored under `name`, if any.
    ///
    /// # Errors
    /// [`ReadError::SnapshotIo`] when the file exists but cannot be read.
    ///
    /// # Panics
    /// As [`Log::put_snapshot`].
    pub fn get_snapshot(&self, name: &str) -> Result<Option<Vec<u8>>, ReadError> {
        let path = self.snapshot_path(name);
        if let Some(pg) = self.shared.store.postgres() {
            return pg.get_snapshot(name).map_err(snapshot_error);
        }
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn snapshot_path(&self, name: &str) -> std::path::PathBuf {
        assert!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"@._-".contains(&b))
                && !name.starts_with('.'),
            "snapshot name {name:?}"
        );
        self.shared.snapshot_dir.join(format!("{name}.snapshot"))
    }
}
