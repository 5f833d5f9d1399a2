#!/usr/bin/python3
"""Drives web/sdk/p2c2r.js in headless Chromium against the real gateway
(test_sdk_js.sh). The page comes from a local HTTP server; the WebSocket
goes to the gateway. Each check is what a web game would see.

usage: sdk_js_check.py PAGE_URL WS_URL GATEWAY_PID LOGFILE -- GATEWAY_CMD...
Prints "ok ..." / "FAIL ..." lines; exit 1 on any failure."""
import hashlib, json, os, shutil, signal, subprocess, sys, tempfile, time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

page, ws_url, gw_pid, gw_log = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
gw_cmd = sys.argv[sys.argv.index("--") + 1:]
failed = 0


def check(what, cond):
    global failed
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failed += 1


profile = tempfile.mkdtemp(prefix="p2c2r-chromium-")
opts = Options()
opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}"):
    opts.add_argument(flag)
driver = None
gw2 = None
try:
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                              options=opts)
    driver.set_script_timeout(60)
    driver.get(page)

    def run(body, *args):
        """Runs an async function body in the page; returns its JSON value."""
        script = ("const done = arguments[arguments.length - 1];"
                  "(async (...args) => {" + body + "})(...Array.from(arguments).slice(0, -1))"
                  ".then(v => done(JSON.stringify({v})), e => done(JSON.stringify({e: String(e && e.stack || e)})));")
        out = json.loads(driver.execute_async_script(script, *args))
        if "e" in out:
            print("page error: " + out["e"], flush=True)
            return None
        return out["v"]

    loaded = run("for (let i = 0; i < 100 && !window.P2C2R; i++) await new Promise(r => setTimeout(r, 50));"
                 "return !!window.P2C2R;")
    check("the page imports /sdk/p2c2r.js as an ES module", loaded is True)

    state = run("""
        window.client = await P2C2R.connect(args[0], { gamerId: "web-gamer" });
        window.states = [];
        client.addEventListener("state", ev => states.push(ev.detail));
        return client.state;""", ws_url)
    check("connect() resolves once the gamer is registered", state == "ready")

    got = run("""
        const tasks = [];
        for (let i = 0; i < 10; i++)
            tasks.push(client.submit("encryption", { data: "web-" + i, iterations: 100 }));
        const ids = tasks.map(t => t.id);
        const rs = await Promise.all(tasks);
        return { ids, hashes: rs.map(r => r.result.hash), refs: rs.map(r => r.clientRef),
                 pico: rs.map(r => typeof r.costPico === "bigint" ? r.costPico.toString() : "no"),
                 usd: rs.map(r => r.costUsd), cached: rs.map(r => r.cached) };""")
    def expect(i):
        # encryption 2.0.0, the original demo's hash_data: the raw digest is chained
        cur = f"web-{i}".encode()
        for k in range(100):
            cur = hashlib.sha256(cur + str(k).encode()).digest()
        return cur.hex()
    check("ten submits resolve with the right results (hashlib)",
          got is not None and got["hashes"] == [expect(i) for i in range(10)])
    check("each promise has an id, each result its client_ref",
          got is not None and len(set(got["ids"])) == 10 and all(got["refs"]))
    check("the cost comes as exact picodollars (BigInt) matching cost_usd",
          got is not None and all(p != "no" and int(p) > 0 and abs(int(p) / 1e12 - u) < 1e-15
                                  for p, u, c in zip(got["pico"], got["usd"], got["cached"]) if not c))

    err = run("""
        try { await client.submit("no_such_kernel", {}); return "resolved"; }
        catch (e) { return { name: e.name, code: e.code, message: e.message }; }""")
    check("an unknown task type rejects with the protocol's code",
          err is not None and err.get("name") == "P2C2RError" and err.get("code") == "unknown_task_type")
    err = run("""
        try { await client.submit("ai_pathfinding", { grid_size: [5000, 5000] }); return "resolved"; }
        catch (e) { return { code: e.code, message: e.message }; }""")
    check("bad parameters reject with invalid_params", err is not None and err.get("code") == "invalid_params")
    err = run("""
        try { await client.submit("encryption", "not an object"); return "resolved"; }
        catch (e) { return { code: e.code }; }""")
    check("a bad argument rejects at once with invalid_argument", err == {"code": "invalid_argument"})

    got = run("""
        const t = client.submit("encryption", { data: "cancel-me", iterations: 1000000 });
        const cancelled = client.cancel(t);
        let code = "resolved";
        try { await t; } catch (e) { code = e.code; }
        // a later task on the same client still works
        const r = await client.submit("encryption", { data: "after-cancel", iterations: 10 });
        return { cancelled, code, again: client.cancel(t), next: !!r.result.hash };""")
    check("cancel() rejects the task's promise with cancelled",
          got is not None and got["cancelled"] is True and got["code"] == "cancelled")
    check("...once (a second cancel finds nothing), and the client goes on",
          got is not None and got["again"] is False and got["next"] is True)

    # Reconnect: tasks in flight when the gateway goes are lost (with a
    # clear code); the client comes back by itself to the restarted gateway
    ok = run("""
        window.inflight = [];
        // 1e7 rounds of encryption 2.0.0 (some 3 s) are the work 1e6 of 1.0.0 were:
        // long enough to be in flight when the gateway goes
        for (let i = 0; i < 6; i++)
            inflight.push(client.submit("encryption", { data: "long-" + i, iterations: 10000000 })
                .then(() => "completed", e => e.code));
        for (let i = 0; i < 100 && client._ws.bufferedAmount > 0; i++)
            await new Promise(r => setTimeout(r, 10));
        return true;""")
    os.kill(gw_pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(gw_pid, 0)
            time.sleep(0.1)
        except ProcessLookupError:
            break
    with open(gw_log, "ab") as log:
        gw2 = subprocess.Popen(gw_cmd, stdout=log, stderr=log)
    got = run("""
        const codes = await Promise.all(inflight);
        for (let i = 0; i < 400 && client.state !== "ready"; i++)
            await new Promise(r => setTimeout(r, 50));
        // The peer comes back to the new gateway by itself too: until then
        // the server says no_peers, which a game retries
        let r = null;
        for (let i = 0; i < 100 && !r; i++) {
            try { r = await client.submit("encryption", { data: "after-restart", iterations: 10 }); }
            catch (e) { if (e.code !== "no_peers") throw e; await new Promise(res => setTimeout(res, 100)); }
        }
        return { codes, states: states.map(s => s.state), lostCode: (states.find(s => s.state === "disconnected") || {}).code,
                 state: client.state, hash: r.result.hash, connects: client.stats.connects };""")
    check("tasks in flight when the gateway went reject with connection_lost",
          got is not None and "connection_lost" in got["codes"]
          and all(c in ("connection_lost", "completed") for c in got["codes"]))
    check("the client said it was disconnected (connection_lost) and reconnected",
          got is not None and got["lostCode"] == "connection_lost" and "ready" in got["states"]
          and got["states"].index("disconnected") < len(got["states"]) - 1 - got["states"][::-1].index("ready"))
    check("tasks run again through the restarted gateway",
          got is not None and got["state"] == "ready" and len(got["hash"]) == 64 and got["connects"] == 2)

    got = run("""
        client.close();
        let code = "resolved";
        try { await client.submit("encryption", { data: "x", iterations: 1 }); } catch (e) { code = e.code; }
        return { state: client.state, code };""")
    check("after close() the client refuses tasks with not_connected",
          got == {"state": "closed", "code": "not_connected"})
    err = run("""
        try { await P2C2R.connect(args[0], { gamerId: "web-refused", apiKey: "not-a-key" }); return "resolved"; }
        catch (e) { return { code: e.code }; }""", ws_url)
    check("connect() with a key the server refuses rejects (auth_failed or bad_request)",
          err is not None and err != "resolved" and err.get("code") in ("auth_failed", "bad_request"))
finally:
    if driver:
        driver.quit()
    if gw2:
        gw2.terminate()
        try:
            gw2.wait(10)
        except subprocess.TimeoutExpired:
            gw2.kill()
    shutil.rmtree(profile, ignore_errors=True)
print(f"sdk_js_check: {'all correct' if not failed else f'{failed} failed'}")
sys.exit(1 if failed else 0)
