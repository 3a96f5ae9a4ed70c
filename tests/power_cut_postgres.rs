//! The power-cut harness under PostgreSQL's own data directory: a check that the settings we
//! run PostgreSQL with keep its promise (a commit acknowledged with `synchronous_commit = on`
//! survives a power cut). A throwaway cluster (`initdb`, loopback port, a temporary directory;
//! run as the `postgres` user when the test runs as root) is started under
//! `events/tests/power_cut/powercut.c` in whole-file mode (PostgreSQL syncs from other processes
//! than the ones that wrote); one `psql` inserts rows one commit each and every acknowledged row
//! is noted; every PostgreSQL process is stopped and killed at a random moment; the durable
//! image is started as a cluster and must hold every acknowledged row. Each round starts from
//! the previous round's image.
//!
//! Needs PostgreSQL's server (Debian's `postgresql`, which `.ci/run` installs) and `cc`; without
//! them the test says it did not run, except under CI, where that is a failure.

#[path = "../events/tests/power_cut/image.rs"]
mod image;
#[path = "../events/tests/common/postgres_cluster.rs"]
mod postgres_cluster;

use postgres_cluster::{free_port, is_root, runner_command, server_bin};

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Simulated cuts: the issue asks for at least 20 under PostgreSQL's data directory.
const CUTS: u32 = 20;

/// Who runs the server: `postgres` when we are root (initdb refuses root), else us.
struct Runner {
    as_postgres: bool,
}

impl Runner {
    fn command(&self, program: &Path) -> Command {
        runner_command(self.as_postgres, program)
    }

    /// Hands `path` (recursively) to the user the server runs as.
    fn own(&self, path: &Path) {
        if self.as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(path)
                .status()
                .unwrap();
            assert!(status.success());
        }
    }
}

/// Starts `postgres` on `data` (its output in `data/../log`), under `preload` if given.
fn start(
    runner: &Runner,
    bin: &Path,
    data: &Path,
    port: u16,
    (preload, synchronous_commit): (Option<(&Path, &Path)>, &str),
) -> std::process::Child {
    // The library goes to postgres alone (through `env`), not to `runuser` before it.
    let mut command = runner.command(Path::new("env"));
    if let Some((library, shadow)) = preload {
        command
            .arg(format!("LD_PRELOAD={}", library.display()))
            .arg(format!("POWERCUT_ROOT={}", data.display()))
            .arg(format!("POWERCUT_SHADOW={}", shadow.display()))
            .arg("POWERCUT_WHOLE_FILES=1");
    }
    command
        .arg(bin.join("postgres"))
        .arg("-D")
        .arg(data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
        .args(["-c", &format!("synchronous_commit={synchronous_commit}")])
        .args(["-c", "fsync=on"])
        .args(["-c", "full_page_writes=on"])
        .arg("-k")
        .arg(data.parent().unwrap())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(data.with_extension("log")).unwrap());
    command.stdin(Stdio::null());
    let mut child = command.spawn().unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let ready = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .args(["-d", "postgres", "-Atqc", "select 1"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ready {
            return child;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cut_power(&mut child);
    panic!(
        "PostgreSQL did not start on {}: {}",
        data.display(),
        std::fs::read_to_string(data.with_extension("log")).unwrap_or_default()
    );
}

fn psql(port: u16, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
        .args(["-d", "postgres", "-Atqc", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `root` and every process descended from it.
fn processes_of(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // The parent pid is the second field after the command's closing parenthesis.
            let after = stat.rsplit_once(')')?.1;
            Some((pid, after.split_whitespace().nth(1)?.parse().ok()?))
        })
        .collect();
    let mut all = vec![root];
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        all.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    all
}

/// The power goes: every process of the server stops at once, then dies.
fn cut_power(server: &mut std::process::Child) {
    let pids: Vec<String> = processes_of(server.id())
        .iter()
        .map(u32::to_string)
        .collect();
    for signal in ["-STOP", "-KILL"] {
        let _ = Command::new("kill")
            .arg(signal)
            .args(if pids.len() > 1 {
                &pids[1..]
            } else {
                &pids[..]
            })
            .stderr(Stdio::null())
            .status();
    }
    // `runuser` stops itself when its child is stopped (job control): let it go on to reap.
    let _ = Command::new("kill")
        .args(["-CONT", &pids[0]])
        .stderr(Stdio::null())
        .status();
    // `runuser` reaps the postmaster and exits (killed first, it would leave the postmaster
    // a zombie that nothing here reaps, its pid still holding the lock file).
    let waiting = Instant::now();
    while server.try_wait().ok().flatten().is_none() {
        if waiting.elapsed() > Duration::from_secs(10) {
            let _ = server.kill();
            let _ = server.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A throwaway cluster's programs and the harness's library, in a temporary directory.
struct Harness {
    runner: Runner,
    bin: PathBuf,
    library: PathBuf,
    work: tempfile::TempDir,
}

impl Harness {
    /// The harness, or why this machine cannot run it (a failure under CI).
    fn new() -> Option<Self> {
        let missing = match (server_bin(), Command::new("cc").arg("--version").output()) {
            (None, _) => Some("PostgreSQL's server is not installed (apt-get install postgresql)"),
            (_, Err(_)) => Some("no C compiler (cc)"),
            _ => None,
        };
        if let Some(why) = missing {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the PostgreSQL power-cut test: {why}"
            );
            eprintln!("SKIPPED: {why}; the PostgreSQL power-cut test did not run");
            return None;
        }
        let work = tempfile::tempdir().unwrap();
        let library = image::build_library(
            Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/events/tests/power_cut/powercut.c"
            )),
            work.path(),
        )
        .unwrap();
        Some(Self {
            runner: Runner {
                as_postgres: is_root(),
            },
            bin: server_bin().unwrap(),
            library,
            work,
        })
    }

    /// A new cluster with the table, checkpointed and synced: where the first round starts.
    fn initial(&self) -> PathBuf {
        let cluster = self.work.path().join("round-0");
        std::fs::create_dir_all(&cluster).unwrap();
        self.runner.own(self.work.path());
        let data = cluster.join("data");
        let initdb = self
            .runner
            .command(&self.bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--wal-segsize=1", "-N"])
            .output()
            .unwrap();
        assert!(
            initdb.status.success(),
            "{}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let port = free_port();
        let mut server = start(&self.runner, &self.bin, &data, port, (None, "on"));
        psql(port, "create table acked (n bigint primary key)");
        psql(port, "checkpoint");
        cut_power(&mut server);
        // `-N` skipped initdb's own syncs: the first image must start durable.
        Command::new("sync").status().unwrap();
        data
    }

    /// One round: the cluster in `data` under the library, one psql inserting rows from
    /// `first`, one commit each, cut after `run_for`; returns the rows acknowledged and the
    /// durable image as a data directory.
    fn cut(
        &self,
        (data, round): (&Path, u32),
        first: u64,
        run_for: Duration,
        synchronous_commit: &str,
    ) -> (Vec<u64>, PathBuf) {
        let shadow = self.work.path().join(format!("shadow-{round}"));
        std::fs::create_dir_all(&shadow).unwrap();
        self.runner.own(&shadow);
        let port = free_port();
        let preload = Some((self.library.as_path(), shadow.as_path()));
        let mut server = start(
            &self.runner,
            &self.bin,
            data,
            port,
            (preload, synchronous_commit),
        );
        // `returning n` prints each row once its commit is acknowledged.
        let mut client = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .args(["-d", "postgres", "-Atq", "-v", "ON_ERROR_STOP=1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = client.stdin.take().unwrap();
        let feeder = std::thread::spawn(move || {
            for n in first..first + 100_000 {
                let statement = format!("insert into acked values ({n}) returning n;\n");
                if stdin.write_all(statement.as_bytes()).is_err() {
                    break;
                }
            }
        });
        let stdout = client.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|line| line.trim().parse::<u64>().ok())
                .collect::<Vec<u64>>()
        });
        std::thread::sleep(run_for);
        cut_power(&mut server);
        let _ = client.kill();
        let _ = client.wait();
        let _ = feeder.join();
        let acked = reader.join().unwrap();
        let next = self.work.path().join(format!("round-{round}"));
        image::materialise(&shadow, &next.join("data"));
        std::fs::set_permissions(
            next.join("data"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        self.runner.own(&next);
        (acked, next.join("data"))
    }

    /// The rows the cluster in `data` holds once started (and recovered); left checkpointed
    /// and synced for the next round.
    fn kept(&self, data: &Path) -> std::collections::HashSet<u64> {
        let port = free_port();
        let mut server = start(&self.runner, &self.bin, data, port, (None, "on"));
        let kept = psql(port, "select n from acked")
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        psql(port, "checkpoint");
        cut_power(&mut server);
        Command::new("sync").status().unwrap();
        kept
    }
}

#[test]
fn power_cuts_under_postgresql_lose_no_acknowledged_commit() {
    let Some(harness) = Harness::new() else {
        return;
    };
    let mut data = harness.initial();
    let mut acknowledged: Vec<u64> = Vec::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 1..=CUTS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let first = acknowledged.last().map_or(0, |n| n + 1);
        let run_for = Duration::from_millis(300 + seed % 700);
        let (acked, image) = harness.cut((&data, round), first, run_for, "on");
        acknowledged.extend(&acked);
        let kept = harness.kept(&image);
        let lost: Vec<_> = acknowledged.iter().filter(|n| !kept.contains(n)).collect();
        assert!(
            lost.is_empty(),
            "round {round}: {} acknowledged commits lost after a power cut, e.g. {:?}",
            lost.len(),
            lost.first()
        );
        eprintln!("round {round}: {} acknowledged, none lost", acked.len());
        data = image;
    }
    assert!(
        acknowledged.len() > 100,
        "only {} commits were acknowledged",
        acknowledged.len()
    );
}

/// The harness can fail: with `synchronous_commit = off`, PostgreSQL answers a commit before
/// its WAL is flushed, and a cut loses the last ones.
#[test]
fn the_harness_catches_commits_acknowledged_before_their_wal_is_flushed() {
    let Some(harness) = Harness::new() else {
        return;
    };
    let data = harness.initial();
    let (acked, image) = harness.cut((&data, 1), 0, Duration::from_millis(800), "off");
    let kept = harness.kept(&image);
    let lost = acked.iter().filter(|n| !kept.contains(n)).count();
    assert!(acked.len() > 100, "{}", acked.len());
    assert!(
        lost > 0,
        "nothing lost with synchronous_commit = off: the harness keeps unsynced WAL"
    );
}
