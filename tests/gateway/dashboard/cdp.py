#!/usr/bin/python3
"""A small driver of headless Chromium over the Chrome DevTools Protocol, for shell tests.

  cdp.py serve --socket S --profile DIR --downloads DIR --log FILE [--chromium PATH]
      starts Chromium (--remote-debugging-pipe: the protocol runs over fds 3 and 4, so no
      port is opened and no WebSocket client is needed), attaches to its page and answers
      commands on the Unix socket S until `quit` (or SIGTERM), then ends Chromium.
  cdp.py call --socket S COMMAND [ARG...]
      sends one command and prints its answer; exit code 0, or 1 with the error on stderr.

Commands:
  navigate URL              load URL, wait for its load event
  eval EXPR                 evaluate EXPR in the page (promises awaited); prints the value
                            (strings as they are, anything else as JSON)
  wait SECONDS EXPR         evaluate EXPR every 100 ms until it is truthy; prints the value;
                            fails after SECONDS with the last value
  click SELECTOR            scroll the element into view and click its centre with real mouse
                            events (fails when nothing matches or it has no size)
  type SELECTOR TEXT        focus the element, clear it, and type TEXT as keyboard input
  screenshot FILE           a PNG of the whole page
  problems                  the page's uncaught exceptions and console/security errors so far
                            (CSP violations included; failed HTTP answers are not problems),
                            one a line
  quit                      close Chromium and stop serving

Every wait is bounded: a protocol call answers within 30 s or fails.
"""
import argparse
import base64
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

CALL_TIMEOUT = 30.0


class Browser:
    def __init__(self, chromium, profile, downloads, log):
        rfd_chrome, wfd_us = os.pipe()  # we write commands, Chromium reads them on fd 3
        rfd_us, wfd_chrome = os.pipe()  # Chromium writes answers on fd 4, we read them

        def child_fds():
            # Out of the way first (either end may already be fd 3 or 4), then onto 3 and 4;
            # dup2 clears close-on-exec on the copies.
            r = fcntl.fcntl(rfd_chrome, fcntl.F_DUPFD_CLOEXEC, 10)
            w = fcntl.fcntl(wfd_chrome, fcntl.F_DUPFD_CLOEXEC, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)

        args = [
            chromium, "--headless", "--remote-debugging-pipe",
            "--user-data-dir=" + profile, "--no-first-run", "--no-default-browser-check",
            "--disable-gpu", "--disable-extensions", "--disable-sync",
            "--disable-background-networking", "--disable-component-update",
            "--disable-default-apps", "--no-proxy-server", "--password-store=basic",
            "--use-mock-keychain", "--mute-audio", "--hide-scrollbars",
            "--window-size=1280,900", "--lang=en-US",
        ]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
        args.append("about:blank")
        env = dict(os.environ)
        env.pop("DBUS_SYSTEM_BUS_ADDRESS", None)  # the lab's bus is ringcapd's, not Chromium's
        env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        self.logfile = open(log, "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.logfile,
                                     stderr=self.logfile, close_fds=False,
                                     preexec_fn=child_fds, env=env)
        os.close(rfd_chrome)
        os.close(wfd_chrome)
        self.wpipe = wfd_us
        self.rpipe = rfd_us
        self.next_id = 0
        self.lock = threading.RLock()  # the SIGTERM handler may call in while the lock is held
        self.cond = threading.Condition(self.lock)
        self.answers = {}
        self.events = []
        self.problems = []
        self.closed = False
        self.session = None
        threading.Thread(target=self._reader, daemon=True).start()

        self.call("Browser.setDownloadBehavior",
                  {"behavior": "allow", "downloadPath": downloads, "eventsEnabled": True})
        targets = self.call("Target.getTargets")["targetInfos"]
        pages = [t for t in targets if t["type"] == "page"]
        if pages:
            target = pages[0]["targetId"]
        else:
            target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.page(domain + ".enable")

    def _reader(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self.rpipe, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                with self.cond:
                    self.closed = True
                    self.cond.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self.cond:
                    if "id" in msg:
                        self.answers[msg["id"]] = msg
                    else:
                        self._event(msg)
                    self.cond.notify_all()

    def _event(self, msg):
        method, params = msg.get("method"), msg.get("params", {})
        self.events.append(msg)
        if method == "Runtime.exceptionThrown":
            d = params.get("exceptionDetails", {})
            text = d.get("exception", {}).get("description") or d.get("text", "")
            self.problems.append("exception: " + text.splitlines()[0] if text else "exception")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = [a.get("value", a.get("description", "")) for a in params.get("args", [])]
            self.problems.append("console.error: " + " ".join(str(a) for a in args))
        elif method == "Log.entryAdded":
            e = params.get("entry", {})
            # A 4xx answer to fetch() is logged by the network source: the page expects those.
            if e.get("level") == "error" and e.get("source") != "network":
                self.problems.append("%s: %s" % (e.get("source"), e.get("text")))

    def call(self, method, params=None, session=None, timeout=CALL_TIMEOUT):
        with self.cond:
            self.next_id += 1
            mid = self.next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            n = os.write(self.wpipe, data)
            data = data[n:]
        deadline = time.monotonic() + timeout
        with self.cond:
            while mid not in self.answers:
                left = deadline - time.monotonic()
                if self.closed:
                    raise RuntimeError("Chromium closed its pipe during " + method)
                if left <= 0:
                    raise RuntimeError("no answer to %s within %.0f s" % (method, timeout))
                self.cond.wait(left)
            ans = self.answers.pop(mid)
        if "error" in ans:
            raise RuntimeError("%s: %s" % (method, ans["error"].get("message")))
        return ans.get("result", {})

    def page(self, method, params=None, timeout=CALL_TIMEOUT):
        return self.call(method, params, session=self.session, timeout=timeout)

    def evaluate(self, expr):
        r = self.page("Runtime.evaluate", {"expression": expr, "awaitPromise": True,
                                           "returnByValue": True, "userGesture": True})
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise RuntimeError("the page threw: " +
                               (d.get("exception", {}).get("description") or d.get("text", "")))
        return r["result"].get("value")

    def navigate(self, url):
        with self.cond:
            start = len(self.events)
        r = self.page("Page.navigate", {"url": url})
        if r.get("errorText"):
            raise RuntimeError("navigating to %s: %s" % (url, r["errorText"]))
        deadline = time.monotonic() + CALL_TIMEOUT
        with self.cond:
            while not any(e.get("method") == "Page.loadEventFired" for e in self.events[start:]):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("no load event within %.0f s" % CALL_TIMEOUT)
                self.cond.wait(left)
        return ""

    def wait(self, seconds, expr):
        deadline = time.monotonic() + seconds
        value = None
        while True:
            value = self.evaluate(expr)
            if value:
                return value
            if time.monotonic() >= deadline:
                raise RuntimeError("not true after %s s: %s (last value: %s)" %
                                   (seconds, expr, json.dumps(value)))
            time.sleep(0.1)

    def box(self, selector):
        expr = ("(() => { const e = document.querySelector(%s); if (!e) return null;"
                " e.scrollIntoView({block: 'center', inline: 'center'});"
                " const r = e.getBoundingClientRect();"
                " return {x: r.x + r.width / 2, y: r.y + r.height / 2, w: r.width, h: r.height,"
                " disabled: !!e.disabled}; })()") % json.dumps(selector)
        b = self.evaluate(expr)
        if not b:
            raise RuntimeError("nothing matches " + selector)
        if b["w"] <= 0 or b["h"] <= 0:
            raise RuntimeError(selector + " is not visible")
        if b["disabled"]:
            raise RuntimeError(selector + " is disabled")
        return b

    def click(self, selector):
        b = self.box(selector)
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            p = {"type": kind, "x": b["x"], "y": b["y"]}
            if kind != "mouseMoved":
                p.update(button="left", clickCount=1)
            self.page("Input.dispatchMouseEvent", p)
        return ""

    def type(self, selector, text):
        self.box(selector)
        ok = self.evaluate("(() => { const e = document.querySelector(%s); e.focus();"
                           " e.select && e.select(); return document.activeElement === e; })()"
                           % json.dumps(selector))
        if not ok:
            raise RuntimeError(selector + " cannot take the focus")
        # Delete what is selected (the old value), then type the new text.
        for kind in ("rawKeyDown", "keyUp"):
            self.page("Input.dispatchKeyEvent", {"type": kind, "key": "Backspace", "code": "Backspace",
                                                 "windowsVirtualKeyCode": 8})
        if text:
            self.page("Input.insertText", {"text": text})
        return self.evaluate("document.querySelector(%s).value" % json.dumps(selector))

    def screenshot(self, path):
        m = self.page("Page.getLayoutMetrics")
        size = m.get("cssContentSize") or m["contentSize"]
        clip = {"x": 0, "y": 0, "width": min(size["width"], 1280), "height": min(size["height"], 4000),
                "scale": 1}
        r = self.page("Page.captureScreenshot", {"format": "png", "clip": clip,
                                                 "captureBeyondViewport": True})
        with open(path, "wb") as f:
            f.write(base64.b64decode(r["data"]))
        return path

    def close(self):
        if self.proc.poll() is None:
            try:
                self.call("Browser.close", timeout=10)
            except Exception:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        return self.proc.returncode


def serve(args):
    browser = Browser(args.chromium, args.profile, args.downloads, args.log)

    def on_term(signum, frame):
        browser.close()
        os._exit(1)

    signal.signal(signal.SIGTERM, on_term)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(args.socket + ".tmp")
    os.rename(args.socket + ".tmp", args.socket)  # the socket appears when it is ready
    srv.listen(4)
    while True:
        conn, _ = srv.accept()
        with conn:
            f = conn.makefile("rwb")
            req = json.loads(f.readline())
            cmd, a = req["cmd"], req["args"]
            try:
                if cmd == "quit":
                    rc = browser.close()
                    f.write((json.dumps({"ok": True, "value": "chromium exit code %s" % rc}) + "\n").encode())
                    f.flush()
                    return 0
                elif cmd == "navigate":
                    value = browser.navigate(a[0])
                elif cmd == "eval":
                    value = browser.evaluate(a[0])
                elif cmd == "wait":
                    value = browser.wait(float(a[0]), a[1])
                elif cmd == "click":
                    value = browser.click(a[0])
                elif cmd == "type":
                    value = browser.type(a[0], a[1])
                elif cmd == "screenshot":
                    value = browser.screenshot(a[0])
                elif cmd == "problems":
                    with browser.cond:
                        value = "\n".join(browser.problems)
                else:
                    raise RuntimeError("unknown command " + cmd)
                ans = {"ok": True, "value": value}
            except Exception as e:  # the caller prints it and fails
                ans = {"ok": False, "error": str(e)}
            f.write((json.dumps(ans) + "\n").encode())
            f.flush()


def call(args):
    timeout = CALL_TIMEOUT * 2
    if args.cmd == "wait" and args.args:
        timeout += float(args.args[0])
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(args.socket)
    f = s.makefile("rwb")
    f.write((json.dumps({"cmd": args.cmd, "args": args.args}) + "\n").encode())
    f.flush()
    line = f.readline()
    if not line:
        print("cdp.py: the driver closed the connection", file=sys.stderr)
        return 1
    ans = json.loads(line)
    if not ans["ok"]:
        print("cdp.py %s: %s" % (args.cmd, ans["error"]), file=sys.stderr)
        return 1
    v = ans["value"]
    print(v if isinstance(v, str) else json.dumps(v))
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--socket", required=True)
    s.add_argument("--chromium", default="/usr/bin/chromium")
    s.add_argument("--profile", required=True)
    s.add_argument("--downloads", required=True)
    s.add_argument("--log", required=True)
    c = sub.add_parser("call")
    c.add_argument("--socket", required=True)
    c.add_argument("cmd")
    c.add_argument("args", nargs="*")
    a = p.parse_args()
    return serve(a) if a.mode == "serve" else call(a)


if __name__ == "__main__":
    sys.exit(main())
