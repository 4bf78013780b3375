"""Real servers for station tests: `station serve` and `station collector serve` on 127.0.0.1.

The station's pages and APIs need a session, as a proctor's browser gets one: the login
link (the install's secret, read from the data dir as a tool would) and then the proctor's
name. ``Server.client()`` is such an httpx client; ``Server.page()`` a Chromium page of a
signed-in browser. Writes go as JSON, as the pages send them.
"""
from __future__ import annotations

import os
import ssl
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

from station.context import ENV_DATA_DIR, default_data_dir
from station.web.session import TOKEN_FILE, cookie_name
from tests.helpers import free_port, station_command, stop_process, wait_for

__all__ = ["Collector", "Server", "close_pe_sitting", "district_row", "free_port", "import_roster",
           "last_line", "page_of", "station_serve", "pe_pending", "stop_process", "timer_station",
           "wait_for", "write_upload_config"]

STATION = station_command()
PROCTOR = "张老师"   # generated, as every name in tests


class SignedIn(httpx.Client):
    """Already open once signed in: ``with`` only closes it at the end."""

    def __enter__(self):
        return self

    def post(self, url, **kwargs):
        """A button that sends nothing still sends JSON, as the pages' qm.post sends ``{}``."""
        if not {"json", "content", "data", "files"} & kwargs.keys():
            kwargs["json"] = {}
        return super().post(url, **kwargs)


class Server:
    """A `station …` server process, stopped at the end of the test."""

    def __init__(self, args: list[str], port: int, env: dict | None = None, ca: Path | None = None):
        """``ca``: the server speaks TLS under a certificate this CA file vouches for."""
        self.port = port
        self.url = f"{'https' if ca else 'http'}://127.0.0.1:{port}"
        self.verify = ssl.create_default_context(cafile=str(ca)) if ca else True
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.proc = subprocess.Popen([*STATION, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=self.env)
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(self.url + "/api/health", timeout=1, verify=self.verify)
                return
            except httpx.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError(f"`station {' '.join(args)}` did not start: "
                                         f"{self.proc.communicate()}")
                time.sleep(0.2)

    def stop(self) -> None:
        stop_process(self.proc)

    def data_dir(self) -> Path:
        """The served station's data dir (a rehearsal's is inside the real one)."""
        args = self.args
        if "--data-dir" in args:
            folder = Path(args[args.index("--data-dir") + 1])
        else:
            folder = Path(self.env[ENV_DATA_DIR]) if self.env.get(ENV_DATA_DIR) else default_data_dir()
        return folder / "rehearsal" if "--simulate" in args else folder

    def token(self) -> str:
        return (self.data_dir() / TOKEN_FILE).read_text(encoding="ascii").strip()

    def login_url(self, next: str = "/") -> str:
        return f"{self.url}/login?token={self.token()}&next={next}"

    def client(self, proctor: str | None = PROCTOR, **kwargs) -> httpx.Client:
        """An httpx client signed in as a proctor's browser is: through the login link, then
        (unless ``proctor`` is None) the proctor's name."""
        kwargs.setdefault("timeout", 30)
        client = SignedIn(base_url=self.url, **kwargs)
        signed = client.get("/login", params={"token": self.token()})
        assert signed.status_code == 303 and self.cookie_name in client.cookies, signed.text
        if proctor:
            client.post("/api/proctor", json={"name": proctor}).raise_for_status()
        return client

    @property
    def cookie_name(self) -> str:
        return cookie_name({"server": ("127.0.0.1", self.port)})

    def cookies(self, proctor: str | None = PROCTOR) -> list[dict]:
        """A signed-in session as Playwright's ``context.add_cookies`` takes it."""
        with self.client(proctor) as client:
            value = client.cookies[self.cookie_name]
        return [{"name": self.cookie_name, "value": value, "url": self.url, "httpOnly": True,
                 "sameSite": "Strict"}]

    def page(self, browser, proctor: str | None = PROCTOR, **context):
        """A page of a new Chromium context that carries a signed-in session."""
        with self.client(proctor) as client:
            return page_of(browser, client, **context)


def page_of(browser, client: httpx.Client, **context):
    """A Chromium page signed in as ``client`` is (its session cookie, hence its proctor)."""
    ctx = browser.new_context(**context)
    url = str(client.base_url).rstrip("/")
    ctx.add_cookies([{"name": c.name, "value": c.value, "url": url, "httpOnly": True, "sameSite": "Strict"}
                     for c in client.cookies.jar])
    return ctx.new_page()


def station_serve(env: dict | None = None) -> Server:
    """`station serve` on a free port over the session's data dir."""
    port = free_port()
    return Server(["serve", "--port", str(port)], port, env)


def pe_pending(client: httpx.Client, n: int) -> list[dict] | None:
    """The PE sitting's attempts waiting for the proctor, once there are ``n`` of them."""
    pending = client.get("/api/pe/state").json()["pending"]
    return pending if len(pending) == n else None


def import_roster(station, path: Path, csv_text: str, encoding: str = "utf-8") -> None:
    """Write a roster CSV (generated names, never real people) and `station roster import` it."""
    path.write_text(csv_text, encoding=encoding)
    station("roster", "import", str(path), check=True)


def last_line(*args: str) -> str:
    out = subprocess.run([*STATION, *args], capture_output=True, text=True, check=True, timeout=60)
    return out.stdout.strip().splitlines()[-1]


class Collector(Server):
    """`station collector serve` on its own data dir; add-station and admin-token as a district would."""

    def __init__(self, data: Path, port: int | None = None, tls: tuple[Path, Path, Path] | None = None):
        """``tls``: (CA, certificate, key) files, as ``tests.helpers.district_ca`` makes them."""
        self.data = data
        port = port or free_port()
        extra = ["--tls-cert", str(tls[1]), "--tls-key", str(tls[2])] if tls else []
        super().__init__(["collector", "serve", "--data", str(data), "--port", str(port), *extra], port,
                         ca=tls[0] if tls else None)

    def add_station(self, station_id: str) -> str:
        return last_line("collector", "add-station", station_id, "--data", str(self.data))

    def admin(self) -> httpx.Client:
        token = last_line("collector", "admin-token", "--data", str(self.data))
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"},
                            verify=self.verify)


@contextmanager
def timer_station(station, data_dir: Path, roster: Path, roster_csv: str, pair, device_keys: str):
    """A 50 m sitting under a real `station serve` with an ALGE Timy (``alge-timy`` named
    "gate") on the PTY ``pair``; yields (client, the timer's end of the cable) once the
    station reads the timer. ``device_keys``: more lines of its [[pe.devices]] table."""
    import serial

    import_roster(station, roster, roster_csv)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "station.toml").write_text(
        f'station_id = "S01"\n[[pe.devices]]\nname = "gate"\ndriver = "alge-timy"\n'
        f'port = "{pair.station_end}"\nitem = "run_50m"\n{device_keys}\n', encoding="utf-8")
    station("session", "open", "--kind", "pe", "--item", "run_50m", check=True)
    server = station_serve()
    client = server.client(timeout=10)
    try:
        wait_for(lambda: client.get("/api/pe/state").json()["devices"][0]["status"] == "connected",
                 what="the timer connected")
        with serial.Serial(pair.device_end) as timy:
            yield client, timy
    finally:
        client.close()
        server.stop()


def write_upload_config(data_dir: Path, url: str, token: str, ca: str = "", extra: str = "") -> None:
    """station.toml of station S01 uploading to ``url`` (``ca``: the district CA file)."""
    data_dir.mkdir(exist_ok=True)
    (data_dir / "station.toml").write_text(
        f'station_id = "S01"\nschool = "测试实验小学"\n'
        f'[upload]\ncollector_url = "{url}"\ntoken = "{token}"\nca_bundle = "{ca}"\n{extra}',
        encoding="utf-8")


def close_pe_sitting(station, tmp_path: Path) -> dict:
    """A one-student PE sitting opened and closed (so sealed) with the CLI; its closed row."""
    import json

    import_roster(station, tmp_path / "r.csv", "学籍号,姓名,性别,年级\n0001,王子涵,男,四年级\n")
    sitting = station("session", "open", "--kind", "pe", "--item", "sit_and_reach",
                      check=True).stdout.strip().splitlines()[-1]
    return json.loads(station("session", "close", sitting, "--json", check=True).stdout)


def district_row(collector: "Collector", station_id: str = "S01") -> dict:
    """The station's row on the district's `GET /api/stations`."""
    with collector.admin() as admin:
        return next(r for r in admin.get("/api/stations").json()["stations"] if r["id"] == station_id)
