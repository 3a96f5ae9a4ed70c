//! Checkpoints the log's witnesses cosigned: the log's signed note with their cosignature lines,
//! kept beside the log (in their own sled tree, or table) so the published, witnessed view of the log and
//! its receipts survive a restart.

use super::store::postgres::read_error;
use super::{keys, Log, ReadError, Store};

/// The sled tree that holds them, by size.
const TREE: &str = "cosigned-checkpoints";

impl Log {
    /// Keeps a cosigned checkpoint note for `size`, durably (it is about to be published).
    ///
    /// # Errors
    /// [`ReadError::Storage`] when it cannot be written or synced.
    pub fn put_cosigned_checkpoint(&self, size: u64, note: &str) -> Result<(), ReadError> {
        let db = match &self.shared.store {
            Store::Sled { db, .. } => db,
            Store::Postgres(pg) => return Ok(pg.put_cosigned(size, note).map_err(read_error)?),
        };
        let tree = db.open_tree(TREE)?;
        tree.insert(keys::checkpoint(size), note.as_bytes())?;
        tree.flush()?;
        Ok(())
    }

    /// The newest kept cosigned checkpoint note, if any.
    ///
    /// # Errors
    /// [`ReadError::Storage`] when it cannot be read.
    pub fn latest_cosigned_checkpoint(&self) -> Result<Option<String>, ReadError> {
        let db = match &self.shared.store {
            Store::Sled { db, .. } => db,
            Store::Postgres(pg) => return Ok(pg.latest_cosigned().map_err(read_error)?),
        };
        let tree = db.open_tree(TREE)?;
        Ok(tree
            .iter()
            .next_back()
            .transpose()?
            .map(|(_, note)| String::from_utf8_lossy(&note).into_owned()))
    }
}
