//! Every bound the log enforces, in one place (TigerStyle: put a limit on everything).

/// Largest stored entry, in canonical bytes: 2^16 − 1, because a C2SP `tlog-tiles` entry bundle
/// frames each entry with a 16-bit big-endian length, so no larger entry could be served as a
/// tile.
pub const ENTRY_BYTES_MAX: usize = u16::MAX as usize;
/// Most entries one append call may carry (they are committed atomically, all or none).
pub const APPEND_ENTRIES_MAX: usize = 1024;
/// Most entries the writer commits in one group (one sled batch, one flush, one fsync).
pub const GROUP_ENTRIES_MAX: usize = 4096;
/// Longest `subject`, in bytes.
pub const SUBJECT_BYTES_MAX: usize = 256;
/// Longest `type`, in bytes.
pub const TYPE_BYTES_MAX: usize = 128;
/// Longest `actor`, `correlationid` or `causationid`, in bytes.
pub const TOKEN_BYTES_MAX: usize = 128;
/// Longest `dataschema` or log origin, in bytes.
pub const URI_BYTES_MAX: usize = 256;
/// Most entries a single range read returns.
pub const READ_PAGE_ENTRIES_MAX: usize = 10_000;
/// Most append requests waiting for the writer before callers are pushed back.
pub const WRITER_QUEUE_REQUESTS_MAX: usize = 8192;
/// How many entries a subscription reads from the store at a time while catching up.
pub const SUBSCRIPTION_PAGE_ENTRIES: usize = 256;
/// How many trailing entries are re-verified on open (at least one full group).
pub const TAIL_VERIFY_ENTRIES: u64 = GROUP_ENTRIES_MAX as u64;

const _: () = assert!(APPEND_ENTRIES_MAX <= GROUP_ENTRIES_MAX);
const _: () = assert!(SUBJECT_BYTES_MAX + 64 < ENTRY_BYTES_MAX);
const _: () = assert!(TAIL_VERIFY_ENTRIES >= GROUP_ENTRIES_MAX as u64);
