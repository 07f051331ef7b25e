"""A pasted `acrcheck probe` report is evidence from the user's machine."""

from bot.diagnose import diagnose

REPORT = """here is what I get from the build agent:
acrcheck-probe v1 contosoacr.azurecr.io
vantage "build-agent-7"
dns contosoacr.azurecr.io ok public addrs=20.1.2.3
probe contosoacr.azurecr.io 20.1.2.3 fail denied ip=203.0.113.50 http=403
end ok=1 warn=0 fail=1 skipped=0 ms=311
"""


def test_report_is_recognised_with_user_vantage() -> None:
    d = diagnose(REPORT)
    assert d.cause == "registry-public-access"
    assert any(e.vantage.startswith("the user's machine") for e in d.evidence)
    fix = " ".join(f"{s.text} {s.command}" for s in d.fix)
    assert "203.0.113.50" in fix and "contosoacr" in fix


def test_timeouts_from_the_user_machine_point_at_client_egress() -> None:
    report = (
        "acrcheck-probe v1 contosoacr.azurecr.io\n"
        "dns contosoacr.azurecr.io ok public addrs=20.1.2.3\n"
        "probe contosoacr.azurecr.io 20.1.2.3 fail timeout\n"
        "end ok=1 warn=0 fail=1 skipped=0 ms=5011\n"
    )
    assert diagnose(report).cause == "client-firewall"


def test_data_endpoint_blocked_while_login_works() -> None:
    report = (
        "acrcheck-probe v1 contosoacr.azurecr.io\n"
        "dns contosoacr.azurecr.io ok public\n"
        "probe contosoacr.azurecr.io 20.1.2.3 ok 401-bearer\n"
        "dns contosoacr.eastus.data.azurecr.io ok public\n"
        "probe contosoacr.eastus.data.azurecr.io 20.9.9.9 fail timeout\n"
        "end ok=3 warn=0 fail=1 skipped=0 ms=5100\n"
    )
    d = diagnose(report)
    assert d.cause == "client-firewall-data-endpoint"
    assert "contosoacr.eastus.data.azurecr.io" in " ".join(f"{s.text} {s.command}" for s in d.fix)


def test_malformed_report_lines_are_ignored() -> None:
    d = diagnose('acrcheck-probe v1 contosoacr.azurecr.io\nprobe "unterminated\ndns\nend')
    assert d.cause in {"unrelated", "healthy"} or d.causes


def test_privatelink_name_answering_publicly_points_at_private_dns() -> None:
    report = (
        "acrcheck-probe v1 contosoacr.azurecr.io\n"
        'vantage "aks node"\n'
        "dns contosoacr.azurecr.io ok privatelink-public addrs=20.1.2.3\n"
        "probe contosoacr.azurecr.io 20.1.2.3 fail denied ip=203.0.113.50 http=403\n"
        "end ok=1 warn=0 fail=1 skipped=0 ms=311\n"
    )
    d = diagnose(report)
    assert d.cause == "registry-private-endpoint"
    assert [c.id for c in d.causes[:2]] == ["registry-private-endpoint", "registry-public-access"]
