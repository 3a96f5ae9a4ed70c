//! The browser interface in a real browser: runs `tests/browser/test_pages.py` (headless
//! Chromium over WebDriver, against `trustledger serve` on loopback) and keeps its screenshots
//! under `target/browser-screenshots/`. Needs Debian's `chromium` and `chromium-driver` and
//! Python's `selenium`; `.ci/run` installs them. Without them the test says so and checks
//! nothing, except under CI, where that is a failure. It also registers a passkey with a virtual
//! authenticator, votes with it, and audits the log the vote is in.

use std::process::Command;

fn missing() -> Option<String> {
    if !std::path::Path::new("/usr/bin/chromedriver").exists() {
        return Some(
            "chromium-driver is not installed (apt-get install chromium chromium-driver)".into(),
        );
    }
    let selenium = Command::new("python3")
        .args(["-c", "import selenium"])
        .output();
    if !selenium.is_ok_and(|o| o.status.success()) {
        return Some(
            "python3 with selenium is not available (python3 -m pip install selenium)".into(),
        );
    }
    None
}

#[test]
fn every_page_works_in_a_real_browser_at_desktop_and_phone_widths() {
    if let Some(why) = missing() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the browser test: {why}"
        );
        eprintln!("SKIPPED: {why}; the browser test did not run");
        return;
    }
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp is inside target")
        .join("browser-screenshots");
    let o = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/test_pages.py"
        ))
        .arg(env!("CARGO_BIN_EXE_trustledger"))
        .arg(&shots)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    for shot in [
        "keys-registered-desktop",
        "voted-desktop",
        "member-keys-phone",
        "member-votes-phone",
        "member-votes-desktop",
    ] {
        assert!(shots.join(format!("{shot}.png")).exists(), "{shot}");
    }
    for page in [
        "overview",
        "queue",
        "incidents",
        "models",
        "audit",
        "deployment",
        "votes",
        "keys",
    ] {
        for width in ["desktop", "phone"] {
            assert!(
                shots.join(format!("{page}-{width}.png")).exists(),
                "{page}-{width}"
            );
        }
    }
}
