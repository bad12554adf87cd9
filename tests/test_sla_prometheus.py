"""The Prometheus client against real Prometheus servers: plain, and behind TLS with basic auth.

Checks that every failure comes out as one of ``sla.errors`` with a message naming the cause,
and that range-query steps keep within Prometheus's 11,000-points-per-series limit.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr, ValidationError
from sla_fake_prometheus import FakePrometheus, vector_body

from driftgate.processes import ChildProcess, free_loopback_port
from driftgate.prometheus_server import PrometheusServer, find_prometheus_binary
from sla.errors import PrometheusQueryError, PrometheusUnavailableError
from sla.prometheus import (
    MAX_POINTS_PER_SERIES,
    PrometheusClient,
    PrometheusSettings,
    step_for_range_s,
)

USER, PASSWORD = "checker", "s3cret-pass"


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusClient]:
    with PrometheusServer(tmp_path_factory.mktemp("sla-prometheus") / "data") as server:
        client = PrometheusClient(PrometheusSettings(url=server.url, retries=0))
        try:
            yield client
        finally:
            client.close()


def test_instant_vector_and_scalar_results(plain: PrometheusClient) -> None:
    now_s = time.time()
    vector = plain.instant('label_replace(vector(2.5), "who", "me", "", "")', now_s)
    assert [(sample.labels, sample.value) for sample in vector] == [({"who": "me"}, 2.5)]
    scalar = plain.instant("scalar(vector(7))", now_s)
    assert [(sample.labels, sample.value) for sample in scalar] == [({}, 7.0)]
    assert plain.instant("absent_metric_name", now_s) == []


def test_a_bad_query_is_a_query_error_quoting_prometheus(plain: PrometheusClient) -> None:
    with pytest.raises(PrometheusQueryError, match=r"refused the query 'sum\(': .*parse error"):
        plain.instant("sum(", time.time())


def test_range_steps_stay_under_the_points_limit(plain: PrometheusClient) -> None:
    end_s = time.time()
    start_s = end_s - 3 * 86400
    step_s = step_for_range_s(end_s - start_s, resolution_s=1.0)
    assert (end_s - start_s) / step_s + 1 <= MAX_POINTS_PER_SERIES

    series = plain.range("vector(1)", start_s, end_s, step_s)
    assert len(series[0].points) <= MAX_POINTS_PER_SERIES
    with pytest.raises(PrometheusQueryError, match="11,000 points"):
        plain.range("vector(1)", start_s, end_s, 1.0)


def test_a_short_range_keeps_the_scrape_resolution() -> None:
    assert step_for_range_s(600.0, resolution_s=1.0) == 1.0
    assert step_for_range_s(86400.0 * 30, resolution_s=15.0) == pytest.approx(
        86400.0 * 30 / (MAX_POINTS_PER_SERIES - 1), abs=0.001
    )


def test_range_uses_the_exact_start(plain: PrometheusClient) -> None:
    start_s = round(time.time()) - 100.25
    series = plain.range("vector(1)", start_s, start_s + 3, 1.0)
    assert [time_s for time_s, _ in series[0].points] == pytest.approx(
        [start_s, start_s + 1, start_s + 2, start_s + 3]
    )


def test_a_string_result_is_a_query_error(plain: PrometheusClient) -> None:
    with pytest.raises(PrometheusQueryError, match="returned a string result, not a vector"):
        plain.instant('"hello"', time.time())


# --- malformed answers of a Prometheus-compatible server ---

QUERY = "/api/v1/query"
RANGE = "/api/v1/query_range"


@pytest.fixture
def fake() -> Iterator[FakePrometheus]:
    with FakePrometheus() as server:
        yield server


def _fake_client(fake: FakePrometheus) -> PrometheusClient:
    return PrometheusClient(PrometheusSettings(url=fake.url, retries=0, timeout_s=5))


def _vector(result: object) -> dict[str, object]:
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_vector(None), "expected a list, got null"),
        (_vector([{"metric": {}, "value": ["x", "1"]}]), 'time "x" is not a number'),
        (_vector([{"metric": {}, "value": [1, "fast"]}]), 'value "fast" is not a number'),
        (_vector([{"metric": {}, "value": [1]}]), "expected [time, value], got [1]"),
        (_vector([{"metric": {"a": 1}, "value": [1, "2"]}]), "labels are {'a': 1}"),
        (_vector(["oops"]), 'a series is "oops", not an object'),
        ({"status": "success", "data": None}, "data is null, not an object"),
        ({"status": "error", "error": "x"}, "status is 'error', not 'success'"),
        (
            {"status": "success", "data": {"resultType": "string", "result": [1, "hello"]}},
            "returned a string result, not a vector or scalar",
        ),
        ("<html>a proxy page</html>", "with JSON like a Prometheus API"),
    ],
)
def test_a_malformed_instant_answer_is_a_query_error(
    fake: FakePrometheus, body: object, message: str
) -> None:
    fake.answer(QUERY, body)
    with pytest.raises(PrometheusQueryError) as caught:
        _fake_client(fake).instant("up", 0.0)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert fake.url in str(caught.value) and "'up'" in str(caught.value)


def test_a_well_formed_answer_of_the_same_server_is_read(fake: FakePrometheus) -> None:
    fake.answer(QUERY, vector_body("0.25"))
    samples = _fake_client(fake).instant("up", 0.0)
    assert [(sample.labels, sample.value) for sample in samples] == [({"job": "x"}, 0.25)]
    fake.answer(QUERY, {"status": "success", "data": {"resultType": "scalar", "result": [1, "7"]}})
    assert [sample.value for sample in _fake_client(fake).instant("up", 0.0)] == [7.0]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"status": "success", "data": {"resultType": "matrix", "result": None}}, "got null"),
        ({"status": "success", "data": None}, "like a Prometheus API: TypeError"),
        (
            {
                "status": "success",
                "data": {
                    "resultType": "matrix",
                    "result": [{"metric": {}, "values": [["x", "1"]]}],
                },
            },
            'time "x" is not a number',
        ),
    ],
)
def test_a_malformed_range_answer_is_a_query_error(
    fake: FakePrometheus, body: object, message: str
) -> None:
    fake.answer(RANGE, body)
    with pytest.raises(PrometheusQueryError, match=re.escape(message)):
        _fake_client(fake).range("up", 0.0, 10.0, 1.0)


# --- the rules API ---


def test_alert_rule_names_from_a_real_prometheus(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "g",
                        "rules": [
                            {"alert": "Zeta", "expr": "vector(1) == 0"},
                            {"record": "job:up:sum", "expr": "sum(up)"},
                            {"alert": "Alpha", "expr": "vector(1) == 0"},
                        ],
                    }
                ]
            }
        )
    )
    with PrometheusServer(tmp_path / "data", rule_files=[rules]) as server:
        client = PrometheusClient(PrometheusSettings(url=server.url, retries=0))
        try:
            assert client.alert_rule_names() == ["Alpha", "Zeta"]
        finally:
            client.close()


def test_a_server_without_the_rules_api_cannot_list_alerts(fake: FakePrometheus) -> None:
    assert _fake_client(fake).alert_rule_names() is None
    fake.answer("/api/v1/rules", {"status": "success", "data": {"groups": None}})
    with pytest.raises(PrometheusQueryError, match="expected a list, got null"):
        _fake_client(fake).alert_rule_names()


def test_nobody_listening_is_unavailable() -> None:
    url = f"http://127.0.0.1:{free_loopback_port()}"
    client = PrometheusClient(PrometheusSettings(url=url, retries=0, timeout_s=2))
    with pytest.raises(PrometheusUnavailableError) as caught:
        client.instant("vector(1)", time.time())
    assert str(caught.value) == f"cannot reach Prometheus at {url}: [Errno 111] Connection refused"


def test_a_silent_server_times_out() -> None:
    # A listening socket that never answers: the connection opens, the reply never comes.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        client = PrometheusClient(PrometheusSettings(url=url, retries=0, timeout_s=0.5))
        with pytest.raises(PrometheusUnavailableError, match=r"did not answer within 0\.5s"):
            client.instant("vector(1)", time.time())


def test_settings_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="http://HOST:PORT"):
        PrometheusSettings(url="127.0.0.1:9090")
    with pytest.raises(ValidationError, match="either a bearer token or basic auth"):
        PrometheusSettings(
            url="http://127.0.0.1:1",
            bearer_token=SecretStr("t"),
            basic_auth_user="u",
            basic_auth_password=SecretStr("p"),
        )
    with pytest.raises(ValidationError, match="no such file"):
        PrometheusSettings(url="https://127.0.0.1:1", ca_file=tmp_path / "missing.pem")


# --- TLS with a private CA, and basic auth ---


@dataclass(frozen=True)
class SecureServer:
    url: str
    ca_file: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _make_certificates(directory: Path) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "1", "-subj", "/CN=driftgate test CA", cwd=directory,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1", cwd=directory,
    )  # fmt: skip
    (directory / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "san.cnf",
        cwd=directory,
    )  # fmt: skip


def _bcrypt(password: str) -> str:
    # Prometheus's web config wants a bcrypt hash; the standard library's crypt (libxcrypt)
    # makes one. The module is deprecated, hence the filter; cost 4 keeps requests fast.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureServer]:
    directory = tmp_path_factory.mktemp("sla-tls")
    _make_certificates(directory)
    web_config = {
        "tls_server_config": {
            "cert_file": str(directory / "server.pem"),
            "key_file": str(directory / "server.key"),
        },
        "basic_auth_users": {USER: _bcrypt(PASSWORD)},
    }
    (directory / "web.yml").write_text(yaml.safe_dump(web_config))
    (directory / "prometheus.yml").write_text(yaml.safe_dump({"global": {}}))
    port = free_loopback_port()
    process = ChildProcess(
        "prometheus-tls",
        [
            str(find_prometheus_binary()),
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--web.config.file={directory / 'web.yml'}",
            "--log.level=warn",
        ],
        directory / "prometheus.log",
    )
    process.start()
    server = SecureServer(f"https://127.0.0.1:{port}", directory / "ca.pem")
    try:
        _wait_until_answering(server, process)
        yield server
    finally:
        process.stop()


def _wait_until_answering(server: SecureServer, process: ChildProcess) -> None:
    client = _secure_client(server, PASSWORD)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not process.is_running():
            raise AssertionError(f"Prometheus with TLS exited:\n{process.log_tail()}")
        try:
            client.instant("vector(1)", time.time())
            return
        except PrometheusUnavailableError:
            time.sleep(0.2)
    raise AssertionError(f"Prometheus with TLS never answered:\n{process.log_tail()}")


def _secure_client(server: SecureServer, password: str, ca: bool = True) -> PrometheusClient:
    return PrometheusClient(
        PrometheusSettings(
            url=server.url,
            ca_file=server.ca_file if ca else None,
            basic_auth_user=USER,
            basic_auth_password=SecretStr(password),
            retries=0,
            timeout_s=5,
        )
    )


def test_tls_with_a_private_ca_and_basic_auth(secure: SecureServer) -> None:
    samples = _secure_client(secure, PASSWORD).instant("vector(3)", time.time())
    assert [sample.value for sample in samples] == [3.0]


def test_a_wrong_password_is_refused_credentials(secure: SecureServer) -> None:
    with pytest.raises(PrometheusUnavailableError, match=r"refused the credentials \(HTTP 401\)"):
        _secure_client(secure, "wrong").instant("vector(1)", time.time())


def test_without_the_ca_the_certificate_is_not_trusted(secure: SecureServer) -> None:
    with pytest.raises(PrometheusUnavailableError, match="TLS handshake"):
        _secure_client(secure, PASSWORD, ca=False).instant("vector(1)", time.time())
