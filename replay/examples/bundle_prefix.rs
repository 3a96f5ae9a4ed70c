//! A bundle of the first N entries of another, for measuring at an exact size:
//! `cargo run --release --example bundle_prefix -p replay -- SRC_DIR N OUT_DIR`.
//!
//! The entries are copied byte for byte; the checkpoint over them is signed with a fixed
//! measurement key (written to `OUT_DIR/verifier-key`), not the log's own, so the result verifies
//! only when that key is trusted: it is a measuring tool, and says so in its key's name.

use events::checkpoint::{Checkpoint, NoteSigner};
use events::merkle::MemoryTree;
use std::io::{BufRead, Write};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [source, count, out] = &args[..] else {
        eprintln!("usage: bundle_prefix SRC_DIR N OUT_DIR");
        std::process::exit(2);
    };
    let count: u64 = count.parse()?;
    let out = std::path::Path::new(out);
    std::fs::create_dir_all(out)?;
    let input = std::fs::File::open(std::path::Path::new(source).join("entries.jsonl"))?;
    let mut lines = std::io::BufReader::with_capacity(1 << 20, input).split(b'\n');
    let mut output = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(out.join("entries.jsonl"))?,
    );
    let mut tree = MemoryTree::new();
    let mut origin = None;
    for _ in 0..count {
        let Some(line) = lines.next() else {
            return Err(format!("{source} has fewer than {count} entries").into());
        };
        let line = line?;
        if origin.is_none() {
            origin = Some(events::Entry::parse(&line)?.source);
        }
        tree.push_entry(&line);
        output.write_all(&line)?;
        output.write_all(b"\n")?;
    }
    output.flush()?;
    let signer = NoteSigner::from_seed("measurement-prefix", [7; 32])?;
    let checkpoint = Checkpoint {
        origin: origin.ok_or("no entries")?,
        size: count,
        root: tree.root(),
    };
    std::fs::write(out.join("checkpoint"), checkpoint.sign(&signer))?;
    std::fs::write(out.join("verifier-key"), format!("{}\n", signer.verifier()))?;
    Ok(())
}
