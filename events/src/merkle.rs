//! RFC 6962 / RFC 9162 §2.1 Merkle tree over entry bytes in seq order.
//!
//! leaf = SHA-256(0x00 ‖ entry bytes), node = SHA-256(0x01 ‖ left ‖ right), empty = SHA-256("").
//!
//! The store keeps every *complete* perfect subtree (level `l`, index `i` covers leaves
//! `[i·2^l, (i+1)·2^l)`), written once when its last leaf is appended and never changed. Every
//! range the RFC's recursive definitions touch is either such a subtree or a right-edge range that
//! decomposes into at most ⌈log₂ n⌉ of them, so the root of any size, and any inclusion or
//! consistency proof, costs O(log n) node reads, for the current size or any earlier one.

use crate::entry::Digest;
use sha2::{Digest as _, Sha256};

/// Hash of a leaf: SHA-256(0x00 ‖ bytes).
pub fn leaf_hash(bytes: &[u8]) -> Digest {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(bytes);
    Digest(h.finalize().into())
}

/// Hash of an interior node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left.0);
    h.update(right.0);
    Digest(h.finalize().into())
}

/// Root of the empty tree: SHA-256("").
pub fn empty_root() -> Digest {
    Digest::of(b"")
}

/// Largest power of two strictly less than `n` (n ≥ 2).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Somewhere complete perfect subtrees can be read from.
pub trait NodeSource {
    /// Error reading a node.
    type Error;
    /// The hash of the complete subtree at `level` and `index`, which must exist.
    ///
    /// # Errors
    /// When the node cannot be read (missing, IO).
    fn node(&self, level: u8, index: u64) -> Result<Digest, Self::Error>;
}

/// MTH(D\[start:end\]) for a range the RFC's recursion produces (start aligned to its largest
/// power-of-two part), computed from stored subtrees.
///
/// # Errors
/// As the source's.
pub fn subtree_root<S: NodeSource>(source: &S, start: u64, end: u64) -> Result<Digest, S::Error> {
    debug_assert!(start < end);
    let n = end - start;
    if n.is_power_of_two() && start.is_multiple_of(n) {
        let level = u8::try_from(n.trailing_zeros()).expect("level < 64");
        return source.node(level, start >> level);
    }
    let k = split_point(n);
    let left = subtree_root(source, start, start + k)?;
    let right = subtree_root(source, start + k, end)?;
    Ok(node_hash(&left, &right))
}

/// The root of the first `size` leaves.
///
/// # Errors
/// As the source's.
pub fn root<S: NodeSource>(source: &S, size: u64) -> Result<Digest, S::Error> {
    if size == 0 {
        return Ok(empty_root());
    }
    subtree_root(source, 0, size)
}

/// Why a proof cannot be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofRequestError {
    /// Leaf index not below the tree size.
    #[error("leaf {index} is not in a tree of size {size}")]
    IndexOutOfRange {
        /// Requested leaf.
        index: u64,
        /// Requested size.
        size: u64,
    },
    /// Sizes not ordered as `from ≤ to`.
    #[error("cannot prove consistency from size {from} to smaller size {to}")]
    SizesOutOfOrder {
        /// Earlier size.
        from: u64,
        /// Later size.
        to: u64,
    },
    /// Size beyond the log.
    #[error("tree size {size} is beyond the log's size {available}")]
    SizeBeyondLog {
        /// Requested size.
        size: u64,
        /// The log's size.
        available: u64,
    },
}

/// Audit path for leaf `index` in the tree of `size` leaves (RFC 9162 §2.1.3.1), leaf-side first.
///
/// # Errors
/// As the source's; the caller checks `index < size ≤ log size`.
pub fn inclusion_proof<S: NodeSource>(
    source: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Digest>, S::Error> {
    debug_assert!(index < size);
    let mut path = Vec::new();
    inclusion_path(source, index, 0, size, &mut path)?;
    Ok(path)
}

fn inclusion_path<S: NodeSource>(
    source: &S,
    index: u64,
    start: u64,
    end: u64,
    path: &mut Vec<Digest>,
) -> Result<(), S::Error> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split_point(n);
    if index - start < k {
        inclusion_path(source, index, start, start + k, path)?;
        path.push(subtree_root(source, start + k, end)?);
    } else {
        inclusion_path(source, index, start + k, end, path)?;
        path.push(subtree_root(source, start, start + k)?);
    }
    Ok(())
}

/// Consistency proof from size `from` to size `to` (RFC 9162 §2.1.4.1).
///
/// # Errors
/// As the source's; the caller checks `from ≤ to ≤ log size`.
pub fn consistency_proof<S: NodeSource>(
    source: &S,
    from: u64,
    to: u64,
) -> Result<Vec<Digest>, S::Error> {
    debug_assert!(from <= to);
    let mut path = Vec::new();
    if from == 0 || from == to {
        return Ok(path);
    }
    consistency_subproof(source, from, 0, to, true, &mut path)?;
    Ok(path)
}

fn consistency_subproof<S: NodeSource>(
    source: &S,
    m: u64,
    start: u64,
    end: u64,
    whole: bool,
    path: &mut Vec<Digest>,
) -> Result<(), S::Error> {
    let n = end - start;
    if m == n {
        if !whole {
            path.push(subtree_root(source, start, end)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        consistency_subproof(source, m, start, start + k, whole, path)?;
        path.push(subtree_root(source, start + k, end)?);
    } else {
        consistency_subproof(source, m - k, start + k, end, false, path)?;
        path.push(subtree_root(source, start, start + k)?);
    }
    Ok(())
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// Leaf index not below the tree size.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// Claimed leaf.
        index: u64,
        /// Claimed size.
        size: u64,
    },
    /// The proof has the wrong number of hashes for the claimed position.
    #[error("proof has the wrong length for the claimed sizes")]
    WrongLength,
    /// The recomputed root differs from the claimed one.
    #[error("recomputed root {computed} does not match the claimed root {claimed}")]
    RootMismatch {
        /// Root from the proof.
        computed: Digest,
        /// Root claimed.
        claimed: Digest,
    },
    /// Sizes are not `from ≤ to`.
    #[error("first size {from} is larger than second size {to}")]
    SizesOutOfOrder {
        /// First size.
        from: u64,
        /// Second size.
        to: u64,
    },
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
///
/// # Errors
/// [`ProofError`] saying which check failed.
pub fn verify_inclusion(
    leaf: &Digest,
    index: u64,
    size: u64,
    proof: &[Digest],
    root: &Digest,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if r != *root {
        return Err(ProofError::RootMismatch {
            computed: r,
            claimed: *root,
        });
    }
    Ok(())
}

/// Verifies a consistency proof (RFC 9162 §2.1.4.2) that the tree of size `to` with `to_root`
/// extends the tree of size `from` with `from_root`.
///
/// # Errors
/// [`ProofError`] saying which check failed.
pub fn verify_consistency(
    from: u64,
    to: u64,
    from_root: &Digest,
    to_root: &Digest,
    proof: &[Digest],
) -> Result<(), ProofError> {
    if from > to {
        return Err(ProofError::SizesOutOfOrder { from, to });
    }
    if from == to {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        if from_root != to_root {
            return Err(ProofError::RootMismatch {
                computed: *to_root,
                claimed: *from_root,
            });
        }
        return Ok(());
    }
    if from == 0 {
        // Every tree extends the empty one; the RFC leaves this case to the caller.
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        if *from_root != empty_root() {
            return Err(ProofError::RootMismatch {
                computed: empty_root(),
                claimed: *from_root,
            });
        }
        return Ok(());
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    let mut path: Vec<Digest> = Vec::with_capacity(proof.len() + 1);
    if from.is_power_of_two() {
        path.push(*from_root);
    }
    path.extend_from_slice(proof);
    let (mut fnode, mut snode) = (from - 1, to - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr != *from_root {
        return Err(ProofError::RootMismatch {
            computed: fr,
            claimed: *from_root,
        });
    }
    if sr != *to_root {
        return Err(ProofError::RootMismatch {
            computed: sr,
            claimed: *to_root,
        });
    }
    Ok(())
}

/// The right edge of a growing tree: the roots of the perfect subtrees that make up `size`
/// leaves (one per set bit), enough to append and to compute the root without reading anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// `levels[l]` is the complete subtree at level `l` on the right edge, if bit `l` of size is set.
    levels: Vec<Option<Digest>>,
}

/// A node completed by an append, to be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedNode {
    /// Level (0 = leaf).
    pub level: u8,
    /// Index within the level.
    pub index: u64,
    /// Its hash.
    pub hash: Digest,
}

impl Frontier {
    /// Reads the right edge of a tree of `size` leaves from stored nodes.
    ///
    /// # Errors
    /// As the source's.
    pub fn load<S: NodeSource>(source: &S, size: u64) -> Result<Self, S::Error> {
        let mut levels = vec![None; 64 - size.leading_zeros() as usize];
        for (level, slot) in levels.iter_mut().enumerate() {
            if size >> level & 1 == 1 {
                let level_u8 = u8::try_from(level).expect("level < 64");
                *slot = Some(source.node(level_u8, (size >> level) - 1)?);
            }
        }
        Ok(Self { size, levels })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The right edge: for each level, the perfect subtree there (one where `size` has a bit).
    pub fn edge(&self) -> &[Option<Digest>] {
        &self.levels
    }

    /// A frontier from its size and edge, `None` unless the edge has a subtree exactly where
    /// the size has a bit.
    pub fn from_edge(size: u64, levels: Vec<Option<Digest>>) -> Option<Self> {
        let consistent = levels.len() <= 64
            && (0..64).all(|l| (size >> l & 1 == 1) == levels.get(l).is_some_and(Option::is_some));
        consistent.then_some(Self { size, levels })
    }

    /// Appends a leaf, calling `completed` for the leaf and every subtree it completes.
    pub fn push(&mut self, leaf: Digest, mut completed: impl FnMut(CompletedNode)) {
        let index = self.size;
        completed(CompletedNode {
            level: 0,
            index,
            hash: leaf,
        });
        let mut hash = leaf;
        let mut level = 0usize;
        while index >> level & 1 == 1 {
            let left = self.levels[level].take().expect("set bit has a subtree");
            hash = node_hash(&left, &hash);
            level += 1;
            completed(CompletedNode {
                level: u8::try_from(level).expect("level < 64"),
                index: index >> level,
                hash,
            });
        }
        if self.levels.len() <= level {
            self.levels.resize(level + 1, None);
        }
        self.levels[level] = Some(hash);
        self.size += 1;
    }

    /// The root of the tree so far.
    pub fn root(&self) -> Digest {
        let mut acc: Option<Digest> = None;
        for subtree in self.levels.iter().flatten() {
            acc = Some(match acc {
                None => *subtree,
                Some(right) => node_hash(subtree, &right),
            });
        }
        acc.unwrap_or_else(empty_root)
    }
}

/// Every complete subtree of a tree held in memory: for verifiers that read a whole export and
/// for tests. Memory is about 64 bytes per leaf.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    frontier: Frontier,
    /// `levels[l][i]` = complete subtree (l, i).
    levels: Vec<Vec<Digest>>,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the leaf for `entry_bytes`.
    pub fn push_entry(&mut self, entry_bytes: &[u8]) {
        self.push_leaf(leaf_hash(entry_bytes));
    }

    /// Appends a leaf hash.
    pub fn push_leaf(&mut self, leaf: Digest) {
        let levels = &mut self.levels;
        self.frontier.push(leaf, |node| {
            let level = usize::from(node.level);
            if levels.len() <= level {
                levels.resize_with(level + 1, Vec::new);
            }
            debug_assert_eq!(levels[level].len() as u64, node.index);
            levels[level].push(node.hash);
        });
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Root of the whole tree.
    pub fn root(&self) -> Digest {
        self.frontier.root()
    }
}

impl NodeSource for MemoryTree {
    type Error = std::convert::Infallible;
    fn node(&self, level: u8, index: u64) -> Result<Digest, Self::Error> {
        Ok(self.levels[usize::from(level)][usize::try_from(index).expect("index fits memory")])
    }
}
