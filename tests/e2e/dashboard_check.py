#!/usr/bin/python3
"""Drives the dashboard pages (web/*.html) in headless Chromium against the
real stack (test_dashboard.sh): what the operator, a contributor and a
gamer would see and do. Prints "ok ..." / "FAIL ..." lines; exit 1 on any
failure. Screenshots of every page go to SHOTS_DIR.

usage: dashboard_check.py PUBLIC_URL ADMIN_URL SHOTS_DIR
environment: ADMIN_TOKEN_FILE, CONTRIB_KEY (the contributor's API key),
  EVIL_NAME (a peer's name that must show as text), LEDGER_CMD (prints the
  ledger's figures of the contributor's account as JSON: balance_pico,
  earned_total_pico), LOAD_STOP (made to end the load), LOAD_DONE (a
  file that exists once the load ended)"""
import json, os, shutil, subprocess, sys, tempfile, time

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

public, admin, shots = sys.argv[1].rstrip("/"), sys.argv[2].rstrip("/"), sys.argv[3]
token = open(os.environ["ADMIN_TOKEN_FILE"]).read().strip()
contrib_key = os.environ["CONTRIB_KEY"]
evil = os.environ["EVIL_NAME"]
failed = 0


def check(what, cond):
    global failed
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failed += 1


def until(fn, secs=30, step=0.25):
    """fn() until truthy or secs passed; its last value"""
    end = time.time() + secs
    v = fn()
    while not v and time.time() < end:
        time.sleep(step)
        v = fn()
    return v


profile = tempfile.mkdtemp(prefix="p2c2r-chromium-")
opts = Options()
opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--window-size=1280,1600", f"--user-data-dir={profile}"):
    opts.add_argument(flag)
opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
os.makedirs(shots, exist_ok=True)
driver = None
try:
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                              options=opts)
    driver.set_script_timeout(30)
    js = driver.execute_script

    def console_errors(allow=()):
        """The console's errors since the last call, but those naming an allowed text"""
        return [e["message"] for e in driver.get_log("browser")
                if e["level"] == "SEVERE" and not any(a in e["message"] for a in allow)]

    def no_alert():
        try:
            driver.switch_to.alert.dismiss()
            return False
        except NoAlertPresentException:
            return True

    def text(id_):
        return js("const e = document.getElementById(arguments[0]); return e ? e.textContent : null;", id_)

    def shown(id_):
        return js("const e = document.getElementById(arguments[0]); return !!e && !e.hidden;", id_)

    def shot(name):
        driver.save_screenshot(os.path.join(shots, name + ".png"))
        # the figures alone, cropped to the page's content (docs/img/operator.png)
        driver.find_element(By.TAG_NAME, "main").screenshot(os.path.join(shots, name + "-main.png"))

    # ---- the landing page
    driver.get(public + "/")
    check("the landing page loads with links to the contributor and gamer pages",
          until(lambda: text("to-contributor")) and text("to-gamer") is not None)
    check("the landing page: no console error", console_errors() == [])
    shot("index")

    # ---- the operator's page: only on the admin listener, with the token
    driver.get(public + "/operator.html")
    check("the operator's page is not on the public listener", "not found" in driver.page_source)
    console_errors(allow=("404",))
    driver.get(admin + "/")
    check("the operator's page loads (Chart.js from this server)",
          until(lambda: js("return typeof window.Chart === 'function' && !!window.dashboard;")))
    driver.find_element(By.ID, "token").send_keys("not-the-operator-token")
    driver.find_element(By.ID, "go").click()
    check("a wrong operator token shows an error and no figures",
          until(lambda: shown("error") and "refused" in (text("error") or ""))
          and not shown("health-box") and js("return window.dashboard.updates") == 0)
    console_errors(allow=("401",))
    driver.find_element(By.ID, "token").clear()
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "go").click()
    check("signed in, the figures update every second",
          until(lambda: js("return window.dashboard.updates") >= 3, 20))
    s0 = js("return window.dashboard.stats")
    check("health: the scheduler and the ledger answer", s0 and s0.get("missing") == [])
    sub0 = (s0.get("scheduler") or {}).get("submitted", 0) if s0 else 0
    # the load runs: the numbers and the charts move
    check("tasks submitted grow while the load runs (numbers change)",
          until(lambda: ((js("return window.dashboard.stats") or {}).get("scheduler") or {})
                .get("submitted", 0) > sub0 + 5, 60))
    check("tasks/s above zero at some second while the load runs",
          until(lambda: js("return Math.max(0, ...Chart.getChart('tps-chart').data.datasets[0].data)") > 0, 60))
    pts0 = js("return Chart.getChart('tps-chart').data.labels.length")
    check("the charts grow a point a second",
          until(lambda: js("return Chart.getChart('tps-chart').data.labels.length") >= pts0 + 2, 10)
          and js("return Chart.getChart('latency-chart').data.labels.length") >= 3)
    check("peers by task type shown (the scheduler's peers_by_type)",
          until(lambda: shown("by-type-table") and "encryption" in (text("by-type") or "")))
    check("peers online and latency shown",
          until(lambda: (text("peers") or "—") not in ("—", "0") and text("p99") not in (None, "—")))
    # money: the table shows the ledger's figures of the same update (today
    # and in all, as "$" and the exact decimal; test_gateway_stats.sh checks
    # that they equal p2c2r-ctl's books)
    check("money shown: gamers spent, peers earned, fee, treasury, subsidy, as the ledger says",
          until(lambda: js("""
            const l = (window.dashboard.stats || {}).ledger;
            if (!l || !l.spent_total || Number(l.spent_total) <= 0) return false;
            const rows = [...document.querySelectorAll('#money tr')]
              .map((tr) => [...tr.cells].map((c) => c.textContent));
            const want = [['spent', 'gamers spent'], ['earned', 'peers earned'],
                          ['fee', 'platform fee'], ['treasury', 'treasury net'],
                          ['subsidy', 'subsidy granted']];
            return !document.getElementById('money-box').hidden
              && document.getElementById('money-note').hidden && rows.length === 5
              && want.every(([w, label], i) => rows[i][0] === label
                                      && rows[i][1] === '$' + l[w + '_today']
                                      && rows[i][2] === '$' + l[w + '_total']);"""), 30))
    check("the operator's page: no console error", console_errors() == [])
    shot("operator")

    # ---- the contributor's page
    driver.get(public + "/contributor.html")
    until(lambda: js("return !!window.dashboard;"))
    driver.find_element(By.ID, "key").send_keys("p2c_wrong_" + "x" * 30)
    driver.find_element(By.ID, "go").click()
    check("a wrong API key shows an error",
          until(lambda: shown("error") and "refused" in (text("error") or "")))
    check("... and no account's data", not shown("money") and text("earned-total") == "—"
          and js("return window.dashboard.updates") == 0)
    console_errors()
    driver.find_element(By.ID, "key").clear()
    driver.find_element(By.ID, "key").send_keys(contrib_key)
    driver.find_element(By.ID, "go").click()
    check("signed in as the contributor: earnings pushed every second",
          until(lambda: js("return window.dashboard.updates") >= 2, 20))
    check("its reputation is shown (judged by the validation: results that agreed)",
          until(lambda: (js("return window.dashboard.reputation") or {}).get("known") is True
                and float(text("rep-valid") or 0) > 0 and text("rep-state") == "in good standing", 30))
    check("its agents are listed, the evil name among them",
          until(lambda: evil in [a["id"] for a in js("return window.dashboard.agents") or []], 20))
    cells = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "#agents td")]
    check(f"the peer named {evil} shows as text", evil in cells)
    check("... and nothing ran: no alert, no injected image",
          no_alert() and js("return document.querySelectorAll('img[src=\"x\"]').length") == 0
          and js("return document.querySelectorAll('#agents img').length") == 0)
    e0 = int(js("return window.dashboard.earnings.earned_total_pico"))
    check("earnings grow while the load runs",
          until(lambda: int(js("return window.dashboard.earnings.earned_total_pico")) > e0, 60))
    open(os.environ["LOAD_STOP"], "w").close()
    until(lambda: os.path.exists(os.environ["LOAD_DONE"]), 180)
    want = {}

    def same():
        global want
        want = json.loads(subprocess.run(os.environ["LEDGER_CMD"], shell=True, capture_output=True,
                                         text=True).stdout or "{}")
        e = js("return window.dashboard.earnings")
        return (want and e and int(e["earned_total_pico"]) == want["earned_total_pico"]
                and int(e["balance_pico"]) == want["balance_pico"])
    ok = until(same, 30, 1)
    e = js("return window.dashboard.earnings") or {}
    print(f"    page: earned_total_pico={e.get('earned_total_pico')} balance_pico={e.get('balance_pico')}"
          f"; ledger: {want}", flush=True)
    check("the page's earnings equal the ledger's (p2c2r-ctl balance, the tasks' peer earnings)", ok)
    check("the page shows them as exact dollars",
          text("earned-total") == "$%d.%012d" % divmod(want.get("earned_total_pico", -1), 10**12))
    check("the earnings chart has points", js("return Chart.getChart('earned-chart').data.labels.length") >= 2)
    check("the contributor's page: no console error", console_errors() == [])
    shot("contributor")

    # ---- the gamer's page: try a task
    driver.get(public + "/gamer.html")
    until(lambda: js("return !!window.dashboard;"))
    driver.find_element(By.ID, "name").send_keys("web-gamer")
    driver.find_element(By.ID, "go").click()
    check("signed in as a gamer: spending pushed every second",
          until(lambda: js("return window.dashboard.updates") >= 1, 20))
    driver.find_element(By.ID, "send").click()
    check("try a task (rt_shadows): a result comes back",
          until(lambda: js("return window.dashboard.results") >= 1, 60)
          and text("task-status").startswith("completed"))
    check("... and its image is shown (a 160x120 PNG)",
          until(lambda: js("const i = document.getElementById('task-image');"
                           "return !i.hidden && i.complete && i.naturalWidth === 160 && i.naturalHeight === 120;"), 10))
    check("... with its cost and latency", text("task-cost").startswith("$") and text("task-latency").isdigit())
    check("the spending shown grows after the task",
          until(lambda: int(js("return window.dashboard.earnings.spent_total_pico")) > 0, 20))
    check("the gamer's page: no console error", console_errors() == [])
    shot("gamer")

    # ---- the page's WebSocket obeys the limits of any client
    r = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const ws = new WebSocket(arguments[0].replace(/^http/, "ws") + "/");
        const got = [];
        ws.onopen = () => {
          ws.send(JSON.stringify({ type: "register_gamer", gamer_id: "web-limits" }));
          ws.send(JSON.stringify({ type: "submit_task", client_ref: "big",
                                   task: { type: "encryption", data: { data: "x".repeat(2 * 1024 * 1024) } } }));
        };
        ws.onmessage = (ev) => { got.push(JSON.parse(ev.data)); if (got.length >= 2) { ws.close(); done(got); } };
        ws.onclose = (ev) => done(got.concat([{ closed: ev.code }]));
        setTimeout(() => done(got), 10000);""", public)
    print(f"    a 2 MiB frame from the page: {r}", flush=True)
    check("a page's frame over --max-frame is refused (too_large), as any client's",
          any(m.get("code") == "too_large" for m in r or []))
    r = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const codes = [];
        let open = 0;
        for (let i = 0; i < 6; i++) {
          const ws = new WebSocket(arguments[0].replace(/^http/, "ws") + "/");
          ws.onopen = () => ws.send(JSON.stringify({ type: "register_gamer", gamer_id: "web-sub-" + i }));
          ws.onmessage = (ev) => {
            const m = JSON.parse(ev.data);
            if (m.type === "registered") ws.send(JSON.stringify({ type: "subscribe" }));
            if (m.type === "error") codes.push(m.code);
          };
        }
        setTimeout(() => done(codes), 4000);""", public)
    print(f"    six more subscriptions from the page: {r}", flush=True)
    check("subscriptions past --max-subscriptions are refused (unavailable)", "unavailable" in (r or []))
    check("no alert was ever raised", no_alert())
except Exception as e:
    check(f"the browser checks ran without an exception ({type(e).__name__}: {e})", False)
finally:
    if driver:
        driver.quit()
    shutil.rmtree(profile, ignore_errors=True)
sys.exit(1 if failed else 0)
