//! Where the auditor keeps settled records: an unnamed temporary file (gone when the audit
//! ends, whatever way it ends), written through a buffer so that settling a record costs a copy,
//! not a system call.

use projections::settling::SpillStore;
use projections::state::GovernanceState;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

/// Bytes gathered before one write.
const BUFFER_BYTES: usize = 1 << 20;

/// An append-only [`SpillStore`] in a temporary file.
#[derive(Debug)]
pub struct TempFileSpill {
    file: File,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Bytes written to the file so far.
    written: u64,
    /// Bytes appended after those, not yet written.
    buffer: Vec<u8>,
    /// The first failure to read back, if any.
    failure: Option<String>,
}

impl TempFileSpill {
    /// A store in a new unnamed file under the system's temporary directory (`TMPDIR`).
    ///
    /// # Errors
    /// When no such file can be made.
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            file: tempfile::tempfile()?,
            inner: Mutex::new(Inner::default()),
        })
    }

    /// Why a record could not be read back, if one could not: results that relied on the
    /// store are then unusable.
    pub fn failure(&self) -> Option<String> {
        self.inner.lock().ok()?.failure.clone()
    }
}

impl SpillStore for TempFileSpill {
    fn append(&self, bytes: &[u8]) -> Option<u64> {
        let mut inner = self.inner.lock().ok()?;
        if inner.buffer.len() + bytes.len() > BUFFER_BYTES && !inner.buffer.is_empty() {
            // A failed write keeps the buffer, and the record is simply not taken: it stays
            // in memory, and nothing is lost.
            self.file.write_all_at(&inner.buffer, inner.written).ok()?;
            inner.written += inner.buffer.len() as u64;
            inner.buffer.clear();
        }
        let at = inner.written + inner.buffer.len() as u64;
        inner.buffer.extend_from_slice(bytes);
        Some(at)
    }

    fn read(&self, at: u64, len: u32) -> Option<Vec<u8>> {
        let mut inner = self.inner.lock().ok()?;
        let len = len as usize;
        let result = if at >= inner.written {
            let start = usize::try_from(at - inner.written).ok();
            start
                .and_then(|start| inner.buffer.get(start..start + len))
                .map(<[u8]>::to_vec)
                .ok_or_else(|| format!("no record kept at offset {at}"))
        } else {
            let mut bytes = vec![0; len];
            self.file
                .read_exact_at(&mut bytes, at)
                .map(|()| bytes)
                .map_err(|e| format!("reading back a settled record failed: {e}"))
        };
        result
            .map_err(|why| {
                inner.failure.get_or_insert(why);
            })
            .ok()
    }

    fn damaged(&self, at: u64) {
        if let Ok(mut inner) = self.inner.lock() {
            inner
                .failure
                .get_or_insert_with(|| format!("the record kept at offset {at} does not decode"));
        }
    }
}

/// A fresh state whose settled records go to a new temporary file, and that file. Where no
/// temporary file can be made, the state keeps every record in memory: the same results, more
/// memory.
pub(crate) fn spilling_state() -> (GovernanceState, Option<Arc<TempFileSpill>>) {
    let mut state = GovernanceState::new();
    let spill = TempFileSpill::new().ok().map(Arc::new);
    if let Some(store) = &spill {
        state.spill_settled_to(Arc::clone(store) as Arc<dyn SpillStore>);
    }
    (state, spill)
}

/// Whether a run that spilled to `spill` may give a result: not if a settled record could not
/// be written or read back, since decisions that read it saw nothing. `run` names the run.
pub(crate) fn check_spill(
    spill: Option<&TempFileSpill>,
    run: &str,
) -> Result<(), crate::audit::AuditError> {
    match spill.and_then(TempFileSpill::failure) {
        Some(failure) => Err(crate::audit::AuditError::Io(format!(
            "the {run}'s temporary file failed, so its result is unusable: {failure}"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_from_the_buffer_and_from_the_file() {
        let store = TempFileSpill::new().unwrap();
        let records: Vec<Vec<u8>> = (0..3000u32)
            .map(|i| i.to_be_bytes().repeat(1 + (i as usize % 300)))
            .collect();
        let at: Vec<u64> = records.iter().map(|r| store.append(r).unwrap()).collect();
        assert!(
            store.inner.lock().unwrap().written > 0,
            "some were written out"
        );
        for (record, at) in records.iter().zip(&at) {
            let len = u32::try_from(record.len()).unwrap();
            assert_eq!(store.read(*at, len).as_ref(), Some(record));
        }
        assert_eq!(store.failure(), None);
        let end = at.last().unwrap() + 10_000_000;
        assert_eq!(store.read(end, 4), None);
        assert!(store.failure().is_some(), "a failed read is remembered");
    }

    #[test]
    fn a_damaged_record_is_remembered_as_a_failure() {
        let store = TempFileSpill::new().unwrap();
        store.damaged(42);
        assert!(store.failure().is_some_and(|why| why.contains("42")));
    }
}
