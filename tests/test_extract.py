"""Facts read from pasted text, across tools and clouds."""

import pytest

from bot.engine.extract import extract


def test_login_server_client_ip_and_cloud() -> None:
    ex = extract("denied: client with IP '203.0.113.7' is not allowed access. registry contoso.azurecr.us")
    f = ex.facts
    assert f.login_server == "contoso.azurecr.us"
    assert f.registry == "contoso"
    assert f.cloud == "AzureUSGovernment"
    assert f.client_ip == "203.0.113.7"
    assert any(ip.address == "203.0.113.7" and ip.role == "client" and ip.scope == "public" for ip in f.ips)


def test_data_endpoint_region_and_blob_hosts() -> None:
    ex = extract(
        "GET https://myreg.japaneast.data.azurecr.io/v2/x/blobs/sha256:1 and "
        "https://abc123.blob.core.windows.net/container/x failed"
    )
    f = ex.facts
    assert f.data_endpoints == ["myreg.japaneast.data.azurecr.io"]
    assert f.region == "japaneast"
    assert f.registry == "myreg"
    assert f.login_server == "myreg.azurecr.io"
    assert f.blob_hosts == ["abc123.blob.core.windows.net"]


def test_china_cloud_and_privatelink() -> None:
    ex = extract("x509: certificate is valid for *.azurecr.cn, not reg1.privatelink.azurecr.cn")
    assert ex.facts.privatelink_hosts == ["reg1.privatelink.azurecr.cn"]
    assert ex.facts.cloud == "AzureChinaCloud"
    assert "privatelink" in ex.derived["host_kinds"]


def test_dns_server_target_ip_and_private_class() -> None:
    ex = extract(
        "dial tcp: lookup myreg.azurecr.io on 127.0.0.53:53: read udp 127.0.0.1:3333->127.0.0.53:53: i/o timeout\n"
        "Head https://myreg.azurecr.io/v2/a/manifests/b: dial tcp 10.1.2.3:443: i/o timeout"
    )
    f = ex.facts
    assert f.dns_server == "127.0.0.53:53"
    assert f.target_ip == "10.1.2.3"
    assert 443 in f.ports
    assert ex.derived["target_ip_scope"] == {"private"}
    assert any(ip.address == "10.1.2.3" and ip.scope == "private" and ip.role == "target" for ip in f.ips)


def test_proxy_status_codes_and_correlation_id() -> None:
    ex = extract(
        "Get https://myreg.azurecr.io/v2/: proxyconnect tcp: dial tcp 192.0.2.10:8080: connect: connection refused\n"
        "RESPONSE 403: 403 Forbidden\nx-ms-correlation-request-id: 0f8fad5b-d9cb-469f-a165-70867728950e"
    )
    f = ex.facts
    assert f.proxy == "192.0.2.10:8080"
    assert 403 in f.status_codes
    assert f.correlation_ids == ["0f8fad5b-d9cb-469f-a165-70867728950e"]


def test_tools_are_recognised() -> None:
    assert extract("Error response from daemon: Get https://r.azurecr.io/v2/: EOF").facts.tool == "docker"
    assert extract('Warning Failed kubelet Failed to pull image "a.azurecr.io/b"').facts.tool == "kubelet"
    assert extract("az acr login -n myreg\nAn error occurred: CONNECTIVITY_DNS_ERROR").facts.tool == "az"
    assert extract("podman pull x: initializing source docker://x").facts.tool == "podman"
    assert extract("#5 ERROR: failed to solve: buildx failed").facts.tool == "buildkit"


def test_checkhealth_codes_and_canipull() -> None:
    ex = extract(
        "2024-01-01 An error occurred: CONNECTIVITY_FORBIDDEN_ERROR\n"
        "[2025-01-11T21:08:53Z] Checking host name resolution (x.azurecr.io): FAILED\n"
        "ACR location: westeurope"
    )
    assert ex.facts.checkhealth_codes == ["CONNECTIVITY_FORBIDDEN_ERROR"]
    assert "dns_failed" in ex.derived["canipull"]
    assert ex.facts.canipull["location"] == "westeurope"


def test_kubernetes_context() -> None:
    ex = extract(
        "$ kubectl describe pod web-7d9 -n payments\n"
        'Warning Failed 37m kubelet, aks-nodepool1-12345678-vmss000001 Failed to pull image "x.azurecr.io/a"'
    )
    assert ex.facts.kubernetes["node"] == "aks-nodepool1-12345678-vmss000001"
    assert ex.facts.kubernetes["namespace"] == "payments"


@pytest.mark.parametrize(
    "line",
    [
        "$ az acr login -n contosoreg\nunauthorized: authentication required",  # -n is the registry name
        '$ echo -n "s3cret-pw" | docker login x.azurecr.io -u ci --password-stdin\nunauthorized',
    ],
)
def test_dash_n_outside_kubectl_is_not_a_namespace(line: str) -> None:
    assert "namespace" not in extract(line).facts.kubernetes


def test_malformed_and_lookalike_registry_hosts() -> None:
    doubled = extract("lookup myacr.azurecr.io.azurecr.io: no such host")
    assert "malformed" in doubled.derived["host_kinds"]
    typo = extract("Get https://myacr.azureacr.io/v2/: Service Unavailable")
    assert "lookalike" in typo.derived["host_kinds"]


def test_docker_hub_image_reference_is_a_public_registry() -> None:
    ex = extract("docker pull ubuntu:22.04\nError response from daemon: x509: certificate signed by unknown authority")
    assert ex.facts.registry_host == "docker.io"
    assert ex.derived["registry_class"] == {"public"}


def test_self_hosted_registry_is_private() -> None:
    ex = extract("docker login harbor.example.internal\nx509: certificate signed by unknown authority")
    assert ex.facts.registry_host == "harbor.example.internal"
    assert ex.derived["registry_class"] == {"private"}


def test_a_single_label_host_in_a_registry_url_is_that_host_not_docker_hub() -> None:
    """``https://registry/v2/`` names an intranet host; only an image reference without a host is Docker Hub's."""
    ex = extract(
        'Error response from daemon: Get "https://registry/v2/": dial tcp: lookup registry on 10.0.0.2:53: no such host'
    )
    assert ex.facts.registry_host == "registry"
    assert ex.derived["registry_class"] == {"private"}
    ex = extract("docker pull ubuntu:22.04\nError response from daemon: Get https://registry-1.docker.io/v2/: EOF")
    assert ex.facts.registry_host == "registry-1.docker.io"


def test_registry_name_from_az_arguments() -> None:
    ex = extract("az acr update --name prodregistry01 --public-network-enabled false\nFailed")
    assert ex.facts.registry == "prodregistry01"


@pytest.mark.parametrize(
    "line",
    [
        "az aks update -n aks1 -g rg --attach-acr contosoacr",
        "az aks create -g rg -n aks1 --acr contosoacr",
        "az aks update -n aks1 -g rg --attach-acr=contosoacr",
    ],
)
def test_registry_name_from_the_aks_attach_options(line: str) -> None:
    ex = extract(line + "\nERROR: Could not create a role assignment for ACR. Are you an Owner on this subscription?")
    assert ex.facts.registry == "contosoacr" and ex.facts.login_server == "contosoacr.azurecr.io"


def test_a_name_argument_after_many_nameless_az_commands_is_not_searched_for_ever() -> None:
    """The name is looked for at the first occurrences of ``az acr`` only (bounded work)."""
    assert extract("az acr login -n \n" * 10 + "az acr login -n contosoreg").facts.registry == "contosoreg"
    assert extract("az acr login -n \n" * 3000 + "az acr login -n contosoreg").facts.registry is None


def test_plain_chat_has_no_registry_context() -> None:
    ex = extract("lunch at 12?")
    assert not ex.registry_context
    assert ex.facts.to_dict().get("hosts") is None


@pytest.mark.parametrize(
    ("line", "scope"),
    [
        ("Get https://myreg.azurecr.io/v2/: dial tcp <private-ip>:443: i/o timeout", {"private"}),
        (
            "Head https://myreg.azurecr.io/v2/a/manifests/1: dial tcp \\<acr private IP address\\>:443: i/o timeout",
            {"private"},
        ),
        ("Get https://myreg.azurecr.io/v2/: dial tcp <public-ip>:443: i/o timeout", set()),
    ],
)
def test_a_dial_target_redacted_as_a_private_address_is_private(line: str, scope: set[str]) -> None:
    """Docs and careful posters redact the address as ``<private-ip>``: still a private target."""
    assert extract(line).derived["target_ip_scope"] == scope


@pytest.mark.parametrize(
    ("name", "single_label"),
    [("registry", True), ("myacr", True), ("XXXX", False), ("xxxxxxxx", False), ("REDACTED", False), ("****", False)],
)
def test_a_name_the_user_blanked_out_is_not_a_bare_host_name(name: str, single_label: bool) -> None:
    """``lookup XXXX``: the user hid the name before pasting; it says nothing about the name's form."""
    ex = extract(f'Head "https://{name}/v2/team/api/manifests/1.0": dial tcp: lookup {name} on 169.254.10.10:53: server misbehaving')
    assert ("single_label" in ex.derived["lookup_kinds"]) is single_label


@pytest.mark.parametrize(
    ("text", "marked"),
    [
        ("本番でこのエラーが出ます。\n```FYI the registry move is scheduled for Friday```", False),
        ("I get this error:\n```the build agents' IPs are added on Friday```", False),
        ("本番でこのエラーが出ます。\n```docker pull failed: i/o timeout```", True),  # "failed", "timeout"
        ("I get this error: Error response from daemon: manifest unknown", True),  # a second "error"
        ("このエラーとは別に、ログにエラーが出ています", True),  # エラー outside the reference
    ],
)
def test_words_pointing_at_an_error_are_not_an_error(text: str, marked: bool) -> None:
    """The chat around a paste ("I get this error", 「このエラーが出ます」) does not make it an error."""
    assert ("error_marker" in extract(text).facts.signals) is marked


def test_a_proxys_407_is_not_the_registry_asking_for_credentials() -> None:
    """"Proxy Authentication Required" holds the words "authentication required" but is the proxy's."""
    signals = extract('Error response from daemon: Head "https://contosoreg.azurecr.io/v2/web/manifests/1": Proxy Authentication Required (407)').facts.signals
    assert "proxy_auth_required" in signals and "unauthorized" not in signals
    assert "unauthorized" in extract("Error response from daemon: unauthorized: authentication required").facts.signals


@pytest.mark.parametrize("text", ["docker pull hangs at the first layer", "the pull is stuck at Waiting for an hour"])
def test_a_stalled_pull_is_an_error(text: str) -> None:
    assert "error_marker" in extract(text).facts.signals


def test_a_registry_on_localhost_is_still_a_registry() -> None:
    """A /v2/ request to localhost is a local registry (kind, oras, a dev registry), not another local service."""
    from bot.diagnose import diagnose

    d = diagnose('oras push localhost:5000/web:1 ./a.txt\nError: Head "http://localhost:5000/v2/web/manifests/1": dial tcp [::1]:5000: connect: connection refused')
    assert "v2_endpoint" in d.facts.signals and "local_service_error" in d.facts.signals
    # nothing listens there: the local registry is down (registry side), not a blocked path
    assert d.reply and d.cause == "other-acr", [(c.id, c.confidence) for c in d.causes]


@pytest.mark.parametrize("name", ["XXXXXXX", "xxx", "hidden", "MASKED", "registry"])
def test_a_blanked_out_registry_name_is_not_a_registry(name: str) -> None:
    """``az acr login --name XXXXXXX`` is a name the user hid, not a registry to check or fill into a fix."""
    facts = extract(f"$ az acr login --name {name}\nunauthorized: authentication required").facts
    assert facts.registry is None
    assert facts.login_server is None


def test_every_public_registry_is_not_self_hosted() -> None:
    """The self-hosted signal's regex keeps its own list of public registries: it must cover them all."""
    from bot.engine.hosts import PUBLIC_REGISTRIES

    for host in PUBLIC_REGISTRIES:
        signals = extract(f"docker pull {host}/team/app:1\nError response from daemon: EOF").facts.signals
        assert "self_hosted_registry_host" not in signals, host


@pytest.mark.parametrize(
    "text",
    [
        "docker pull できません: dial tcp: lookup contoso.azurecr.com: no such host",
        "docker pull failed: dial tcp: lookup contoso.azurecr.com: no such host",
        "docker run --help\ndial tcp: lookup contoso.azurecr.com: no such host",
        "docker 拉取镜像时报错: dial tcp: lookup contoso.azurecr.com: no such host",
    ],
)
def test_words_after_docker_pull_that_are_no_image_reference_name_no_registry(text: str) -> None:
    """Prose, a flag or a path after `docker pull` is not an image on Docker Hub: the host the
    paste does name is the registry."""
    assert extract(text).facts.registry_host == "contoso.azurecr.com"


@pytest.mark.parametrize(
    ("text", "host"),
    [
        ('Warning  Failed  kubelet  Back-off pulling image "acme/whalesay"', "docker.io"),
        ('Failed to pull image \\"acme/whalesay:1.2\\": rpc error: code = NotFound', "docker.io"),
        ("Unable to find image 'acme/meteord:latest' locally\ndocker: Error response from daemon: EOF.", "docker.io"),
        ('Back-off pulling image "harbor.corp.example:8443/team/app:3"', "harbor.corp.example:8443"),
    ],
)
def test_the_kubelet_and_docker_run_name_the_image_they_pull(text: str, host: str) -> None:
    assert extract(text).facts.registry_host == host


def test_argo_get_is_not_the_go_toolchain() -> None:
    text = 'argo get steps-x\n └---✖ hello0   steps-x-15   5s   Back-off pulling image "acme/whalesay"'
    assert "go_module_error" not in extract(text).facts.signals
    assert "go_module_error" in extract("go: downloading github.com/acme/lib v1.2.0").facts.signals


@pytest.mark.parametrize(
    "text",
    [
        "docker pull $REGISTRY/team/web:1.2\nunauthorized: authentication required",
        "docker push ${IMAGE}\ndenied: requested access to the resource is denied",
        "docker login $DOCKER_REGISTRY_URL -u ci --password-stdin\nError: Cannot perform an interactive login from a non TTY device",
    ],
)
def test_a_templated_image_or_registry_is_not_docker_hub(text: str) -> None:
    """A variable's value is unknown: nothing in the paste says Docker Hub."""
    assert extract(text).facts.registry_host is None
