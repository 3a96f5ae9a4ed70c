//! RFC 6962 / RFC 9162 known answers, and properties of proofs over larger trees.

use events::merkle::{self, MemoryTree, ProofError};
use events::Digest;
use proptest::prelude::*;

const CT_LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];
const CT_ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn d(hex_text: &str) -> Digest {
    Digest::from_hex(hex_text).unwrap()
}

fn ct_tree(n: usize) -> MemoryTree {
    let mut tree = MemoryTree::new();
    for leaf in &CT_LEAVES[..n] {
        tree.push_entry(&hex::decode(leaf).unwrap());
    }
    tree
}

/// MTH straight from RFC 9162 §2.1.1, over leaf data, sharing no code with the crate's tree.
fn reference_root(leaves: &[Vec<u8>]) -> Digest {
    match leaves.len() {
        0 => merkle::empty_root(),
        1 => merkle::leaf_hash(&leaves[0]),
        n => {
            let k = largest_power_of_two_below(n);
            merkle::node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
        }
    }
}

/// PATH(m, D[n]) straight from RFC 9162 §2.1.3.1.
fn reference_path(m: usize, leaves: &[Vec<u8>]) -> Vec<Digest> {
    let n = leaves.len();
    if n <= 1 {
        return vec![];
    }
    let k = largest_power_of_two_below(n);
    if m < k {
        let mut p = reference_path(m, &leaves[..k]);
        p.push(reference_root(&leaves[k..]));
        p
    } else {
        let mut p = reference_path(m - k, &leaves[k..]);
        p.push(reference_root(&leaves[..k]));
        p
    }
}

/// SUBPROOF(m, D[n], b) straight from RFC 9162 §2.1.4.1.
fn reference_subproof(m: usize, leaves: &[Vec<u8>], whole: bool) -> Vec<Digest> {
    let n = leaves.len();
    if m == n {
        return if whole {
            vec![]
        } else {
            vec![reference_root(leaves)]
        };
    }
    let k = largest_power_of_two_below(n);
    if m <= k {
        let mut p = reference_subproof(m, &leaves[..k], whole);
        p.push(reference_root(&leaves[k..]));
        p
    } else {
        let mut p = reference_subproof(m - k, &leaves[k..], false);
        p.push(reference_root(&leaves[..k]));
        p
    }
}

fn largest_power_of_two_below(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

#[test]
fn ct_roots_for_every_size_1_to_8() {
    assert_eq!(
        merkle::empty_root(),
        d("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert_eq!(MemoryTree::new().root(), merkle::empty_root());
    for n in 1..=8 {
        let tree = ct_tree(n);
        assert_eq!(tree.root(), d(CT_ROOTS[n - 1]), "size {n}");
        let leaves: Vec<Vec<u8>> = CT_LEAVES[..n]
            .iter()
            .map(|l| hex::decode(l).unwrap())
            .collect();
        assert_eq!(
            reference_root(&leaves),
            d(CT_ROOTS[n - 1]),
            "reference, size {n}"
        );
        // Every earlier size's root is still derivable from the stored subtrees.
        let full = ct_tree(8);
        assert_eq!(merkle::root(&full, n as u64).unwrap(), d(CT_ROOTS[n - 1]));
    }
}

#[test]
fn ct_known_inclusion_and_consistency_proofs() {
    let tree = ct_tree(8);
    let known_inclusion = [
        (
            0u64,
            [
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            [
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    for (index, expected) in known_inclusion {
        let proof = merkle::inclusion_proof(&tree, index, 8).unwrap();
        assert_eq!(proof, expected.map(d).to_vec(), "leaf {index}");
        let leaf = merkle::leaf_hash(&hex::decode(CT_LEAVES[index as usize]).unwrap());
        merkle::verify_inclusion(&leaf, index, 8, &proof, &d(CT_ROOTS[7])).unwrap();
    }
    let known_consistency: [(u64, u64, &[&str]); 3] = [
        (
            2,
            8,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (from, to, expected) in known_consistency {
        let proof = merkle::consistency_proof(&tree, from, to).unwrap();
        assert_eq!(
            proof,
            expected.iter().map(|h| d(h)).collect::<Vec<_>>(),
            "{from}->{to}"
        );
        merkle::verify_consistency(
            from,
            to,
            &d(CT_ROOTS[from as usize - 1]),
            &d(CT_ROOTS[to as usize - 1]),
            &proof,
        )
        .unwrap();
    }
}

#[test]
fn every_proof_in_small_trees_matches_the_reference_definitions() {
    let leaves: Vec<Vec<u8>> = (0..70u32).map(|i| i.to_be_bytes().to_vec()).collect();
    let mut tree = MemoryTree::new();
    for (n, leaf) in leaves.iter().enumerate() {
        tree.push_entry(leaf);
        let size = n + 1;
        let root = reference_root(&leaves[..size]);
        assert_eq!(tree.root(), root, "size {size}");
        for m in 0..size {
            let proof = merkle::inclusion_proof(&tree, m as u64, size as u64).unwrap();
            assert_eq!(
                proof,
                reference_path(m, &leaves[..size]),
                "inclusion {m} in {size}"
            );
            merkle::verify_inclusion(
                &merkle::leaf_hash(&leaves[m]),
                m as u64,
                size as u64,
                &proof,
                &root,
            )
            .unwrap();
        }
        for m in 1..=size {
            let proof = merkle::consistency_proof(&tree, m as u64, size as u64).unwrap();
            let expected = if m == size {
                vec![]
            } else {
                reference_subproof(m, &leaves[..size], true)
            };
            assert_eq!(proof, expected, "consistency {m} -> {size}");
            merkle::verify_consistency(
                m as u64,
                size as u64,
                &reference_root(&leaves[..m]),
                &root,
                &proof,
            )
            .unwrap();
        }
    }
}

#[test]
fn malformed_proof_requests_and_inputs_fail_cleanly() {
    let tree = ct_tree(8);
    let root = tree.root();
    let leaf = merkle::leaf_hash(b"");
    let proof = merkle::inclusion_proof(&tree, 0, 8).unwrap();
    assert!(matches!(
        merkle::verify_inclusion(&leaf, 8, 8, &proof, &root),
        Err(ProofError::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        merkle::verify_inclusion(&leaf, 0, 8, &proof[..2], &root),
        Err(ProofError::WrongLength)
    ));
    let mut longer = proof.clone();
    longer.push(root);
    assert!(merkle::verify_inclusion(&leaf, 0, 8, &longer, &root).is_err());
    assert!(matches!(
        merkle::verify_consistency(8, 2, &root, &root, &[]),
        Err(ProofError::SizesOutOfOrder { .. })
    ));
    assert!(matches!(
        merkle::verify_consistency(2, 8, &d(CT_ROOTS[1]), &root, &[]),
        Err(ProofError::WrongLength)
    ));
    assert!(merkle::verify_consistency(8, 8, &root, &d(CT_ROOTS[6]), &[]).is_err());
}

fn flip(digest: &Digest, bit: usize) -> Digest {
    let mut bytes = digest.0;
    bytes[bit / 8 % 32] ^= 1 << (bit % 8);
    Digest(bytes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn proofs_verify_and_any_flipped_bit_breaks_them(size in 1u64..3000, a in any::<u64>(), b in any::<u64>(), bit in 0usize..256) {
        let mut tree = MemoryTree::new();
        for i in 0..size {
            tree.push_entry(&i.to_le_bytes());
        }
        let root = tree.root();
        let index = a % size;
        let leaf = merkle::leaf_hash(&index.to_le_bytes());
        let proof = merkle::inclusion_proof(&tree, index, size).unwrap();
        prop_assert!(merkle::verify_inclusion(&leaf, index, size, &proof, &root).is_ok());
        prop_assert!(merkle::verify_inclusion(&leaf, index, size, &proof, &flip(&root, bit)).is_err());
        prop_assert!(merkle::verify_inclusion(&flip(&leaf, bit), index, size, &proof, &root).is_err());
        for i in 0..proof.len() {
            let mut bad = proof.clone();
            bad[i] = flip(&bad[i], bit);
            prop_assert!(merkle::verify_inclusion(&leaf, index, size, &bad, &root).is_err());
        }
        for k in 0..12 {
            let other = index ^ (1 << k);
            if other != index {
                prop_assert!(merkle::verify_inclusion(&leaf, other, size, &proof, &root).is_err(), "index bit {}", k);
            }
        }
        // A size with another proof shape fails. (An inclusion proof alone does not bind the
        // size: RFC 9162 leaves that to the signed checkpoint, which carries size and root.)
        for k in 0..12 {
            let other = size ^ (1 << k);
            if other > index && merkle::inclusion_proof(&tree, index, other.min(size)).map(|p| p.len()).ok() != Some(proof.len()) {
                prop_assert!(merkle::verify_inclusion(&leaf, index, other, &proof, &root).is_err());
            }
        }

        let from = 1 + b % size;
        let from_root = merkle::root(&tree, from).unwrap();
        let consistency = merkle::consistency_proof(&tree, from, size).unwrap();
        prop_assert!(merkle::verify_consistency(from, size, &from_root, &root, &consistency).is_ok());
        prop_assert!(merkle::verify_consistency(from, size, &flip(&from_root, bit), &root, &consistency).is_err());
        prop_assert!(merkle::verify_consistency(from, size, &from_root, &flip(&root, bit), &consistency).is_err());
        for i in 0..consistency.len() {
            let mut bad = consistency.clone();
            bad[i] = flip(&bad[i], bit);
            prop_assert!(merkle::verify_consistency(from, size, &from_root, &root, &bad).is_err());
        }
        if from < size {
            prop_assert!(merkle::verify_consistency(from, size, &from_root, &root, &consistency[..consistency.len() - 1]).is_err());
        }
    }
}
