//! A throwaway PostgreSQL cluster for tests: `initdb` into a temporary directory, the server on a
//! loopback port (as the `postgres` user when the tests run as root: initdb refuses root), one
//! fresh database per test. A watchdog process stops the server and removes the directory once
//! the test process has exited, so nothing outlives the run.
//!
//! Needs Debian's `postgresql` package (`scripts/test` installs it). Without it, `cluster()`
//! answers `None` after saying which test did not run, except under `CI`, where it fails.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running cluster.
pub struct Cluster {
    pub port: u16,
    pub bin: PathBuf,
    pub dir: PathBuf,
    as_postgres: bool,
}

/// The directory of PostgreSQL's server programs, if installed.
pub fn server_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The process-wide cluster, started on first use; `None` (said on stderr) when PostgreSQL is
/// not installed and this is not CI.
pub fn cluster(test: &str) -> Option<&'static Cluster> {
    static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
    let cluster = CLUSTER.get_or_init(|| server_bin().map(Cluster::start));
    if cluster.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the PostgreSQL tests ({test}): PostgreSQL's server is not installed"
        );
        eprintln!(
            "SKIPPED: {test} on PostgreSQL: PostgreSQL's server is not installed (apt-get install postgresql, or run scripts/test)"
        );
    }
    cluster.as_ref()
}

impl Cluster {
    fn command(&self, program: &Path) -> Command {
        runner_command(self.as_postgres, program)
    }

    /// Initialises and starts a cluster with the settings the log is run with
    /// (`synchronous_commit = on`, `fsync = on`).
    pub fn start(bin: PathBuf) -> Self {
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("trustledger-pg-")
            .tempdir()
            .unwrap()
            .keep();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown of {}", dir.display());
        }
        let data = dir.join("data");
        let out = runner_command(as_postgres, &bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let cluster = Self {
            port,
            bin,
            dir,
            as_postgres,
        };
        cluster.launch();
        cluster.watch_for_exit();
        cluster
    }

    /// Starts the server (again) on the cluster's data directory and waits until it answers.
    pub fn launch(&self) {
        let data = self.dir.join("data");
        let status = self
            .command(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .arg("-o")
            .arg(format!(
                "-p {} -c listen_addresses=127.0.0.1 -k {} -c synchronous_commit=on -c fsync=on -c max_connections=300",
                self.port,
                self.dir.display()
            ))
            .args(["-w", "-t", "60", "start"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "PostgreSQL did not start: {}",
            std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
        );
        self.wait_until_ready();
    }

    fn wait_until_ready(&self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if self.try_psql("postgres", "select 1").is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("PostgreSQL on port {} does not answer", self.port);
    }

    /// Stops the server (`immediate`: as a crash, the WAL replayed at the next start).
    pub fn stop(&self) {
        let status = self
            .command(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl stop");
    }

    /// Stops the server and removes the directory once this process has exited.
    // The watchdog outlives this process by design: nobody here waits for it.
    #[allow(clippy::zombie_processes)]
    fn watch_for_exit(&self) {
        // pg_ctl runs as the server's user; rm as us (the directory's parent is ours).
        let as_server = if self.as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
             {as_server}{pg_ctl} -D {data} -m immediate stop >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            pg_ctl = self.bin.join("pg_ctl").display(),
            data = self.dir.join("data").display(),
            dir = self.dir.display(),
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
    }

    /// Runs SQL as the superuser in `database`.
    pub fn try_psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", database, "-v", "ON_ERROR_STOP=1", "-Atqc", sql])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    pub fn psql(&self, database: &str, sql: &str) -> String {
        self.try_psql(database, sql).unwrap()
    }

    /// A new, empty database's URL.
    pub fn new_database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

/// `program` run as the `postgres` user (through `runuser`) when `as_postgres`, else as us.
pub fn runner_command(as_postgres: bool, program: &Path) -> Command {
    if as_postgres {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}
