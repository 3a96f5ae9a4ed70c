//! The service on PostgreSQL, as an operator runs it: a simulated history migrated from its data
//! directory into a database, `serve --store postgres://…`, commands through the API, PostgreSQL
//! stopped and started again under the running server (503s while it is down, then the same
//! server takes commands again), `audit` of the database CLEAN, and the log migrated back to a
//! directory that audits CLEAN too. A test binary of its own: it stops the cluster it shares.

#[path = "http_client/mod.rs"]
mod http_client;
#[path = "../events/tests/common/postgres_cluster.rs"]
mod postgres_cluster;

use http_client::http;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn trustledger(args: &[&str], store: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trustledger"));
    command.args(args).env_remove("TRUSTLEDGER_STORE");
    if let Some(url) = store {
        command.env("TRUSTLEDGER_STORE", url);
    }
    command.output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

struct Server(std::process::Child, u16);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(data: &Path, url: &str) -> Server {
    let port = postgres_cluster::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_trustledger"))
        .args(["serve", "--data", data.to_str().unwrap(), "--store", url])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env_remove("TRUSTLEDGER_STORE")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child, port);
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        || http(port, "GET", "/readyz", None, b"").0 != 200
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "serve did not get ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

fn evaluate(port: u16, token: &str) -> u16 {
    http(port, "POST", "/api/v1/maturity/evaluate", Some(token), b"").0
}

fn entries(port: u16) -> u64 {
    let (status, body) = http(port, "GET", "/readyz", None, b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    http_client::json_of(&body)["entries"].as_u64().unwrap()
}

#[test]
fn serve_on_postgres_rides_out_a_database_restart_and_audits_clean_after_migrating_both_ways() {
    let Some(cluster) = postgres_cluster::cluster("serve --store postgres://") else {
        return;
    };
    let url = cluster.new_database();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    ok(&trustledger(
        &["simulate", "--data", d, "--weeks", "2", "--per-week", "20"],
        None,
    ));
    let migrated = ok(&trustledger(&["migrate", "--from", d, "--to", &url], None));
    assert!(migrated.starts_with("migrated "), "{migrated}");
    // A token recorded in the database through the data directory's key.
    let token = ok(&trustledger(
        &[
            "token",
            "create",
            "--data",
            d,
            "--principal",
            "ops",
            "--role",
            "operator",
        ],
        Some(&url),
    ))
    .trim()
    .to_owned();

    let server = serve(&data, &url);
    let before = entries(server.1);
    assert_eq!(evaluate(server.1, &token), 200);
    assert!(entries(server.1) > before, "the evaluation was recorded");

    cluster.stop();
    let refused = evaluate(server.1, &token);
    assert_eq!(refused, 503, "a command while PostgreSQL is down");
    cluster.launch();
    let started = Instant::now();
    let mut last = refused;
    while last != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the server did not resume after PostgreSQL came back (last status {last})"
        );
        std::thread::sleep(Duration::from_millis(200));
        last = evaluate(server.1, &token);
    }
    let served = entries(server.1);
    eprintln!("{served} entries served after PostgreSQL came back");
    drop(server);

    let audit = trustledger(&["audit", "--data", d], Some(&url));
    let report = ok(&audit);
    assert!(report.contains("CLEAN"), "{report}");

    let back = tmp.path().join("back");
    let b = back.to_str().unwrap();
    ok(&trustledger(&["migrate", "--from", &url, "--to", b], None));
    std::fs::copy(data.join("signing-key"), back.join("signing-key")).unwrap();
    let report = ok(&trustledger(&["audit", "--data", b], None));
    assert!(report.contains("CLEAN"), "{report}");
    assert!(
        report.contains(&served.to_string()),
        "every entry came back: {report}"
    );
}
