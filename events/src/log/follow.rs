//! Following a log that other writers extend: several `serve` nodes on one PostgreSQL database,
//! one leading (its writer commits), the others following. A follower's writer reads what was
//! committed past its head, checks each entry as the tail check does (well-formed, from this
//! log, as its index record says, chained to the one before, not earlier than it) and that the
//! Merkle nodes recorded are the ones its own frontier computes, and only then takes it in:
//! readers, proofs and subscribers of a follower see exactly what the leader made durable.

use super::writer::{Landing, Writer};
use super::{mpsc, oneshot, Head, Log, Message, ReadError};
use crate::verify::{check_in_chunk, check_link, ChunkError, PairedChunks};

impl Log {
    /// Takes in what other writers committed to this log's store since this handle's head, and
    /// returns the new size. A sled store has no other writer: its size is returned as it is.
    /// A writer fenced by another (see [`super::AppendError::Fenced`]) is current again once it
    /// has followed.
    ///
    /// # Errors
    /// [`ReadError::IndexCorrupt`] when what the store holds past the head does not verify (the
    /// handle stays at its head), or the store cannot be read.
    ///
    /// # Panics
    /// If called from inside an async runtime (it waits for the writer thread).
    pub fn follow(&self) -> Result<u64, ReadError> {
        let (sender, message, answer) = self.follow_request()?;
        sender.blocking_send(message).map_err(|_| closed())?;
        answer
            .blocking_recv()
            .map_err(|_| closed())?
            .map_err(ReadError::IndexCorrupt)
    }

    /// [`Log::follow`] for async callers.
    ///
    /// # Errors
    /// As [`Log::follow`].
    pub async fn follow_async(&self) -> Result<u64, ReadError> {
        let (sender, message, answer) = self.follow_request()?;
        sender.send(message).await.map_err(|_| closed())?;
        answer
            .await
            .map_err(|_| closed())?
            .map_err(ReadError::IndexCorrupt)
    }

    /// The writer's inbox, the follow message for it, and where its answer comes.
    fn follow_request(&self) -> Result<(mpsc::Sender<Message>, Message, FollowAnswer), ReadError> {
        let (reply, answer) = oneshot::channel();
        let sender = self.shared.sender.lock().expect("sender lock").clone();
        Ok((sender.ok_or_else(closed)?, Message::Follow(reply), answer))
    }
}

type FollowAnswer = oneshot::Receiver<Result<u64, String>>;

fn closed() -> ReadError {
    ReadError::IndexCorrupt("the log is closed".into())
}

impl Writer {
    pub(super) fn follow(&mut self) -> Result<u64, String> {
        self.settle()?;
        if let Some(reason) = self.failed.as_ref().filter(|_| !self.fenced) {
            // Its head is not a verified one to follow from.
            return Err(reason.clone());
        }
        let Some(pg) = self.store.postgres() else {
            return Ok(self.head.size);
        };
        let (target, target_hash) = pg.head()?;
        if target <= self.head.size {
            return Ok(self.head.size);
        }
        let mut frontier = self.frontier.clone();
        let (mut size, mut last_hash, mut last_time) =
            (self.head.size, self.head.last_hash, self.head.last_time);
        let mut index_records = Vec::new();
        for chunk in PairedChunks::between(&self.store, size, target) {
            let chunk = chunk.map_err(|e| match e {
                ChunkError::Read(e) => format!("storage: {e}"),
                ChunkError::Problem(p) => p.to_string(),
            })?;
            let index = chunk.decode_index().map_err(|p| p.to_string())?;
            let mut nodes = Vec::with_capacity(index.nodes.len());
            for (k, (seq, bytes)) in chunk.entries().enumerate() {
                let checked = check_in_chunk(seq, bytes, index.entries.get(k), &self.origin)
                    .map_err(|p| p.to_string())?;
                check_link(&checked, &last_hash).map_err(|p| p.to_string())?;
                if last_time.is_some_and(|t| checked.time < t) {
                    return Err(format!("entry {seq} is earlier than the entry before it"));
                }
                frontier.push(checked.leaf, |node| {
                    if node.level > 0 {
                        nodes.extend_from_slice(&node.hash.0);
                    }
                });
                (size, last_hash, last_time) = (seq + 1, checked.hash, Some(checked.time));
            }
            if nodes != index.nodes {
                return Err(format!(
                    "the Merkle nodes recorded for the chunk at {} are not the ones its entries make",
                    chunk.first
                ));
            }
            index_records.push((chunk.first, chunk.index.clone()));
            if size >= target {
                break;
            }
        }
        if size < target || (size == target && last_hash != target_hash) {
            return Err(format!(
                "the head row names {target} entries ending in {target_hash}; the store holds {size} ending in {last_hash}"
            ));
        }
        self.land(Landing {
            head: Head {
                size,
                last_hash,
                root: frontier.root(),
                last_time,
            },
            frontier,
            index_records,
        });
        if self.fenced {
            self.failed = None;
            self.fenced = false;
        }
        Ok(size)
    }
}
