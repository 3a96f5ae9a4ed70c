//! The audit's live heap as it goes: `cargo run --release --example audit_memory -p replay --
//! BUNDLE_DIR` prints, every 100,000 entries, the bytes allocated and not yet freed (and the peak
//! so far) under a counting wrapper of the system allocator. Unlike peak RSS it does not depend on
//! how an allocator keeps freed pages, so it shows what grows with the log.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

/// The system allocator, counting live bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn grew(by: isize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn size(layout: Layout) -> isize {
    isize::try_from(layout.size()).unwrap_or(isize::MAX)
}

// SAFETY: every call is passed straight to `System` with the caller's arguments.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(size(layout));
        // SAFETY: as the caller's contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        grew(-size(layout));
        // SAFETY: as the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(isize::try_from(new_size).unwrap_or(isize::MAX) - size(layout));
        // SAFETY: as the caller's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn megabytes(bytes: &AtomicIsize) -> f64 {
    bytes.load(Ordering::Relaxed) as f64 / 1e6
}

fn main() {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: audit_memory BUNDLE_DIR");
        std::process::exit(2);
    };
    let mut reported = 0;
    let report = replay::audit::audit_bundle(
        std::path::Path::new(&dir),
        &replay::bundle::BundleOptions::default(),
        |seq| {
            if seq / 100_000 != reported {
                reported = seq / 100_000;
                println!(
                    "seq {seq}: live {:.1} MB, peak {:.1} MB",
                    megabytes(&LIVE),
                    megabytes(&PEAK)
                );
            }
        },
    );
    match report {
        Ok(report) => println!(
            "end: live {:.1} MB, peak {:.1} MB; {}",
            megabytes(&LIVE),
            megabytes(&PEAK),
            report
                .decisions
                .map_or("not re-derived".into(), |d| format!(
                    "{} findings",
                    d.findings.len()
                ))
        ),
        Err(e) => {
            eprintln!("audit failed: {e}");
            std::process::exit(2);
        }
    }
}
