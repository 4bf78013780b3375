"""A district that runs its collector on TLS under its own CA sets one key, `[upload] ca_bundle`,
and the pre-check, the outbox (heartbeats, reports) and the upload worker all trust it; a
plain-http collector on another computer is a pre-check warning and is not uploaded to."""
import json

import httpx
import pytest

from tests.helpers import district_ca
from tests.station.servers import Collector, close_pe_sitting, district_row, write_upload_config


@pytest.fixture
def tls_collector(tmp_path):
    files = district_ca(tmp_path / "pki")
    c = Collector(tmp_path / "collector", tls=files)
    c.ca = files[0]
    yield c
    c.stop()


def test_with_the_district_ca_set_once_precheck_outbox_and_uploads_all_get_through(
        station, data_dir, tmp_path, tls_collector):
    from station import outbox, precheck
    from station.context import Station
    from precheck import network

    token = tls_collector.add_station("S01")
    assert tls_collector.url.startswith("https://")
    with pytest.raises(httpx.ConnectError):  # the CA is the district's own: not trusted by default
        httpx.get(tls_collector.url + "/api/health", timeout=5)
    write_upload_config(data_dir, tls_collector.url, token, str(tls_collector.ca))

    # The pre-check, with the context the station builds for it.
    st = Station.open(str(data_dir))
    ctx = precheck.context(st)
    for check in (network.check_collector, network.check_tls, network.check_throughput):
        result = check(ctx)
        assert result.status == "pass", (check.__name__, result)

    # The outbox (heartbeats, pre-check reports).
    outbox.put(st.db, "heartbeat", "/api/stations/S01/heartbeat", {"version": "test", "at": "now"})
    assert outbox.flush(st.db, st.collector_link()) == (1, 0)
    assert district_row(tls_collector)["last_heartbeat"]["version"] == "test"

    # The upload worker (`station upload run`).
    closed = close_pe_sitting(station, tmp_path)
    station("upload", "run", "--once", check=True)
    row = district_row(tls_collector)
    assert row["sittings_complete"] == 1 and row["seals"][0]["seal_code"] == closed["seal_code"]


def test_without_the_district_ca_nothing_is_sent_and_the_reason_is_kept(station, data_dir, tmp_path,
                                                                       tls_collector):
    from station import outbox
    from station.context import Station

    token = tls_collector.add_station("S01")
    write_upload_config(data_dir, tls_collector.url, token)
    close_pe_sitting(station, tmp_path)
    station("upload", "run", "--once", check=True)
    status = json.loads(station("upload", "status", "--json", check=True).stdout)["sittings"]
    assert status[0]["state"] == "failed"
    st = Station.open(str(data_dir))
    # a heartbeat replaces the one `upload run` left waiting (it delivers the outbox first)
    outbox.put(st.db, "heartbeat", "/api/stations/S01/heartbeat", {"version": "test"}, replace=True)
    assert outbox.flush(st.db, st.collector_link()) == (0, 1)
    assert district_row(tls_collector)["sittings_complete"] == 0


def test_plain_http_to_another_computer_warns_in_the_precheck_and_is_not_uploaded_to(station, data_dir,
                                                                                    tmp_path):
    from precheck import network
    from precheck.context import Context
    from qmbase.collector_link import CollectorLink
    from station import precheck
    from station.context import Station

    # 192.0.2.0/24 is TEST-NET-1: nothing below connects to it.
    url = "http://192.0.2.10:8443"
    write_upload_config(data_dir, url, "some-token")
    st = Station.open(str(data_dir))
    result = network.check_tls(precheck.context(st))
    assert result.status == "warn" and "http://" in result.summary_zh and "allow_plain_http" in result.fix_en
    close_pe_sitting(station, tmp_path)
    refused = station("upload", "run", "--once")
    assert refused.returncode == 2 and "allow_plain_http" in refused.stderr and "https://" in refused.stderr
    # Said explicitly, it is allowed; on this computer it always was.
    assert CollectorLink(url=url, token="t", allow_plain_http=True).refusal() is None
    assert CollectorLink(url="http://127.0.0.1:8443", token="t").refusal() is None
    assert CollectorLink(url="http://localhost:8443", token="t").refusal() is None
    assert network.check_tls(Context(link=CollectorLink(url="http://127.0.0.1:9"))).status == "skip"
