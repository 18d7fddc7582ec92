"""A small W3C WebDriver client (standard library only) for Debian's chromedriver + chromium,
plus a static file server for the built app. Enough for the browser tests: navigate, find by
data-testid, click, type files into an input, run (async) scripts, screenshots."""

import base64
import functools
import http.server
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
# WebDriver's codes for the keys the tests press (W3C WebDriver, "Keyboard actions").
KEYS = {"Tab": "\ue004", "Escape": "\ue00c", "Enter": "\ue007", "Shift": "\ue008", "Control": "\ue009", "Space": "\ue00d", "PageUp": "\ue00e", "PageDown": "\ue00f",
        "End": "\ue010", "Home": "\ue011", "ArrowLeft": "\ue012", "ArrowUp": "\ue013", "ArrowRight": "\ue014", "ArrowDown": "\ue015"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StaticServer:
    """Serves a folder on 127.0.0.1 (the built app, as any static host would)."""

    def __init__(self, folder):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm",
                      ".js": "text/javascript"}

    def log_message(self, *args):
        pass


class WebDriverError(AssertionError):
    pass


class Browser:
    def __init__(self, width=1280, height=800, profile=None):
        self.port = free_port()
        self.driver = subprocess.Popen(["/usr/bin/chromedriver", f"--port={self.port}"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.profile = profile or tempfile.mkdtemp(prefix="backfill-chrome-")
        self._own_profile = profile is None
        deadline = time.time() + 20
        while True:
            try:
                self._call("GET", "/status")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.time() > deadline:
                    raise WebDriverError("chromedriver did not start")
                time.sleep(0.1)
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-quic", f"--window-size={width},{height}", f"--user-data-dir={self.profile}"]
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium", "args": args}, "goog:loggingPrefs": {"browser": "ALL"}}}}
        self.session = self._call("POST", "/session", caps)["sessionId"]
        self._call("POST", f"/session/{self.session}/timeouts", {"script": 120000})

    def _call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=180) as response:
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as e:
            detail = json.loads(e.read() or b"{}").get("value", {})
            raise WebDriverError(f"{method} {path}: {detail.get('error')}: {detail.get('message', '')[:500]}")

    def s(self, path, body=None, method="POST"):
        return self._call(method, f"/session/{self.session}{path}", body)

    def open(self, url):
        self.s("/url", {"url": url})

    def set_size(self, width, height):
        self.s("/window/rect", {"width": width, "height": height})

    def js(self, script, *args):
        return self.s("/execute/sync", {"script": script, "args": list(args)})

    def js_async(self, script, *args):
        """Runs `script` with a `done` callback as the last argument; returns what it passes."""
        return self.s("/execute/async", {"script": script, "args": list(args)})

    def api(self, method, *args):
        """Awaits `window.backfill[method](...args)`; returns {"ok": value} or {"error": message}."""
        return self.js_async(
            "const [method, args, done] = arguments;"
            "window.backfill[method](...args).then(v => done({ok: v}), e => done({error: String(e.message || e)}));",
            method, list(args))

    def find_all(self, testid):
        return [e[ELEMENT] for e in self.s("/elements", {"using": "css selector", "value": f'[data-testid="{testid}"]'})]

    def find(self, testid):
        found = self.find_all(testid)
        if not found:
            raise WebDriverError(f"no element with data-testid={testid}")
        return found[0]

    def click(self, element):
        self.s(f"/element/{element}/click", {})

    def keys(self, *names, hold=None):
        """Presses keys (names of KEYS, or characters) one after another on whatever has focus,
        `hold` (Shift, Control) held down meanwhile."""
        held = [{"type": "keyDown", "value": KEYS[hold]}] if hold else []
        presses = [a for name in names for a in ({"type": "keyDown", "value": KEYS.get(name, name)}, {"type": "keyUp", "value": KEYS.get(name, name)})]
        released = [{"type": "keyUp", "value": KEYS[hold]}] if hold else []
        self.s("/actions", {"actions": [{"type": "key", "id": "keyboard", "actions": held + presses + released}]})

    def tap(self, element):
        """A finger's tap on an element (a touch pointer, not a mouse)."""
        actions = [{"type": "pointerMove", "origin": {ELEMENT: element}, "x": 0, "y": 0},
                   {"type": "pointerDown", "button": 0}, {"type": "pointerUp", "button": 0}]
        self.s("/actions", {"actions": [{"type": "pointer", "id": "finger", "parameters": {"pointerType": "touch"}, "actions": actions}]})

    def focused(self, attribute):
        """An attribute of the element that has focus."""
        return self.js("return document.activeElement && document.activeElement.getAttribute(arguments[0]);", attribute)

    def type_file(self, element, path):
        self.s(f"/element/{element}/value", {"text": str(path)})

    def attr(self, element, name):
        return self.s(f"/element/{element}/attribute/{name}", method="GET")

    def prop(self, element, name):
        return self.s(f"/element/{element}/property/{name}", method="GET")

    def text_content(self, element):
        """The text of an element, shown or not (a live region for screen readers is not)."""
        return self.prop(element, "textContent")

    def text(self, element):
        return self.s(f"/element/{element}/text", method="GET")

    def wait(self, what, check, timeout=60):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                last = check()
                if last:
                    return last
            except WebDriverError as e:
                last = e
            time.sleep(0.2)
        raise WebDriverError(f"timed out waiting for {what} (last: {last}); console: {self.console()[-5:]}")

    def console(self):
        try:
            return [entry["message"] for entry in self._call("POST", f"/session/{self.session}/se/log", {"type": "browser"})]
        except WebDriverError:
            return []

    def screenshot(self, path):
        path.write_bytes(base64.b64decode(self.s("/screenshot", method="GET")))

    def close(self):
        try:
            self.s("", method="DELETE")
        finally:
            self.driver.terminate()
            self.driver.wait(timeout=10)
            if self._own_profile:
                shutil.rmtree(self.profile, ignore_errors=True)
