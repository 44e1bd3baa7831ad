"""A stand-in MediaWiki API on 127.0.0.1 (replaces en.wikipedia.org in tests)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "
         "sigma tau upsilon phi chi psi omega ").split()


def para(seed: str, n: int = 60) -> str:
    """A deterministic paragraph of ``n`` words."""
    words = [WORDS[(i * 7 + len(seed)) % len(WORDS)] for i in range(n)]
    return f"{seed} " + " ".join(words) + "."


ARTICLE = "\n\n".join([
    para("Lead section of Stand-in Star."),
    "== History ==", para("History section."),
    "=== Early observations ===", para("Early observations subsection."),
    "== Short ==", "Too short to use.",
    "== See also ==", para("See also section must be excluded."),
    "== References ==", para("References section must be excluded."),
])
DAY = "\n".join([
    "March 3 is the 62nd day of the year.",
    "== Events ==", "=== Pre-1600 ===", "0473 – Too early to use.",
    "=== 1601–1900 ===", "1875 – Carmen premieres at the Opéra-Comique in Paris.",
    "== Births ==", "1847 – Alexander Graham Bell, Scottish-American inventor (d. 1922)",
    "== Deaths ==", "1792 – Robert Adam, Scottish architect (b. 1728)",
    "== Holidays and observances ==", "Some holiday",
])


class StandInWiki:
    """mode: ok | error (HTTP 500) | hang (sleeps past any deadline) | garbage (not JSON)."""

    def __init__(self):
        self.mode = "ok"
        self.requests: list[dict] = []
        self.random_titles = ["Stand-in Star"]
        self._i = 0

    def page(self, title: str) -> dict:
        if title == "Stand-in Star":
            return {"title": title, "extract": ARTICLE, "fullurl": "http://wiki.test/Stand-in_Star",
                    "categories": [{"ns": 14, "title": "Category:Stars"}]}
        if title == "Mercury (disambiguation)":
            return {"title": title, "extract": para("Mercury may refer to", 80),
                    "categories": [{"title": "Category:Disambiguation pages"}]}
        parts = title.split()
        if len(parts) == 2 and parts[1].isdigit():   # a day page: same events every day
            return {"title": title, "extract": DAY.replace("March 3", title),
                    "fullurl": f"http://wiki.test/{title.replace(' ', '_')}"}
        return {"title": title, "missing": True}

    def answer(self, q: dict) -> dict:
        if q.get("list") == "random":
            title = self.random_titles[self._i % len(self.random_titles)]
            self._i += 1
            return {"batchcomplete": True, "query": {"random": [{"id": 1, "ns": 0, "title": title}]}}
        if q.get("prop", "").startswith("extracts"):
            return {"batchcomplete": True, "query": {"pages": [self.page(q["titles"])]}}
        return {"error": {"code": "badparams", "info": "unknown request"}}


@pytest.fixture
def wiki_server():
    state = StandInWiki()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            url = urlparse(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            state.requests.append(q)
            if state.mode == "hang":
                time.sleep(3)
            if state.mode == "error":
                self.send_response(500)
                self.end_headers()
                return
            body = b"<html>not json" if state.mode == "garbage" else json.dumps(state.answer(q)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except OSError:
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/w/api.php"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)
