"""The browser interface in a real browser: headless Chromium driven over WebDriver against a
`trustledger serve` on loopback over a simulated history. Signs in, opens every page at a
desktop and a phone width, fails on any console error or failed request, checks the incident
form end to end and that a session ends at sign-out; a CAB member registers a passkey with a
virtual authenticator (Chromium's WebAuthn testing domain), votes with it on a queued deployment,
and the vote's entry, with its assertion, passes `trustledger audit`. Writes a screenshot of each
page under the output folder (look at them).

Run by .ci/run: python3 tests/browser/test_pages.py BINARY OUT_DIR
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.virtual_authenticator import VirtualAuthenticatorOptions
from selenium.webdriver.support.ui import WebDriverWait

SIZES = {"desktop": (1280, 800), "phone": (390, 844)}
PAGES = ["/", "/queue", "/votes", "/incidents", "/models", "/models/1.1/backtest", "/audit",
         "/keys"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(binary, *args):
    return subprocess.run([binary, *args], check=True, capture_output=True, text=True).stdout.strip()


def browser():
    options = webdriver.ChromeOptions()
    options.add_argument("--headless=new")
    options.add_argument("--no-sandbox")
    options.add_argument("--disable-gpu")
    # Passkeys need a secure context and a domain for their relying party: the pages are
    # opened at localhost, which is mapped to the server's loopback address.
    options.add_argument("--host-resolver-rules=MAP localhost 127.0.0.1")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def problems(driver):
    """Console errors and failed requests since the last call."""
    found = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.loadingFailed":
            found.append("request failed: " + json.dumps(message["params"]))
        if message["method"] == "Network.responseReceived":
            response = message["params"]["response"]
            if response["status"] >= 400 and "/incidents" not in response["url"]:
                found.append(f"HTTP {response['status']} for {response['url']}")
    return found


def main(binary, out):
    os.makedirs(out, exist_ok=True)
    work = tempfile.mkdtemp()
    data = os.path.join(work, "data")
    run(binary, "simulate", "--data", data, "--weeks", "8", "--per-week", "40")
    token = run(binary, "token", "create", "--data", data, "--principal", "rita",
                "--role", "incident-reporter", "--role", "auditor", "--role", "operator")
    member = run(binary, "token", "create", "--data", data, "--principal", "cab-chen",
                 "--role", "cab")
    port = free_port()
    server = subprocess.Popen([binary, "serve", "--data", data, "--listen", f"127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://localhost:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                time.sleep(0.1)
        driver = browser()
        try:
            checks(driver, base, token, out)
            voted = passkey_vote(driver, base, member, out)
        finally:
            driver.quit()
        step("the vote's entry")
        checkpoint = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/log/checkpoint")
        size = int(checkpoint.read().decode().split("\n")[1])
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/events?after={max(0, size - 50)}"
            f"&type=trustledger.cab.vote_cast&subject=deployment/{voted}",
            headers={"Authorization": "Bearer " + token})
        votes = [json.loads(line) for line in urllib.request.urlopen(request).read().splitlines()]
        signed = [v for v in votes if v["actor"] == "cab-chen"]
        assert len(signed) == 1 and "passkey_signature" in signed[0]["data"], votes
    finally:
        server.kill()
        server.wait()
    step("audit")
    audit = subprocess.run([binary, "audit", "--data", data], capture_output=True, text=True)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    print("browser: 2 passed, 0 failed")


def arrives(driver, suffix):
    """Waits (at most 10 s) until a click's navigation lands on a URL ending in `suffix`."""
    WebDriverWait(driver, 10).until(lambda d: d.current_url.endswith(suffix))


def screenshots(driver, out, stem, width, height):
    """The window as a user sees it first, then the whole page."""
    driver.save_screenshot(os.path.join(out, f"{stem}.png"))
    full = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, max(height, full))
    driver.save_screenshot(os.path.join(out, f"{stem}-full.png"))
    driver.set_window_size(width, height)


STARTED = time.monotonic()


def step(what):
    """Says how far the test got, and when (on stderr, shown when it fails)."""
    print(f"{time.monotonic() - STARTED:7.1f}s {what}", file=sys.stderr, flush=True)


def checks(driver, base, token, out):
    step("signing in")
    driver.get(base + "/")
    assert driver.current_url.endswith("/sign-in"), driver.current_url
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "form[action='/sign-in'] button").click()
    arrives(driver, "/")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Overview"
    assert "next scheduled evaluation" in driver.find_element(By.ID, "live-overview").text
    cookie = driver.get_cookie("tl_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie
    problems(driver)
    step("live update")
    # Live: the log grows (an evaluation through the JSON API) and the open overview shows it
    # without a reload.
    before = driver.find_element(By.ID, "live-overview").text
    request = urllib.request.Request(base + "/api/v1/maturity/evaluate", method="POST",
                                     headers={"Authorization": "Bearer " + token})
    appended = urllib.request.urlopen(request).headers["trustledger-seqs"]
    WebDriverWait(driver, 15).until(
        lambda d: f"(seq {appended})" in d.find_element(By.ID, "live-overview").text)
    assert driver.find_element(By.ID, "live-overview").text != before
    assert driver.execute_script("return document.documentElement.dataset.refreshed"), "no reload"
    deployment = None
    step("pages")
    for name, (width, height) in SIZES.items():
        driver.set_window_size(width, height)
        for path in PAGES:
            step(f"{path} at {name}")
            driver.get(base + path)
            assert driver.find_element(By.TAG_NAME, "h1").text, path
            found = problems(driver)
            assert not found, (path, found)
            # Nothing wider than the window: no sideways scrolling of the page itself.
            overflow = driver.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, (path, name, overflow)
            slug = path.strip("/").replace("/", "-") or "overview"
            screenshots(driver, out, f"{slug}-{name}", width, height)
            links = driver.find_elements(By.CSS_SELECTOR, "a[href^='/deployments/']")
            if links and deployment is None:
                deployment = links[0].get_attribute("href")
        if deployment:
            driver.get(deployment)
            assert not problems(driver)
            screenshots(driver, out, f"deployment-{name}", width, height)
    step("incident form")
    # The incident form: a field error shown beside its field, then a report that is listed.
    driver.set_window_size(1280, 800)
    # A released deployment without incidents: reporting one moves it into the overview's
    # confusion matrix's "Incident" column.
    listing = urllib.request.Request(base + "/api/v1/deployments?status=RELEASED&limit=500",
                                     headers={"Authorization": "Bearer " + token})
    clean = [d["deployment_id"] for d in json.load(urllib.request.urlopen(listing))["deployments"]
             if not d["incidents"]]
    assert clean, "the simulated history has released deployments without incidents"
    driver.get(base + "/")
    before = incident_column(driver)
    driver.get(base + "/incidents")
    form = driver.find_element(By.CSS_SELECTOR, "form[method='post'][action='/incidents']")
    form.find_element(By.ID, "deployment_id").send_keys("not a uuid")
    form.find_element(By.ID, "affected_user_count").send_keys("12")
    form.find_element(By.ID, "downtime_minutes").send_keys("3")
    form.find_element(By.ID, "business_impact_usd").send_keys("10.00")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    error = WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "deployment_id-error"))
    assert "UUID" in error.text, error.text
    field = driver.find_element(By.ID, "deployment_id")
    assert field.get_attribute("aria-invalid") == "true"
    field.clear()
    field.send_keys(clean[0])
    driver.find_element(By.ID, "preventability_notes").send_keys("seen in the browser test")
    driver.find_element(By.CSS_SELECTOR, "form[method='post'][action='/incidents'] button[type=submit]").click()
    WebDriverWait(driver, 10).until(lambda d: not d.find_elements(By.CLASS_NAME, "error"))
    arrives(driver, "/incidents")
    assert "seen in the browser test" not in driver.page_source  # a fresh form
    assert "rita" in driver.find_element(By.ID, "list").find_element(By.XPATH, "..").text
    driver.get(base + "/")
    assert incident_column(driver) == before + 1, (before, incident_column(driver))
    step("sign-out")
    # Sign out: the old cookie opens nothing.
    driver.find_element(By.CSS_SELECTOR, "form.signout button").click()
    arrives(driver, "/sign-in")
    driver.add_cookie({"name": "tl_session", "value": cookie["value"], "path": "/"})
    driver.get(base + "/")
    assert driver.current_url.endswith("/sign-in"), "a signed-out session opens nothing"


def incident_column(driver):
    """Released deployments followed by an incident, as the overview's confusion matrix says."""
    rows = driver.find_elements(By.CSS_SELECTOR, "#confusion tbody tr")
    return sum(int(row.find_elements(By.TAG_NAME, "td")[0].text) for row in rows)


def passkey_vote(driver, base, member, out):
    """A CAB member registers a passkey held by a virtual authenticator and signs a vote with
    it. Returns the deployment voted on."""
    step("passkey: sign in as a CAB member")
    driver.set_window_size(1280, 800)
    driver.get(base + "/sign-in")
    driver.find_element(By.ID, "token").send_keys(member)
    driver.find_element(By.CSS_SELECTOR, "form[action='/sign-in'] button").click()
    arrives(driver, "/")
    problems(driver)  # the incident form's deliberate 422, logged before this part
    options = VirtualAuthenticatorOptions()
    options.protocol = VirtualAuthenticatorOptions.Protocol.CTAP2
    options.transport = VirtualAuthenticatorOptions.Transport.INTERNAL
    options.has_resident_key = True
    options.has_user_verification = True
    options.is_user_consenting = True
    options.is_user_verified = True
    driver.add_virtual_authenticator(options)
    step("passkey: register")
    driver.get(base + "/keys")
    driver.find_element(By.CSS_SELECTOR, "#register-passkey button[type=submit]").click()
    arrives(driver, "/keys?registered=1")
    assert "Your passkeys in force" in driver.page_source, driver.page_source
    assert len(driver.get_credentials()) == 1
    found = problems(driver)
    assert not found, found
    screenshots(driver, out, "keys-registered-desktop", 1280, 800)
    step("passkey: the member's pages at both widths")
    for name, (width, height) in SIZES.items():
        driver.set_window_size(width, height)
        for path in ["/keys", "/votes"]:
            driver.get(base + path)
            overflow = driver.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, (path, name, overflow)
            screenshots(driver, out, f"member{path.replace('/', '-')}-{name}", width, height)
    found = problems(driver)
    assert not found, found
    driver.set_window_size(1280, 800)
    step("passkey: vote")
    driver.get(base + "/votes")
    form = driver.find_element(By.CSS_SELECTOR, "form.vote[data-kind='deployment'][data-passkeys]")
    deployment = form.get_attribute("data-subject")
    form.find_element(By.TAG_NAME, "textarea").send_keys("Evidence reviewed in the browser.\nRollback plan checked.")
    form.find_element(By.CSS_SELECTOR, "button[value='approve']").click()
    arrives(driver, f"/deployments/{deployment}")
    assert "cab-chen: approve" in driver.page_source, driver.page_source
    found = problems(driver)
    assert not found, found
    screenshots(driver, out, "voted-desktop", 1280, 800)
    return deployment


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
