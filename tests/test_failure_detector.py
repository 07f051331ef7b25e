"""The registry-failure detector: a paste that shows a registry operation failing is answered.

Every registry failure gets an answer in passive mode (``reply`` true, a registry cause on
top), in any tool's or person's words, English or Japanese; when the text cannot decide the
cause, the answer names the candidates and the deciding check instead of staying silent.
Chatter, successes, questions and other tools' errors stay silent. The messages below are
written for these tests (the library's real pastes are measured by benchmarks/accuracy.py).
"""

from __future__ import annotations

import pytest

from bot.diagnose import diagnose
from bot.engine.classify import classify
from bot.engine.extract import extract

FAILURES = [
    # a registry operation and a failure word, in a person's words
    "pulling the image from our registry failed again, no idea why",
    "the push to our registry keeps failing since this morning",
    "we are unable to pull from the registry in the new subscription",
    "since yesterday we are not able to pull docker images from Docker Hub",
    # tool output with a transport, TLS or HTTP failure
    "docker push myreg.azurecr.io/app:1 keeps failing with connection refused",
    "helm pull oci://myreg.azurecr.io/charts/app fails: 401 unauthorized",
    "Get https://myreg.azurecr.io/v2/: net/http: TLS handshake timeout",
    # another tool's words elsewhere (a maven module path) do not outweigh a failing /v2/ request
    'cd services/maven-orders && docker pull quay.io/acme/jdk:21\nError response from daemon: Get "https://quay.io/v2/": '
    "context deadline exceeded",
    # "X works fine, but ..." describes the problem; it does not say it is solved
    "The Harbor UI works fine, but docker login harbor.corp.example fails with: Error response from daemon: "
    'Get "https://harbor.corp.example/v2/": dial tcp: lookup harbor.corp.example: no such host',
    "昨日は解決しましたが、今日また docker pull が i/o timeout で失敗します",
    # "works fine" beside an error describes what still works, not a solution
    "The ECR credential helper works fine with docker pull. docker build --pull then fails with "
    "`unauthorized: authentication required` for FROM 123456789012.dkr.ecr.us-east-1.amazonaws.com/base:1",
    # AWS's own words for a failed pull, its registry permissions, Docker Hub's rate limit
    "Stopped reason: CannotPullContainerError: context deadline exceeded",
    "AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/batch-exec is not authorized to perform: "
    "ecr:GetAuthorizationToken on resource: *",
    "[ERROR] scanner job failed: You have reached your pull rate limit. You may increase the limit by authenticating.",
    "unable to get digest: Got bad response from registry: 400 Bad Request",
    # Jib pushes images from Maven: its "Failed to execute goal" is a registry failure
    "[ERROR] Failed to execute goal com.google.cloud.tools:jib-maven-plugin:3.4.0:build (default-cli) on project api: "
    "Build image failed: Connect to contosoacr.azurecr.io:443 [contosoacr.azurecr.io/20.1.2.3] failed: Connect timed out",
    # a pod table whose only error is the pull status; docker-compose v1's daemon message
    "$ kubectl get pods -n shop\nNAME                      READY   STATUS             RESTARTS   AGE\n"
    "cart-7d9f8b6c5d-x2x9q     0/1     ImagePullBackOff   0          4m",
    "ERROR: Couldn't connect to Docker daemon at http+docker://localhost - is it running?",
    # the image's own arguments name git; the failure is the daemon's request to the registry
    "$ docker run --rm alpine/git clone https://github.com/acme/app.git\nUnable to find image 'alpine/git:latest' locally\n"
    'docker: Error response from daemon: Get "https://registry-1.docker.io/v2/": Service Unavailable.',
    "a6d503001157: Pushing [=======>   ]  1.4MB\ndial tcp 10.0.0.21:443: i/o timeout",
    "GET https://registry.corp.example/v2/_catalog failed: dial tcp 192.0.2.10:443: i/o timeout",
    "curl -v https://contoso.azurecr.io/v2/ says curl: (28) Failed to connect to contoso.azurecr.io port 443 after 30001 ms: Timed out",
    "on the office network Docker Hub downloads end in x509: certificate signed by unknown authority",
    # Japanese
    "イメージのプッシュに失敗します",
    "レジストリへのログインがエラーになる",
    "ACR からのプルがタイムアウトします",
    "社内ネットワークからだと docker pull できません",
    "CI からイメージを push できなかった",
    "今朝からレジストリに接続できません",
    "Container App から ACR の管理者ユーザーが無効になっているため、イメージをプルできません",
    "指定したタグがレジストリに存在しないと言われる",
    # Chinese
    "从阿里云镜像仓库拉取时一直提示没有权限",
    "公司网络下拉取镜像失败",
    "配置了镜像加速以后 docker 镜像下载还是超时",
    # other tools that pull from registries
    "OCIRepository podinfo: reconciliation failed: DefaultAzureCredential: failed to acquire a token",
    "push to contoso.azurecr.io rejected: the operation is disallowed on this registry, repository or image",
    # docker push's layer lines make a bare refusal a registry failure
    "3f1c2a9b7d10: Preparing\n8e2b4c6d1f00: Preparing\nunauthorized: access to the requested resource is not authorized",
    # a platform the image was not built for; a pod that names a pull secret the cluster lacks
    "[+] Running 0/1\n ⠿ api Pulling   0.9s\nno matching manifest for linux/arm64/v8 in the manifest list entries",
    "Unable to retrieve some image pull secrets (regcred); attempting to pull the image may not succeed.",
    # Go's client could not reach its proxy: in a paste, a pull through a proxy (the library: 27 of 31)
    "proxyconnect tcp: EOF",
    "proxyconnect tcp: tls: first record does not look like a TLS handshake",
    # the registry part of the image reference is empty; AWS's CLI cannot reach a registry endpoint
    'The push refers to repository [/team/api]\nGet "https:/v2/": http: no Host in request URL',
    'Could not connect to the endpoint URL: "https://api.ecr.eu-west-9.amazonaws.com/"',
    # curl 8's words for a connection that never opened (a database's "could not connect to server:" differs)
    "curl: (28) Failed to connect to quay.io port 443 after 75002 ms: Could not connect to server",
]

SILENT = [
    "Error: failed to push some refs to 'git@github.com:org/repo.git'",
    "npm ERR! 404 Not Found - GET https://registry.npmjs.org/left-pad",
    "[ERROR] Failed to execute goal on project orders: Could not transfer artifact from/to central "
    "(https://repo.maven.apache.org/maven2): Connect to repo.maven.apache.org:443 failed: Connect timed out",
    "Successfully pushed image to myreg.azurecr.io/app:1, thanks everyone",
    "How do I enable the admin user on my registry?",
    "kubectl get pods: Unable to connect to the server: dial tcp 10.0.0.1:443: i/o timeout",
    # the library's registry timeouts read alike, but this is kubectl and its API server
    "$ kubectl -n payments get deploy\nUnable to connect to the server: net/http: request canceled while waiting "
    "for connection (Client.Timeout exceeded while awaiting headers)",
    "Image build failed: the Dockerfile has a syntax error on line 3",
    "Error: Failed to query available provider packages: could not connect to registry.terraform.io: timeout",
    "ランチはどこに行きますか",
    "ランチの後で pull request をレビューします",
    "[ERROR] Failed to execute goal on project api: Could not transfer artifact com.acme:core:jar:1.2 from/to nexus (https://nexus.corp.example/repository/maven/): PKIX path building failed",
    "Deploying the web app to Azure failed: The subscription is not registered to use namespace 'Microsoft.Web'.",
    "my function app cannot read the key vault secret: DefaultAzureCredential: failed to acquire a token",
    "镜像构建失败: Dockerfile 第三行语法错误",
    # a registry server's own backends and a build step's download are not registry pulls
    "harbor-core | [ERROR] [/lib/cache/cache.go:114]: failed to ping redis://redis:6379/0, retry after 500ms: "
    "dial tcp 172.18.0.5:6379: i/o timeout",
    'Error: error building at STEP "ADD https://files.corp.example/tool.tar.gz /opt/": error reading '
    'https://files.corp.example/tool.tar.gz: Get "https://files.corp.example/tool.tar.gz": x509: certificate signed by '
    "unknown authority",
    # a /v2/ in a package mirror's path is not the registry API (no manifests, blobs, tags or catalog)
    "Error: Failed to download metadata for repo 'appstream': Curl error (6): Couldn't resolve host name for "
    "https://mirror.example.org/v2/rocky/9/AppStream/x86_64/os/repodata/repomd.xml [Could not resolve host: mirror.example.org]",
    "Error: request to https://management.azure.com/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Web/sites/app?api-version=2022-03-01 failed, reason: connect ETIMEDOUT 20.1.2.3:443",
    # Python's requests through a proxy (pip, az login), and a chart repository through one
    "Retrying (Retry(total=4)) after connection broken by 'ProxyError('Cannot connect to proxy.', "
    "OSError('Tunnel connection failed: 407 Proxy Authentication Required'))': /simple/requests/",
    'Error: looks like "https://charts.corp.example/stable" is not a valid chart repository or cannot be reached: '
    'Get "https://charts.corp.example/stable/index.yaml": proxyconnect tcp: net/http: TLS handshake timeout',
    # a classic Helm chart repository (index.yaml), not an OCI registry
    'Error: looks like "https://charts.corp.example/stable" is not a valid chart repository or cannot be reached: '
    'Get "https://charts.corp.example/stable/index.yaml": x509: certificate signed by unknown authority',
    # a kubelet watching its own API server through a proxy
    "E0301 10:00:00.000000 1 reflector.go:138] Failed to list *v1.Node: Get "
    '"https://control-plane.corp.example:6443/api/v1/nodes?limit=500": Proxy Authentication Required',
    # every layer downloaded; the daemon's own storage failed to register one
    "latest: Pulling from acme/api\n6ec7b7d162b2: Already exists\n2d04da85e485: Download complete\n"
    "failed to register layer: lstat /var/lib/docker/overlay2/abc: no such file or directory",
    # an npm mirror's certificate (a package registry, not a container registry)
    "npm ERR! request to https://registry.npm.example-mirror.org/lodash failed, reason: certificate has expired",
]


@pytest.mark.parametrize("text", FAILURES)
def test_a_registry_failure_is_answered(text: str) -> None:
    d = diagnose(text)
    assert d.reply, [(c.id, c.confidence) for c in d.causes]
    assert d.cause != "unrelated"


@pytest.mark.parametrize("text", SILENT)
def test_other_messages_stay_silent(text: str) -> None:
    d = diagnose(text)
    assert not d.reply, [(c.id, c.confidence) for c in d.causes]


@pytest.mark.parametrize(
    ("text", "signal"),
    [
        ("pulling the image from our registry failed", "registry_failure_phrase"),
        ("docker login: cannot log in to myreg.azurecr.io", "registry_failure_phrase_verb"),
        ("the job failed while trying to pull", "registry_failure_phrase_verb"),
        ("we aren't able to push to the registry", "registry_failure_phrase_verb"),
        ("イメージのプルに失敗しました", "registry_failure_phrase_ja"),
        ("ACR のエラーが出ます", "registry_failure_phrase_ja"),
    ],
)
def test_failure_phrases(text: str, signal: str) -> None:
    ex = extract(text)
    assert signal in ex.facts.signals
    assert ex.registry_context


@pytest.mark.parametrize(
    "text",
    [
        "Image build failed. Build log: https://example.blob.core.windows.net/logs/raw.log",  # a build, not a pull
        "could not connect to registry.terraform.io: Failed to request discovery document",  # another tool's host
        "az acr check-health --name myreg --ignore-errors --yes",  # an option, not a failure
    ],
)
def test_not_a_failure_phrase(text: str) -> None:
    assert "registry_failure_phrase" not in extract(text).facts.signals


def test_an_undecided_failure_names_candidates_and_the_deciding_check() -> None:
    d = diagnose("pulling the image from our registry failed again, no idea why")
    assert d.reply and d.ambiguous
    assert len(d.candidates) >= 2
    assert d.decisive_check is not None and d.decisive_check.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Get https://registry.corp.example.net/v2/: x509: certificate signed by unknown authority", True),
        ("pulling from my-registry.mydomain.com failed", True),
        ("docker-registry.internal.lan:5000/app:1", True),
        ("Get https://registry-1.docker.io/v2/: EOF", False),
        ("npm ERR! 404 https://registry.npmjs.org/left-pad", False),
        ("myregistry.azurecr.io and myregistry.privatelink.azurecr.io", False),
        ("could not connect to registry.terraform.io", False),
        ("see registry.go:123 for details", False),
        ("request to https://registry.npm.example-mirror.org/lodash failed", False),
    ],
)
def test_a_host_named_like_a_registry_is_self_hosted(text: str, expected: bool) -> None:
    assert ("self_hosted_registry_host" in extract(text).facts.signals) is expected


def test_a_layers_pull_complete_is_not_a_successful_pull() -> None:
    """docker prints "Pull complete" per layer: a pull that stops half-way still failed. Only the
    lines docker prints once the whole image is there (digest, status) say the pull succeeded."""
    half_way = (
        "$ docker pull acme/trainer:3.1\n3.1: Pulling from acme/trainer\n9a1b2c3d4e5f: Pull complete\n"
        "0f1e2d3c4b5a: Downloading [=====>      ]  338.3MB/3.327GB\nunauthorized: authentication required"
    )
    assert "pull_succeeded" not in extract(half_way).facts.signals
    done = "9a1b2c3d4e5f: Pull complete\nDigest: sha256:0123abcd\nStatus: Downloaded newer image for acme/trainer:3.1"
    assert "pull_succeeded" in extract(done).facts.signals


def test_a_bare_pull_status_first_asks_for_the_pods_events() -> None:
    """`ImagePullBackOff` alone names no registry and no error: the reply is undecided between the
    pull causes, and its first step is the command that shows the real error, with the paste's
    namespace filled in."""
    d = diagnose(
        "$ kubectl get pods -n shop\nNAME                      READY   STATUS             RESTARTS   AGE\n"
        "cart-7d9f8b6c5d-x2x9q     0/1     ImagePullBackOff   0          4m"
    )
    assert d.reply and d.cause == "aks-pull", [(c.id, c.confidence) for c in d.causes]
    assert d.fix[0].command == "kubectl describe pod <pod> --namespace shop"


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        (
            "Unable to retrieve some image pull secrets (regcred); attempting to pull the image may not succeed.",
            "aks-pull",
        ),
        ("[+] Running 0/1\n ⠿ api Pulling   0.9s\nno matching manifest for linux/arm64/v8 in the manifest list entries", "other-acr"),
        ('The push refers to repository [/team/api]\nGet "https:/v2/": http: no Host in request URL', "registry-not-found"),
        ("proxyconnect tcp: EOF", "client-proxy"),
        # docker-py (docker compose v1, mlflow, molecule) when no daemon answers
        (
            "docker.errors.DockerException: Error while fetching server API version: "
            "('Connection aborted.', FileNotFoundError(2, 'No such file or directory'))",
            "client-docker-daemon",
        ),
        # Azure refused an action on the registry itself
        (
            "(AuthorizationFailed) The client 'dev@contoso.com' with object id '0000' does not have authorization to "
            "perform action 'Microsoft.ContainerRegistry/registries/listCredentials/action' over scope '/subscriptions/x'",
            "auth",
        ),
        # Testcontainers and docker compose v2 when no engine answers
        ("java.lang.IllegalStateException: Could not find a valid Docker environment. Please see logs and check configuration", "client-docker-daemon"),
        ("failed to connect to the docker API at unix:///var/run/docker.sock; check if the path is correct and if the daemon is running", "client-docker-daemon"),
        # an image reference whose registry part is an unset variable
        ('docker login "https:///v2/acme" -u ci\nError response from daemon: Get "https://registry-1.docker.io/v2/": unauthorized: incorrect username or password', "registry-not-found"),
        # docker-py wraps the daemon's error in its own 500: the inner error (a timeout) decides
        (
            '500 Server Error for http+docker://localhost/v1.43/images/create?tag=1.2&fromImage=ghcr.io%2Facme%2Fapi: '
            'Internal Server Error ("Get "https://ghcr.io/v2/acme/api/manifests/1.2": dial tcp 140.82.112.33:443: i/o timeout")',
            "client-firewall",
        ),
        # ingress-nginx's built-in certificate in front of a self-hosted registry
        ("Error response from daemon: Get https://registry.acme.example/v2/: x509: certificate is valid for ingress.local, not registry.acme.example", "registry-tls-config"),
        # Docker Hub's website is not its registry
        ("Error response from daemon: login attempt to https://hub.docker.com/v2/ failed with status: 404 Not Found", "registry-not-found"),
        # ACR's answer to a user name it does not know
        ('Error response from daemon: Get "https://contosoreg.azurecr.io/v2/": unauthorized: Application not registered with AAD.', "auth"),
        # ARM: the registry a role assignment targets does not exist
        (
            "Role assignment failed: The resource with name 'contosoreg' and type 'Microsoft.ContainerRegistry/registries' "
            "could not be found in subscription 'Pay-As-You-Go (0000)'. To add the AcrPull role assignment manually, run az role assignment create",
            "registry-not-found",
        ),
        # the image has no variant for the node's platform; the 401 after it is a side effect
        (
            'Failed to pull image "contosoreg.azurecr.io/tools/busybox:2.0": rpc error: code = NotFound desc = failed to pull and unpack image: '
            "no match for platform in manifest: not found; failed to authorize: failed to fetch anonymous token: unexpected status: 401 Unauthorized",
            "other-acr",
        ),
        ("(ExportPolicyDisabled) Enabling public network access is not supported because the registry 'contosoreg' has exports disabled.", "other-acr"),
        # the registry's own distribution-API error body is a registry answer
        ('GET https://contosoreg.azurecr.io/v2/_catalog returned 404 - "{\\"errors\\":[{\\"code\\":\\"NAME_UNKNOWN\\",\\"message\\":\\"repository name not known to registry\\"}]}"', "other-acr"),
        # a public registry's own certificate expired (a provider incident), not interception
        (
            'failed to copy: httpReadSeeker: failed open: failed to do request: Get "https://westus.data.mcr.microsoft.com/abc/blobs/sha256:1f": '
            "tls: failed to verify certificate: x509: certificate has expired or is not yet valid",
            "other-acr",
        ),
        # a firewall and the layers' separate host, in prose
        (
            "We allowed contosoreg.azurecr.io on port 443 in the firewall but the pull still fails: the layers come from "
            "contosoreg.blob.core.windows.net which the firewall blocks",
            "client-firewall-data-endpoint",
        ),
        # Chinese: the daemon's Client.Timeout in machine-translated compose output; DNS pollution; no permission to pull
        ("✘ api 错误获取“https://registry-1.docker.io/v2/”：net/http：等待连接时请求已取消（等待连接时超出 Client.Timeout）", "client-firewall"),
        ("docker pull 一直失败，registry-1.docker.io 的域名解析结果被污染了，返回的不是 docker 的地址", "client-dns"),
        ("K8s 集群沒權限拉 contosoreg.azurecr.io 的 image", "aks-pull"),
        # Japanese: "authentication is needed" to pull
        ("ghcr.io のイメージを docker pull しようとすると認証が必要と言われて pull できません", "auth"),
    ],
)
def test_a_failure_names_its_cause(text: str, cause: str) -> None:
    d = diagnose(text)
    assert d.reply and d.cause == cause, [(c.id, c.confidence) for c in d.causes]


@pytest.mark.parametrize(
    ("text", "cause", "signal"),
    [
        ("failed to connect to the docker API at npipe:////./pipe/dockerDesktopLinuxEngine: the system cannot find the file", "client-docker-daemon", "docker_daemon_unreachable"),
        ("Error response from daemon: Get https://registry.acme.example/v2/: x509: certificate is valid for ingress.local, not registry.acme.example", "registry-tls-config", "default_server_certificate"),
        ('Error response from daemon: Get "https://contosoreg.azurecr.io/v2/": unauthorized: Application not registered with AAD.', "auth", "acr_unknown_application"),
        (
            "The resource with name 'contosoreg' and type 'Microsoft.ContainerRegistry/registries' could not be found in subscription 'dev'.",
            "registry-not-found",
            "arm_registry_not_found",
        ),
        ('HEAD /v2/team/api/manifests/v9 -> 404 {"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}', "other-acr", "distribution_error_json"),
        (
            "The firewall allows contosoreg.azurecr.io on port 443, yet docker pull hangs: the layers come from the data endpoint contosoreg.westeurope.data.azurecr.io",
            "client-firewall-data-endpoint",
            "data_path_words",
        ),
        ("ghcr.io のイメージを docker pull しようとすると認証が必要と言われて pull できません", "auth", "unauthorized"),
        # Microsoft's Chinese documentation says 容器注册表 (container registry) and 映像 (image)
        ("部署失败：无法从 Azure 容器注册表拉取映像 contosoreg.azurecr.io/web:1.4，连接超时", "client-firewall", "registry_failure_phrase_ja"),
        # a registry's token service (its realm) pointing at an address the client cannot reach
        (
            'Error response from daemon: Head "https://git.acme.example/v2/team/web/manifests/1.0": Get '
            '"http://localhost:3000/v2/token?account=ci&scope=repository%3Ateam%2Fweb%3Apull&service=container_registry": '
            "dial tcp [::1]:3000: connect: connection refused",
            "other-acr",
            "registry_token_request",
        ),
        ("Error response from daemon: missing signature key", "other-acr", "manifest_invalid"),
        # a public registry (Ollama's) whose certificate the client does not trust: something re-signs it
        (
            'Error: pull model manifest: Get "https://registry.ollama.ai/v2/library/llama3/manifests/latest": tls: failed to verify '
            "certificate: x509: certificate signed by unknown authority",
            "tls-interception",
            "registry_words",
        ),
        ('PUT https://contosoreg.azurecr.io/v2/web/manifests/1.0 -> 403 {"errors":[{"code":"DENIED","message":"the principal lacks permission to push to repository web"}]}', "auth", "denied_permission"),
        (
            'Deployment failed. {"error": {"code": "InvalidImageRegistryIdentity", "message": "The identity in the '
            "'imageRegistryCredentials' of container group 'web' not found in container group identity list.\"}}",
            "auth",
            "aci_registry_identity",
        ),
        (
            "VMExtensionProvisioningError: Enable failed: command terminated with exit status=211. Bootstrap Container Registry is not reachable.",
            "registry-private-endpoint",
            "aks_bootstrap_registry",
        ),
        ("could not read CA certificate \"/home/dev/.docker/machine/certs/ca.pem\": open /home/dev/.docker/machine/certs/ca.pem: no such file or directory", "client-docker-daemon", "docker_daemon_unreachable"),
        ("registry.cn-hangzhou.aliyuncs.com/acme/web:2.1 是公开镜像吗？docker pull 后报错没有拉取权限", "auth", "no_permission_prose"),
        (
            "Error response from daemon: invalid registry endpoint https://10.20.30.40:5000/v0/: unable to ping registry endpoint. "
            "If this private registry supports only HTTP or HTTPS with an unknown CA certificate, please add `--insecure-registry 10.20.30.40:5000`",
            "registry-tls-config",
            "insecure_registry_needed",
        ),
        (
            "$ openssl s_client -connect quay.io:443\ndepth=1 C = US, O = Netskope Inc, CN = ca.corp.goskope.com\n"
            "verify error:num=20:unable to get local issuer certificate",
            "tls-interception",
            "interception_ca_seen",
        ),
        ("Revision failed: Unable to fetch image \"contosoreg.azurecr.io/web:1.0\": unsupported status code 401", "auth", "unauthorized"),
        ("ERROR: failed to initialize docker client: unable to parse docker host `/var/run/docker.sock`", "client-docker-daemon", "docker_daemon_unreachable"),
        # a TCP timeout (Node's ETIMEDOUT) to the registry while a proxy is on the path: the client bypasses it
        ("az acr login --name contosoreg runs behind the corporate proxy and fails: Error: connect ETIMEDOUT 20.1.2.3:443", "client-proxy", "proxy_mention"),
        (
            "crane push ./web.tar registry.acme.example/team/web:1.0\nError: PUT https://registry.acme.example/v2/team/web/blobs/uploads/: "
            "400 No required SSL certificate was sent",
            "registry-tls-config",
            "client_cert_required",
        ),
        (
            "Job for docker.service failed because the control process exited with error code.\n"
            'See "systemctl status docker.service" for details. (I had just added registry-mirrors to /etc/docker/daemon.json)',
            "client-docker-daemon",
            "docker_daemon_unreachable",
        ),
        # Baidu's public registry re-signed on the way: a public registry's certificates are public
        ("Error response from daemon: Get https://registry.baidubce.com/v2/: x509: certificate signed by unknown authority", "tls-interception", "x509_unknown_authority"),
        (
            "Error code: RegistryErrorResponse. An error response is received from the docker registry 'index.docker.io'. Please retry later.",
            "other-acr",
            "registry_answered_service_error",
        ),
        # the failing connection is to Docker's API port (DOCKER_HOST), not to a registry
        ('docker build -t web .\nERROR: Get "http://172.20.0.9:2375/_ping": dial tcp 172.20.0.9:2375: connect: connection refused', "client-docker-daemon", "docker_api_port"),
        # NXDOMAIN from Docker Desktop's own DNS forwarder, which can miss the host's VPN DNS
        ('Error response from daemon: Get "https://registry.corp.example/v2/": dial tcp: lookup registry.corp.example on 192.168.65.7:53: no such host', "client-dns", "docker_desktop_resolver"),
        # an older docker client dialling a daemon socket that is not there
        (
            "docker pull nginx:1.25\nPost http:///var/run/docker.sock/v1.20/images/create?fromImage=nginx&tag=1.25: dial unix /var/run/docker.sock: no such file or directory",
            "client-docker-daemon",
            "docker_daemon_unreachable",
        ),
        # prose: a pull said to fail, with a private endpoint in the picture
        ("Since we added a private endpoint to the registry, the build agents cannot pull from contosoreg.azurecr.io", "registry-private-endpoint", "private_endpoint_words"),
        ("プライベート エンドポイントを作ってから、社内の VM で ACR からプルできない状態です", "registry-private-endpoint", "private_endpoint_words"),
        # Docker Desktop refusing a Windows user outside its group: the engine is out of reach, no registry involved yet
        (
            'Docker Desktop failed to start\nYou are not allowed to use Docker. You must be in the "docker-users" group. (then docker pull fails too)',
            "client-docker-daemon",
            "docker_daemon_unreachable",
        ),
        # TLS trouble on the Docker daemon's API port (docker-machine, boot2docker): client and daemon, not a registry
        ("2015/03/29 17:01:43 Post https://10.1.2.3:2376/v1.20/images/create?fromImage=nginx: x509: certificate signed by unknown authority", "client-docker-daemon", "docker_api_port"),
        # docker-machine cannot check its VM's daemon certificate (the VM's address changed)
        (
            "$ eval $(docker-machine env dev)\nError checking TLS connection: Error checking and/or regenerating the certs: There was an error "
            'validating certificates for host "192.168.99.101:2376": x509: certificate is valid for 192.168.99.102, not 192.168.99.101',
            "client-docker-daemon",
            "docker_daemon_unreachable",
        ),
        # the docker context names an endpoint that is not there: the CLI has no daemon to talk to
        ('docker --context build-vm pull nginx:1.27\nERROR: docker endpoint for "build-vm" not found', "client-docker-daemon", "docker_daemon_unreachable"),
        # the older Go wording of an unresolvable proxy host: the name looked up is the proxy's
        (
            "Error response from daemon: Get https://registry-1.docker.io/v2/: http: error connecting to proxy http://proxy.corp:3128: "
            "dial tcp: lookup proxy.corp on 10.0.2.3:53: no such host",
            "client-proxy",
            "proxy_host_lookup",
        ),
        # nslookup's own words for name servers that do not answer
        ("$ nslookup registry-1.docker.io\n;; communications error to 127.0.0.53#53: timed out\n;; no servers could be reached\n(docker pull keeps failing)", "client-dns", "dns_udp_failure"),
        # the registry answered 5xx on one attempt and timed out on the next: an outage, not a blocked path
        (
            "Error response from daemon: Get https://quay.io/v2/acme/tool/manifests/1.2: received unexpected HTTP status: 502 Bad Gateway\n"
            "retrying...\nError response from daemon: Get https://quay.io/v2/auth?scope=repository%3Aacme%2Ftool%3Apull&service=quay.io: "
            "net/http: request canceled (Client.Timeout exceeded while awaiting headers)",
            "other-acr",
            "registry_status_5xx",
        ),
        # a credential store that needs a desktop session; the apt-get in the prose is its fix, not a failed package fetch
        (
            "docker compose build api\nfailed to solve: failed to create LLB definition: error getting credentials - err: exit status 1, "
            "out: `Cannot autolaunch D-Bus without X11 $DISPLAY`\nsudo apt-get install pass on the build server fixed it",
            "auth",
            "credential_helper_error",
        ),
        ("Connect Registry failed (Docker Hub)\nError Message: The name org.freedesktop.secrets was not provided by any .service files", "auth", "credential_helper_error"),
        (
            "Action: vscode-docker.registries.connectRegistry\nError type: Error\nError Message: No such interface "
            "\u201corg.freedesktop.Secret.Collection\u201d on object at path /org/freedesktop/secrets/collection/login",
            "auth",
            "credential_helper_error",
        ),
        # an image in the retired schema 1 format: neither the network nor the credentials
        (
            'Failed to pull image "quay.io/acme/legacy:0.9": failed to get converter for "quay.io/acme/legacy:0.9": Pulling Schema 1 images '
            "have been deprecated and disabled by default since containerd v2.0.",
            "other-acr",
            "schema1_image",
        ),
        # a Maven plugin that pushes through the Docker daemon: its failed goal is the registry's refusal, not a Maven repository's
        (
            "[ERROR] Failed to execute goal com.spotify:dockerfile-maven-plugin:1.4.13:push (default-cli) on project orders: "
            "Could not push image: denied: requested access to the resource is denied -> [Help 1]",
            "auth",
            "docker_build_plugin",
        ),
        # ECR's login call with a lapsed AWS session: credentials, not the network
        (
            "aws ecr get-login-password --region eu-west-1 | docker login --username AWS --password-stdin 123456789012.dkr.ecr.eu-west-1.amazonaws.com\n"
            "An error occurred (ExpiredTokenException) when calling the GetAuthorizationToken operation: The security token included in the request is expired",
            "auth",
            "unauthorized",
        ),
    ],
)
def test_the_rule_that_knows_the_phrase_decides(text: str, cause: str, signal: str) -> None:
    """The cause comes from the phrase's own signal (not only from similar cases in the library)."""
    assert_rule_decides(text, cause, signal)


def assert_silent(text: str) -> None:
    """Passive mode says nothing: the paste is not a registry failure."""
    d = diagnose(text)
    assert not d.reply, (d.cause, d.facts.signals)


def assert_rule_decides(text: str, cause: str, signal: str) -> None:
    """The paste shows ``signal``, and the bot answers with ``cause``."""
    d = diagnose(text)
    assert signal in d.facts.signals, d.facts.signals
    assert d.reply and d.cause == cause, [(c.id, c.confidence) for c in d.causes]


@pytest.mark.parametrize(
    ("text", "signal"),
    [
        (
            "argocd: failed to generate manifest for source 1 of 1: helm repo add https://charts.corp.example/stable "
            'failed: Get "https://charts.corp.example/stable/index.yaml": x509: certificate signed by unknown authority',
            "helm_chart_repo",
        ),
        (
            'E0301 10:00:00.000000 1 reflector.go:138] Failed to list *v1.Node: Get "https://cp.corp.example:6443/api/v1/'
            'nodes?limit=500": Proxy Authentication Required',
            "kubectl_api_server",
        ),
        (  # a classic chart repository's archive download (OCI registries never serve .tgz URLs)
            "helm pull stable/nginx --version 1.2.3\nError: Get https://charts.corp.example/stable/nginx-1.2.3.tgz: x509: "
            "certificate signed by unknown authority",
            "archive_download_url",
        ),
        (  # the client rejected the image name's syntax before contacting any registry
            "docker: invalid reference format: repository name (Acme/Api) must be lowercase.",
            "invalid_reference",
        ),
        (  # docker compose rejecting its own file, before any pull
            "Pulling images for app web...\nThe Compose file './docker-compose.yml' is invalid because:\n"
            "services.db.depends_on contains unsupported option: 'restart'",
            "docker_local_error",
        ),
        (  # a Windows container that the host's OS build cannot start: the image was pulled fine
            "docker: Error response from daemon: container 1f2e encountered an error during hcs::System::Start: "
            "failure in a Windows system call: The virtual machine or container exited unexpectedly. (0xc0370106).",
            "docker_local_error",
        ),
        (  # the Go toolchain fetching a module through a proxy (its module proxy protocol: /@v/)
            "go: downloading golang.org/x/net v0.17.0\ngo: golang.org/x/net@v0.17.0: Get "
            '"https://proxy.golang.org/golang.org/x/net/@v/v0.17.0.zip": proxyconnect tcp: dial tcp '
            "proxy.corp.example:3128: connect: connection refused",
            "go_module_error",
        ),
        (
            "RUN go mod download\ngo: example.com/acme/lib@v1.4.0: reading https://goproxy.cn/example.com/acme/lib/@v/"
            "v1.4.0.mod: proxyconnect tcp: EOF",
            "go_module_error",
        ),
        (  # kubectl logs/exec: the API server could not reach a node's kubelet (no image, no registry)
            "kubectl logs api-5d8f7 -n shop\nError from server: error dialing backend: dial tcp: lookup worker-3 on 10.96.0.10:53: no such host",
            "kubectl_api_server",
        ),
        (  # the AWS CLI refused the command line (v2 dropped get-login): nothing was sent to a registry yet
            "aws ecr get-login --no-include-email --region eu-west-1\nusage: aws [options] <command> <subcommand> [<subcommand> ...] [parameters]\n"
            "aws: error: argument operation: Invalid choice, valid choices are:\nbatch-check-layer-availability | batch-delete-image",
            "cli_usage_error",
        ),
        (  # metrics-server reading a kubelet's summary API: the kubelet's 401, not a registry's
            'E0601 10:00:00.000000 1 summary.go:97] error while getting metrics summary from Kubelet worker-2(10.0.0.12:10250): '
            'request failed - "401 Unauthorized", response: "Unauthorized"',
            "metrics_scrape",
        ),
        (  # kubectl exec through the API server to a kubelet that refused it
            "kubectl exec -it web-0 -n shop -- sh\nerror: unable to upgrade connection: Unauthorized",
            "kubectl_api_server",
        ),
        (  # an app in a compose stack cannot resolve its own database service
            "api-1  | MongooseServerSelectionError: getaddrinfo EAI_AGAIN mongodb\napi-1  |     at NativeConnection.Connection.openUri",
            "database_error",
        ),
    ],
)
def test_another_services_failure_is_said_to_be_unrelated(text: str, signal: str) -> None:
    """Silent, and for the reason that it is another service's error (not merely for lack of a rule)."""
    d = diagnose(text)
    assert signal in d.facts.signals
    assert not d.reply and d.cause == "unrelated" and d.confidence >= 0.8, [(c.id, c.confidence) for c in d.causes]


@pytest.mark.parametrize(
    "text",
    [
        'docker run -v /srv/data:app:/data busybox\ndocker: Error response from daemon: invalid bind mount spec "/srv/data:app:/data": invalid mode: /data.',
        "docker run --cpus=4 ghcr.io/acme/worker:2.1\ndocker: Error response from daemon: Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available.",
    ],
)
def test_arguments_the_engine_rejects_are_its_own_errors(text: str) -> None:
    """The engine rejected a ``-v`` or ``--cpus`` argument before it ran anything: its own error, not a registry's."""
    d = diagnose(text)
    assert "docker_local_error" in d.facts.signals
    assert not d.reply and d.cause == "unrelated", [(c.id, c.confidence) for c in d.causes]


def test_an_authorization_failure_on_another_azure_service_is_not_the_registry() -> None:
    d = diagnose(
        "(AuthorizationFailed) The client 'dev@contoso.com' with object id '0000' does not have authorization to "
        "perform action 'Microsoft.KeyVault/vaults/read' over scope '/subscriptions/x'"
    )
    assert "arm_other_provider" in d.facts.signals
    assert not d.reply and d.cause == "unrelated"


def test_an_html_page_read_by_dockers_registry_client_is_a_registry_failure() -> None:
    """docker's "error parsing HTTP <code> response body" means its registry client got a page it
    cannot read (from a proxy, a firewall or the registry's front end): registry context by rule,
    not only because real cases of it happen to be near."""
    text = (
        "error parsing HTTP 408 response body: invalid character '<' looking for beginning of value: "
        '"<html><head><title>408</title></head><body>The gateway closed an idle request.</body></html>"'
    )
    ex = extract(text)
    assert "registry_response_unparsable" in ex.facts.signals and ex.registry_context
    assert diagnose(text).reply


@pytest.mark.parametrize(
    "text",
    [
        "Our release pipeline can no longer push to the registry; the push just times out after a few minutes",
        "Since Monday the nodes are no longer able to pull images from our registry",
        "docker pull of our base image keeps timing out on the build servers",
    ],
)
def test_a_registry_operation_that_no_longer_works_or_times_out_is_answered(text: str) -> None:
    """"can no longer push", "no longer able to pull", "times out": a registry failure in a person's words."""
    d = diagnose(text)
    assert d.reply and d.cause != "unrelated", [(c.id, c.confidence) for c in d.causes]


@pytest.mark.parametrize("text", ["the nightly build times out again, can someone look", "we can no longer deploy on fridays"])
def test_a_timeout_or_no_longer_without_a_registry_stays_silent(text: str) -> None:
    assert not diagnose(text).reply


@pytest.mark.parametrize(
    ("text", "cause", "signal"),
    [
        # a blob the registry does not have is the registry's content, not a blocked data endpoint
        ("latest: Pulling from team/api\nerror pulling image configuration: unknown blob", "other-acr", "manifest_unknown"),
        # the client spoke plain HTTP to the registry's HTTPS port (nginx's own page)
        (
            "Error: pushing image failed: GET http://registry.corp.example/v2/: unexpected status code 400 Bad Request: "
            "<html><head><title>400 The plain HTTP request was sent to HTTPS port</title></head></html>",
            "registry-tls-config",
            "http_response_to_https",
        ),
        # nothing listens on 443 of a self-hosted registry named without a port
        (
            'Error response from daemon: Get "https://registry.corp.example/v2/": dial tcp 192.0.2.10:443: connect: connection refused',
            "registry-tls-config",
            "https_default_port_refused",
        ),
        ("Error response from daemon: pull does not exist or no pull access for team/api", "auth", "access_denied_resource"),
        (
            "failed to resolve: GET https://ghcr.io/token?scope=repository:acme/web:pull&service=ghcr.io: DENIED: denied",
            "auth",
            "registry_token_request",
        ),
        ("Our AKS cluster gets 401 Unauthorized from the Azure container registry since this morning", "aks-pull", "aks_specific"),
        ('the tool reports "cannot resolve contosoreg.azurecr.io" from time to time, a retry works', "client-dns", "dns_temporary_failure"),
        (
            "dockerd fails to start: unable to configure the Docker daemon with file /etc/docker/daemon.json: "
            'invalid mirror: path, query, or fragment at end of the URI "http://nexus.corp:8081/repository/docker/"',
            "client-docker-daemon",
            "docker_daemon_unreachable",
        ),
        ("docker compose up\nError response from daemon: denied", "auth", "bare_denied"),
        (
            'Error response from daemon: Get "https://ghcr.io/v2/": proxyconnect tcp: dial tcp 127.0.0.1:10809: connect: connection refused',
            "client-proxy",
            "connection_refused",
        ),
        (
            'Error response from daemon: Get "https://quay.io/v2/": writing response to quay.io:443: connecting to 127.0.0.1:1080: '
            "dial tcp 127.0.0.1:1080: connect: connection refused",
            "client-proxy",
            "connection_refused",
        ),
    ],
)
def test_registry_failures_read_from_the_batch_misses(text: str, cause: str, signal: str) -> None:
    """General rules read from blind misses (each stated for its class of error, not for one paste)."""
    assert_rule_decides(text, cause, signal)


@pytest.mark.parametrize(
    "text",
    [
        # the kubelet's own API (10250), not a registry
        'the wait container (kubelet executor) fails: Get "https://node-3:10250/pods": x509: certificate signed by unknown authority',
        # Maven resolving from an Artifactory repository
        "[ERROR] Failed to execute goal on project api: Could not resolve dependencies for project com.acme:api:jar:1.0: "
        "Could not transfer artifact com.acme:core:pom:1.0 from/to central (https://artifactory.acme.example/maven): "
        "PKIX path building failed: x509: certificate signed by unknown authority",
        # a classic chart repository fetched with helm pull --repo
        'Error: looks like "https://charts.acme.example/stable" is not a valid chart repository or cannot be reached: '
        'helm pull --repo https://charts.acme.example/stable web failed: Get "https://charts.acme.example/stable/index.yaml": '
        "x509: certificate signed by unknown authority",
        # a release binary downloaded through a proxy
        "downloading binaries: downloading kubelet: download failed: https://dl.k8s.io/release/v1.29.0/bin/linux/amd64/kubelet"
        "?checksum=file:https://dl.k8s.io/release/v1.29.0/bin/linux/amd64/kubelet.sha256: Get: proxyconnect tcp: EOF",
    ],
)
def test_other_tools_errors_from_the_batch_misses_stay_silent(text: str) -> None:
    assert_silent(text)


def test_cloud_builds_out_of_retries_is_not_acr_tasks() -> None:
    """ACR Tasks print "failed to login, ran out of retries"; other builders run out of retries too."""
    other = extract("ERROR: failed to pull because we ran out of retries.\nERROR: build step 0 failed").facts.signals
    tasks = extract("Logging in to registry: contosoreg.azurecr.io\nfailed to login, ran out of retries").facts.signals
    assert "acr_tasks" not in other
    assert "acr_tasks" in tasks


def test_an_oci_chart_with_a_certificate_error_is_a_registry_failure() -> None:
    d = diagnose('helm pull oci://registry.corp.example/charts/web --version 1.0.0\nError: failed to do request: Head "https://registry.corp.example/v2/charts/web/manifests/1.0.0": x509: certificate signed by unknown authority')
    assert d.reply and d.cause == "registry-tls-config"


def test_dockers_hint_about_a_proxy_is_not_a_proxy() -> None:
    """docker prints "check your internet connection or if you are behind a proxy" for everyone."""
    hint = (
        "Network timed out while trying to connect to https://index.docker.io/v1/repositories/library/node/images. "
        "You may want to check your internet connection or if you are behind a proxy."
    )
    assert "proxy_mention" not in extract(hint).facts.signals
    said = extract(hint + "\nWe are behind a corporate proxy (squid) here.").facts.signals
    assert "proxy_mention" in said


def test_a_registry_named_in_an_ecr_token_error_is_registry_context() -> None:
    ex = extract("An error occurred (AccessDeniedException) when calling the GetAuthorizationToken operation: not authorized")
    assert ex.registry_context


@pytest.mark.parametrize(
    ("text", "cause", "signal"),
    [
        (
            "flux push artifact oci://contosoreg.azurecr.io/manifests:1 --provider azure\n"
            "✗ could not login to provider azure: ManagedIdentityCredential: failed to authenticate a system assigned identity. "
            'The endpoint responded with {"error":"invalid_request","error_description":"Identity not found"}',
            "auth",
            "managed_identity_failure",
        ),
        (
            "az acr build -r contosoreg -t web:1 .\nRun ID: ca12 failed after 4s. Error: failed during run, err: exit status 1\n"
            "when specifying push, at least one credential is required",
            "auth",
            "acr_credential_missing",
        ),
        (
            '{"error":{"code":"NoRegisteredProviderFound","message":"No registered resource provider found for location '
            "'westeurope' and API version '2016-06-27-preview' for type 'registries'.\"}}",
            "other-acr",
            "provider_api_unsupported",
        ),
    ],
)
def test_azure_registry_errors_read_from_the_batch_misses(text: str, cause: str, signal: str) -> None:
    assert_rule_decides(text, cause, signal)


def test_a_registry_name_written_as_a_template_is_not_a_misspelling() -> None:
    """``<registry>.azurecr.io`` is the user's placeholder, not a look-alike of an ACR name."""
    text = (
        "docker login <registry>.azurecr.io --username token1 --password-stdin\n"
        'docker pull <registry>.azurecr.io/web:1\nError: "you are not authorized to perform this operation: server returned 401."'
    )
    assert "lookalike" not in extract(text).derived["host_kinds"]
    d = diagnose(text)
    assert d.reply and d.cause == "auth", [(c.id, c.confidence) for c in d.causes]


def test_acrs_legacy_helm_repository_is_a_registry() -> None:
    """``az acr helm`` repositories live on the registry: a failed chart fetch from one is answered."""
    d = diagnose(
        "$ az acr helm repo add --name contosoreg\n$ helm upgrade web contosoreg/web\n"
        "Error: failed to fetch https://contosoreg.azurecr.io/helm/v1/repo/_blobs/web-1.0.0.tgz : 401 Unauthorized"
    )
    assert d.reply and d.cause == "auth", [(c.id, c.confidence) for c in d.causes]


@pytest.mark.parametrize(
    ("text", "cause", "signal"),
    [
        ("Since the upgrade our pods can't pull from the private registry anymore: 401 Unauthorized", "aks-pull", "cluster_pull_prose"),
        (
            'E0412 kuberuntime_image.go:53] Pull image "registry.corp.example/team/api:2" failed: rpc error: code = Unknown '
            "desc = Error response from daemon: Get https://registry.corp.example/v2/team/api/manifests/2: unauthorized: authentication required",
            "aks-pull",
            "pod_pull_failure",
        ),
        ("Error response from daemon: Get https://ghcr.io/v2/: dial tcp: i/o timeout", "client-dns", "dial_without_address_timeout"),
        (
            "$ cat /etc/hosts\n203.0.113.9 ghcr.io\n$ docker pull ghcr.io/acme/web:1\n"
            'Error response from daemon: Get "https://ghcr.io/v2/": x509: certificate is valid for *.old-cdn.example, not ghcr.io',
            "client-dns",
            "hosts_file_mention",
        ),
        ("On the VPN, docker keeps using the wrong DNS server and cannot pull from registry.corp.example: no such host", "client-dns", "wrong_dns_prose"),
    ],
)
def test_cluster_and_resolver_causes_from_the_library_misses(text: str, cause: str, signal: str) -> None:
    assert_rule_decides(text, cause, signal)


@pytest.mark.parametrize(
    ("text", "cause", "signal"),
    [
        (
            "[INFO] --- spring-boot-maven-plugin:3.2.0:build-image (default-cli) @ api ---\n[ERROR] Failed to execute goal "
            "org.springframework.boot:spring-boot-maven-plugin:3.2.0:build-image: Connection to the Docker daemon at 'localhost' "
            'failed with error "[2] No such file or directory"; ensure the Docker daemon is running and accessible',
            "client-docker-daemon",
            "docker_daemon_unreachable",
        ),
        (
            "- name: push image\n  containers.podman.podman_image:\n    name: registry.corp.example:8443/team/api\n    push: yes\n"
            "    validate_certs: no\nx509: certificate signed by unknown authority",
            "registry-tls-config",
            "tls_verify_disabled",
        ),
        ("denied: registry contains 1 repositories, limit is 1", "other-acr", "quota_or_sku"),
        ("docker push ocir.example/ns/app:1\nDenied: Anonymous users are only allowed read access on public repos", "auth", "access_denied_resource"),
        (
            "ERROR: failed to solve: failed to push registry.corp.example/app:1: exporting attestation manifest sha256:abc: "
            'failed commit on ref "manifest-sha256:abc": unexpected status: 400 Bad Request',
            "other-acr",
            "attestation_manifest",
        ),
        (
            'Error response from daemon: Get "https://registry-1.docker.io/v2/": rejecting registry-1.docker.io:443 because '
            'evaluating the PAC file failed: Get "http://wpad/wpad.dat": dial tcp: lookup wpad: no such host',
            "client-proxy",
            "pac_proxy",
        ),
        (
            'Error response from daemon: Get "https://registry-1.docker.io/v2/": dial tcp [2600:1f18:2148:bc00::1]:443: '
            "connect: cannot assign requested address",
            "client-firewall",
            "ipv6_path_broken",
        ),
        (
            'Error BCP192: Unable to restore the module with reference "br:contosoreg.azurecr.io/bicep/modules/vnet:v1": '
            "Unhandled exception: Azure.Identity.CredentialUnavailableException: Please run 'Connect-AzAccount' to set up account.",
            "auth",
            "managed_identity_failure",
        ),
        (
            "dotnet publish /t:PublishContainer\nerror CONTAINER1013: Failed to push to the output registry: "
            "System.Threading.Tasks.TaskCanceledException: The request was canceled due to the configured HttpClient.Timeout of 100 seconds elapsing.",
            "other-acr",
            "sdk_push_timeout",
        ),
        (
            "I deploy it with the terraform provider and the kubelet says: Failed to pull image \"ghcr.io/acme/api:1\": "
            'rpc error: failed to do request: Head "https://ghcr.io/v2/acme/api/manifests/1": EOF',
            "client-firewall",
            "pod_pull_failure",
        ),
    ],
)
def test_more_rules_from_the_batch_misses(text: str, cause: str, signal: str) -> None:
    assert_rule_decides(text, cause, signal)


@pytest.mark.parametrize(
    "text",
    [
        'helm repo add harbor https://harbor.corp.example/chartrepo/library\nError: looks like "https://harbor.corp.example/chartrepo/library" '
        'is not a valid chart repository or cannot be reached: Get "https://harbor.corp.example/chartrepo/library/index.yaml": '
        "x509: certificate signed by unknown authority",
        "> node scripts/install.js\nDownloading binary from https://nexus.corp.example/repository/raw/v9/linux-x64_binding.node\n"
        'Cannot download "https://nexus.corp.example/repository/raw/v9/linux-x64_binding.node": HTTP error 401 Unauthorized',
        "Uploading LFS objects: 0% (0/1)\nbatch response: HTTP 413 Request Entity Too Large while pushing git lfs objects to gitlab",
        'Warning FailedCreatePodSandBox kubelet: failed to setup network for sandbox "abc": plugin type="calico" failed (add): '
        'Get "https://10.43.0.1:443/apis/crd.projectcalico.org/v1/clusterinformations/default": x509: certificate signed by unknown authority',
        "STEP 2/3: ADD https://raw.githubusercontent.com/acme/tools/main/install.sh /install.sh\n"
        'Error: Get "https://raw.githubusercontent.com/acme/tools/main/install.sh": dial tcp 185.199.110.133:443: connect: connection refused',
    ],
)
def test_more_other_tools_errors_stay_silent(text: str) -> None:
    assert_silent(text)


def test_a_hidden_name_that_does_not_resolve_is_not_a_bare_name() -> None:
    """``lookup <domain>`` is the user's placeholder, not a single-label name."""
    text = (
        '[restorer] ERROR: failed to pull run image: Get "https://<domain>/v2/": dial tcp: lookup <domain> on 192.168.1.1:53: no such host'
    )
    assert "single_label" not in extract(text).derived["lookup_kinds"]
    d = diagnose(text)
    assert d.reply and d.cause == "client-dns", [(c.id, c.confidence) for c in d.causes]


def test_a_yaml_image_key_names_the_registry() -> None:
    ex = extract("    image: mirror.corp.localdomain:8443/team/api:1.0\n    tls_verify: false\nx509: certificate signed by unknown authority")
    assert ex.facts.registry_host == "mirror.corp.localdomain:8443"


def test_a_timeout_to_a_host_and_port_is_a_dial_timeout() -> None:
    assert "dial_timeout" in extract('The "CreateNewImage" task failed unexpectedly.\nTimeout to mcr.microsoft.com:443').facts.signals


def test_curls_unknown_ca_message_is_an_unknown_authority() -> None:
    assert "x509_unknown_authority" in extract("Peer certificate cannot be authenticated with known CA certificates").facts.signals


def test_the_dotnet_sdks_push_is_a_registry_failure() -> None:
    """The SDK's package path (``~/.nuget/packages/microsoft.net.build.containers``) frames a registry push, not a NuGet error."""
    d = diagnose(
        "/home/ci/.nuget/packages/microsoft.net.build.containers/8.0.1/build/Microsoft.NET.Build.Containers.targets(201,5): "
        "error CONTAINER1013: Failed to push to the output registry: System.Net.Http.HttpRequestException: "
        "The SSL connection could not be established. The remote certificate is invalid: self signed certificate in certificate chain"
    )
    assert "tool_sdk_image_build" in d.facts.signals
    assert d.reply and d.cause in ("registry-tls-config", "tls-interception"), [(c.id, c.confidence) for c in d.causes]


@pytest.mark.parametrize(
    "text",
    [
        # a release asset downloaded from GitHub, through a proxy that was not used
        'Error: head request failed: https://github.com/acme/vm-images/releases/latest/download/rootfs.tar.xz: Head '
        '"https://github.com/acme/vm-images/releases/latest/download/rootfs.tar.xz": dial tcp: lookup github.com: no such host',
        # docker push of a tag the build never made: the local image store
        "The push refers to repository [contosoreg.azurecr.io/api]\nAn image does not exist locally with the tag: contosoreg.azurecr.io/api",
        # an Azure Files volume mount on AKS
        "MountVolume.SetUp failed for volume \"pvc-1\" : mount failed: exit status 32\nMounting command: mount\n"
        "Mounting arguments: -t cifs //acct.file.core.windows.net/share /var/lib/kubelet/pods/x/volumes\nOutput: mount error(13): Permission denied",
        # a push that worked, after the fix
        'Hooray! Setting insecure-registries worked!\n$ docker push reg.lan:5000/web\nThe push refers to repository [reg.lan:5000/web]\n'
        "05249acac3bd: Pushed\nlatest: digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef size: 2204",
    ],
)
def test_false_alarms_read_from_cross_validation_stay_silent(text: str) -> None:
    assert_silent(text)


def test_the_devfile_registry_is_not_a_self_hosted_image_registry() -> None:
    signals = extract('Get "https://registry.devfile.io/index/sample": dial tcp 34.198.81.130:443: i/o timeout').facts.signals
    assert "self_hosted_registry_host" not in signals


def test_a_bare_unauthorized_at_the_end_of_dockers_line_is_a_401() -> None:
    """docker prints the registry's bare ``unauthorized`` after the URL; lines are joined before matching."""
    d = diagnose('Error response from daemon: Get "https://ghcr.io/v2/acme/api/manifests/1.2": unauthorized\nmake: *** [push] Error 1')
    assert "unauthorized" in d.facts.signals
    assert d.reply and d.cause == "auth", [(c.id, c.confidence) for c in d.causes]


@pytest.mark.parametrize(
    ("text", "signal"),
    [
        ('Error: "you are not authorized to perform this operation: server returned 401."', "unauthorized"),
        ("failed to fetch manifest: HTTP 401 from the registry", "unauthorized"),
        ('Connect timeout on endpoint URL: "https://api.ecr.eu-west-1.amazonaws.com/"', "dial_timeout"),
    ],
)
def test_pattern_alternatives_are_reachable_through_their_keywords(text: str, signal: str) -> None:
    """A signal's regex runs only when one of its keywords is present: a bare 401 and Java/AWS's
    "Connect timeout" were alternatives of the patterns that no keyword let through."""
    assert signal in extract(text).facts.signals


@pytest.mark.parametrize(
    ("text", "cause", "signal"),
    [
        (
            'Error response from daemon: Get https://123456789012.dkr.ecr.cn-north-1.amazonaws.com/v2/: dial tcp: lookup '
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com on 192.168.65.1:53: no such host",
            "registry-not-found",
            "dns_no_such_host",
        ),
        (
            'error parsing HTTP 403 response body: invalid character \'Y\' looking for beginning of value: "Your Authorization Token '
            "has expired. Please run 'aws ecr get-login' to fetch a new one.\"",
            "auth",
            "unauthorized",
        ),
        (
            "*** WARNING: Service runner-abc-project-1-concurrent-0-docker-0 probably didn't start properly.\n"
            "Health check error: ContainerStart: Error response from daemon: Cannot link to a non running container",
            "client-docker-daemon",
            "docker_daemon_unreachable",
        ),
    ],
)
def test_rules_from_the_gitlab_and_cloud_batches(text: str, cause: str, signal: str) -> None:
    assert_rule_decides(text, cause, signal)


def test_a_wrong_ecr_suffix_names_the_right_one_in_the_reply() -> None:
    d = diagnose("dial tcp: lookup 123456789012.dkr.ecr.cn-north-1.amazonaws.com on 10.0.0.2:53: no such host")
    assert any("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn" in r for c in d.causes for r in c.reasons)


def test_a_package_registrys_403_stays_silent() -> None:
    d = diagnose('The project-level deploy token gets a 403 on the package registry (Maven):\n{"message":"403 Forbidden"}')
    assert not d.reply, (d.cause, d.facts.signals)


def test_an_unauthorized_error_named_in_prose_is_a_401() -> None:
    d = diagnose(
        '{"error": {"code": "UserError", "message": "Unauthorized error encountered while attempting to connect to the '
        'container registry. Please try running resync keys on your workspace and retry."}}'
    )
    assert "unauthorized" in d.facts.signals
    assert d.reply and d.cause == "auth", [(c.id, c.confidence) for c in d.causes]


def test_kube_proxy_is_an_image_not_a_proxy() -> None:
    """``kube-proxy`` (and GitLab's dependency proxy) hold the word proxy without any HTTP proxy on the path."""
    text = (
        "crictl pull sealos.hub:5000/kube-proxy:v1.24.0\nFATA[0000] pulling image: failed to resolve reference "
        '"sealos.hub:5000/kube-proxy:v1.24.0": pulling from host sealos.hub:5000 failed with status code [manifests v1.24.0]: 503 Service Unavailable'
    )
    assert "proxy_mention" not in extract(text).facts.signals
    assert "proxy_mention" in extract(text + "\nwe are behind a corporate proxy").facts.signals


def test_a_registry_products_mail_error_stays_silent() -> None:
    d = diagnose("Send email failed: x509: cannot validate certificate for 10.0.0.9 because it doesn't contain any IP SANs\nemail_server = mail.corp.example")
    assert not d.reply, (d.cause, d.facts.signals)


def test_an_image_transport_reference_is_registry_context() -> None:
    """``docker://`` and ``oras://`` references (skopeo, Singularity, enroot) name a registry image."""
    ex = extract("$ enroot import docker://ubuntu\ncurl: (60) SSL certificate problem: self signed certificate in certificate chain")
    assert ex.registry_context


@pytest.mark.parametrize(
    "text",
    [
        # Windows: the image's OS build does not match the host (container creation, after the pull)
        "docker run mcr.example/nanoserver:1809\nC:\\Program Files\\Docker\\docker.exe: Error response from daemon: CreateComputeSystem abc: "
        "The container operating system does not match the host operating system.",
        # Nomad's own API (4646) over TLS, not a registry
        "Error reading file: Get https://172.28.128.8:4646/v1/client/fs/logs/8095?follow=false: x509: cannot validate certificate "
        "for 172.28.128.8 because it doesn't contain any IP SANs",
    ],
)
def test_orchestrator_apis_and_container_creation_stay_silent(text: str) -> None:
    assert_silent(text)


@pytest.mark.parametrize(
    ("text", "cause", "signal"),
    [
        (
            "denied: User: arn:aws:sts::123456789012:assumed-role/ci/build is not authorized to perform: "
            "ecr:PutImage on resource: arn:aws:ecr:eu-west-1:123456789012:repository/api",
            "auth",
            "access_denied_resource",
        ),
        (
            "ERROR: Failed to retrieve credentials for container registry. Please provide the registry username and password",
            "auth",
            "access_denied_resource",
        ),
        # a person's words for x509's unknown authority, and machine-translated 私有仓库 ("private warehouse")
        ("Pulling from our own registry fails with a 'signed by an unknown authority' error in the UI", "registry-tls-config", "x509_unknown_authority"),
        (
            "The private warehouse uses a self signed certificate; the node can log in, but the platform still returns "
            "x509: Certificate signed by unknown authority.",
            "registry-tls-config",
            "self_hosted_registry",
        ),
    ],
)
def test_unanswered_registry_failures_read_from_cross_validation(text: str, cause: str, signal: str) -> None:
    assert_rule_decides(text, cause, signal)


@pytest.mark.parametrize(
    "text",
    [
        # oc exec through a plain-HTTP proxy: the API server, not a registry
        "$ HTTPS_PROXY=http://proxy.corp:3128 oc exec -it web-1 -- sh\nerror: tls: oversized record received with length 20527",
    ],
)
def test_kubernetes_api_errors_stay_silent(text: str) -> None:
    """(A controller that may not read its pull secret is a cluster-side pull failure, not this.)"""
    assert_silent(text)


@pytest.mark.parametrize(
    ("text", "cause", "signal"),
    [
        # a proxy set for the shell or the system, and the daemon's pull still failing
        ("我已经配置好了系统代理，curl 可以访问外网，但是 docker pull nginx 还是拉不下来", "client-proxy", "proxy_daemon_prose"),
        ("Everything works through a proxy server for curl, but we cannot pull images from ghcr.io at all", "client-proxy", "proxy_daemon_prose"),
    ],
)
def test_a_proxy_the_daemon_does_not_use(text: str, cause: str, signal: str) -> None:
    assert_rule_decides(text, cause, signal)


@pytest.mark.parametrize(
    "text",
    [
        # kubectl through a proxy that wants credentials: the API server's path, not a registry's
        'E0101 10:00:00 memcache.go:265] couldn\'t get current server API group list: Get "https://10.0.0.1:6443/api?timeout=32s": '
        "Proxy Authentication Required",
        # a self-hosted registry product's outgoing mail, even beside the registry's own words
        "Harbor shows: Send email failed: x509: cannot validate certificate for 10.0.0.9 because it doesn't contain any IP SANs "
        "(email_server = mail.corp.example in harbor.cfg)",
    ],
)
def test_another_tools_unambiguous_words_outweigh_the_registry_rules(text: str) -> None:
    assert_silent(text)


@pytest.mark.parametrize(
    ("text", "cause", "signal"),
    [
        # docker's credential helper (credsStore) missing or failing where docker runs
        (
            'Error saving credentials: error storing credentials - err: exec: "docker-credential-pass": '
            "executable file not found in $PATH, out: ``",
            "auth",
            "credential_helper_error",
        ),
        (
            "docker compose pull\n/usr/local/bin/docker-credential-wincred.exe: Invalid argument",
            "auth",
            "credential_helper_error",
        ),
        ("Run docker/login-action@v3\nError: Username and password required", "auth", "unauthorized"),
        # the user says TLS is inspected on the path, beside a certificate error
        (
            "Our security team enabled SSL inspection on the firewall last week; now docker pull quay.io/foo/bar fails "
            "with a self-signed certificate in the chain",
            "tls-interception",
            "interception_prose",
        ),
        (
            "the proxy does MITM on all https traffic and podman pull says x509: certificate signed by unknown authority",
            "tls-interception",
            "interception_prose",
        ),
        # the registry's own CA (a custom or private CA), not an inspecting proxy
        (
            "Our registry uses a custom certificate authority and docker login fails with x509: certificate signed by "
            "unknown authority; adding it to insecure-registries did not help",
            "registry-tls-config",
            "self_hosted_registry",
        ),
    ],
)
def test_credential_helpers_inspection_prose_and_a_registrys_own_ca(text: str, cause: str, signal: str) -> None:
    """Read from batches public-en40 and public-en41 (Windows hosts, CI logs)."""
    assert_rule_decides(text, cause, signal)


@pytest.mark.parametrize(
    "text",
    [
        # an admission webhook's certificate: the API server calling a service, not a registry
        'Error from server (InternalError): failed calling webhook "validate.example.io": failed to call webhook: '
        'Post "https://policy-webhook.system.svc:443/validate?timeout=10s": x509: certificate signed by unknown authority',
        # a Docker authorization plugin refusing an option: the daemon's policy, not a registry
        "docker: Error response from daemon: authorization denied by plugin opa-docker-authz: --privileged=true is not allowed.",
        # Android's and Java's manifests are not image manifests
        "Execution failed for task ':app:processDebugMainManifest'.\n> Manifest merger failed with multiple errors, see logs",
        "$ docker run acme/api:1.4\nno main manifest attribute, in /app/app.jar",
    ],
)
def test_webhooks_authz_plugins_and_other_manifests_stay_silent(text: str) -> None:
    assert_silent(text)


@pytest.mark.parametrize(
    ("text", "cause", "signal"),
    [
        # the cluster's pull secret shown beside pods that cannot pull, with kubectl words around it
        (
            "kubectl create secret docker-registry regcred --docker-server=https://index.docker.io/v1/ ...\n"
            "kubectl get pods shows the deployment cannot pull images from registry.corp.example:5000",
            "aks-pull",
            "pull_secret_prose",
        ),
    ],
)
def test_a_clusters_pull_secret_beside_pods_that_cannot_pull(text: str, cause: str, signal: str) -> None:
    """Read from batch public-en39 (managed Kubernetes pulls)."""
    assert_rule_decides(text, cause, signal)


@pytest.mark.parametrize(
    "text",
    [
        # a server that cannot resolve its own listen address: the machine's name resolution
        "F0101 10:00:00 server.go:99] listen tcp: lookup myhost.local on 1.1.1.1:53: no such host",
        # a pod whose image may never be pulled: nothing was asked of a registry
        'Warning  ErrImageNeverPull  kubelet  Container image "web:dev" is not present with pull policy of Never',
        # yum's mirror: an OS package repository, not an image registry
        "http://mirror.example.org/centos/7/os/x86_64/repodata/repomd.xml: [Errno 14] HTTP Error 404 - Not Found\n"
        "Trying other mirror.",
    ],
)
def test_listen_addresses_never_pull_and_yum_mirrors_stay_silent(text: str) -> None:
    assert_silent(text)


@pytest.mark.parametrize(
    ("text", "cause", "signal"),
    [
        # Google's registry API not enabled for the project: the counterpart of an unregistered provider
        (
            "Error: Error creating Repository: googleapi: Error 403: Artifact Registry API has not been used in project "
            "1234 before or it is disabled. Enable it by visiting the console then retry.",
            "registry-resource-provider",
            "registry_api_disabled",
        ),
        # Terraform failing on a registry resource: the registry's API refused, not another tool's error
        (
            '│ Error: creating Container Registry (Subscription: "s"\n│ Registry Name: "my-reg"): unexpected status 400\n'
            '│   with azurerm_container_registry.acr,\n│   on main.tf line 12, in resource "azurerm_container_registry" "acr":',
            "other-acr",
            "registry_resource_iac",
        ),
        (
            "aws_ecr_repository.app: Destroying...\nError: deleting ECR Repository (app): operation error ECR: DeleteRepository, "
            "RepositoryNotEmptyException: The repository cannot be deleted because it still contains images",
            "other-acr",
            "registry_resource_iac",
        ),
    ],
)
def test_infrastructure_code_failing_on_a_registry_resource(text: str, cause: str, signal: str) -> None:
    """Read from batch public-en37 (registries provisioned by Terraform, Pulumi and controllers)."""
    assert_rule_decides(text, cause, signal)


def test_terraforms_own_failures_stay_silent() -> None:
    """A Terraform error about its state, not about a registry resource, is still another tool's."""
    assert_silent(
        "Error: Error acquiring the state lock\n\nError message: state blob is already locked\n"
        "Terraform acquires a state lock to protect the state from being written by multiple users"
    )


@pytest.mark.parametrize(
    ("text", "cause", "signal"),
    [
        # Windows' connect error in another language's words for a refusal
        (
            'Error response from daemon: Get "https://registry-1.docker.io/v2/": dial tcp 203.0.113.9:443: connectex: '
            "No connexion was established because it was rejected by target machine.",
            "client-firewall",
            "connection_refused",
        ),
    ],
)
def test_a_localised_windows_refusal(text: str, cause: str, signal: str) -> None:
    """Read from batch public-en38 (proxies and container runtimes)."""
    assert_rule_decides(text, cause, signal)


@pytest.mark.parametrize(
    "text",
    [
        # a program the tool runs is missing on this machine
        "FATAL: While making image from oci registry: unable to create new build: while searching for mksquashfs: "
        'exec: "mksquashfs": executable file not found in $PATH',
        # the API server's health endpoint through a proxy: not a registry
        "curl https://cp-1:6443/healthz?timeout=10s\ncurl: (56) Received HTTP code 403 from proxy after CONNECT",
    ],
)
def test_missing_local_programs_and_api_server_health_checks_stay_silent(text: str) -> None:
    assert_silent(text)


def test_a_mirror_serving_another_manifest_than_the_digest_is_the_registrys() -> None:
    """Read from batch public-en44 (air-gapped mirrors): a mirror that re-encoded the manifest."""
    assert_rule_decides(
        "podman pull mirror.corp.example:5000/app/web@sha256:0123abcd\nError: determining manifest MIME type for "
        "docker://mirror.corp.example:5000/app/web@sha256:0123abcd: Manifest does not match provided manifest digest "
        "sha256:0123abcd",
        "other-acr",
        "manifest_invalid",
    )


def test_a_failure_after_the_images_were_pulled_stays_silent() -> None:
    assert_silent(" ✓  Images successfully pulled\n x  Failed to connect to your development container")


@pytest.mark.parametrize(
    ("text", "cause", "signal"),
    [
        # a service that runs images refusing the one it was given (Lambda and the like)
        (
            "Error: creating Lambda Function (api): InvalidParameterValueException: Source image "
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:2.0 is not valid. Provide a valid source image.",
            "other-acr",
            "service_image_rejected",
        ),
        # Terraform deploying a service whose image does not exist: the registry's answer, not Terraform's error
        (
            '│ Error: Error waiting to create Service: resource is in failed state "Ready:False", message: Image '
            "'gcr.io/acme-public/web:2' not found.\n│   with google_cloud_run_service.web,",
            "other-acr",
            "manifest_unknown",
        ),
        # containerd's older words for an image that is not there
        (
            'Failed to pull image "registry.corp.example/team/api:feature-x": rpc error: code = Unknown desc = failed to '
            "resolve image: no available registry endpoint: registry.corp.example/team/api:feature-x not found",
            "other-acr",
            "manifest_unknown",
        ),
        # Jib's words for a registry that serves plain HTTP
        (
            "[ERROR] Build image failed, perhaps you should use a registry that supports HTTPS or set the configuration "
            "parameter 'allowInsecureRegistries'",
            "registry-tls-config",
            "insecure_registry_needed",
        ),
        # a push that worked, then a later request to the registry's API timing out
        (
            "Pushed: ghcr.io/acme/charts/web:1.2.0\nDigest: sha256:7c37b1bf\nSigning artifact...\nError: signing: failed to "
            'upload layer: Post "https://ghcr.io/v2/acme/charts/web/blobs/uploads/": context deadline exceeded',
            "client-firewall",
            "v2_endpoint",
        ),
    ],
)
def test_services_refusing_images_missing_images_and_later_registry_failures(text: str, cause: str, signal: str) -> None:
    """Read from batches public-en42 (serverless and edge), public-en43 (scanners, signers), public-en45 (Q&A pages)."""
    assert_rule_decides(text, cause, signal)


def test_a_grpc_tls_handshake_stays_silent() -> None:
    assert_silent(
        "agent log: transport: authentication handshake failed: x509: certificate relies on legacy Common Name field, "
        "use SANs instead"
    )


@pytest.mark.parametrize(
    ("text", "cause", "signal"),
    [
        # Docker Desktop's enforced sign-in refusing an anonymous pull made through the API
        (
            "Pull failed due to an unauthenticated request. Enforced sign-in is enabled, which requires pulls to be "
            "authenticated. Please run `docker login`, or contact your administrators if this is unexpected.",
            "auth",
            "unauthorized",
        ),
        # Quay's words for a refused pull, wrapped in docker-py's 500
        (
            'docker.errors.APIError: 500 Server Error: Internal Server Error ("b\'{"message":"unauthorized: access to the '
            "requested resource is not authorized\"}'\")",
            "auth",
            "unauthorized",
        ),
    ],
)
def test_sign_in_enforcement_and_quays_refusal_through_a_client_library(text: str, cause: str, signal: str) -> None:
    """Read from batch public-en47 (client libraries: docker-py, the Go API, Chef, Salt, watchtower)."""
    assert_rule_decides(text, cause, signal)


@pytest.mark.parametrize(
    "text",
    [
        "Error response from daemon: client version 1.43 is too new. Maximum supported API version is 1.41",
        "docker.errors.DockerException: Error while fetching server API version: Not supported URL scheme http+docker",
        "Comment: Encountered error pulling web: pull() got an unexpected keyword argument 'client_timeout'",
    ],
)
def test_client_library_failures_before_any_registry_stay_silent(text: str) -> None:
    assert_silent(text)


@pytest.mark.parametrize(
    ("text", "cause", "signal"),
    [
        # the registry given as a URL where a host name is expected: the lookup is of "https"
        (
            "docker run -e REGISTRY_HOST=https://registry.corp.example -p 8080:80 acme/registry-ui\n"
            "Error: getaddrinfo EAI_AGAIN https https:80",
            "registry-not-found",
            "scheme_as_host",
        ),
        (
            'Error response from daemon: Get "https://https/v2/": dial tcp: lookup https on 10.0.0.2:53: no such host',
            "registry-not-found",
            "scheme_as_host",
        ),
    ],
)
def test_a_url_scheme_looked_up_as_a_host_name(text: str, cause: str, signal: str) -> None:
    """Read from batch public-en48 (tools that poll registries)."""
    assert_rule_decides(text, cause, signal)


def test_a_quoted_registry_name_is_an_acr_name_only_in_azures_words() -> None:
    """"our local registry 'harbor'" is not contoso's ACR: no harbor.azurecr.io login server."""
    local = extract(
        "I have a local registry 'harbor' with hostname harbor.corp.local, and the updater logs: Get "
        '"https://harbor.corp.local/v2/": dial tcp: lookup harbor.corp.local on 10.96.0.10:53: no such host'
    )
    assert local.facts.login_server is None and "acr" not in local.derived["registry_class"]
    azure = extract("Access to registry 'contosoreg' was denied. Please try running 'az login' again.")
    assert azure.facts.login_server == "contosoreg.azurecr.io"


@pytest.mark.parametrize(
    ("text", "cause", "signal"),
    [
        # the Engine API's own 500 wraps whatever the pull met (Nomad, Drone, the Go client): the inner error decides
        (
            'failed pulling container: image_ref=registry.corp.example:5000/web:2 error="API error (500): Get '
            '"https://registry.corp.example:5000/v2/": x509: certificate signed by unknown authority"',
            "registry-tls-config",
            "x509_unknown_authority",
        ),
        # ... and so does dockerode's "(HTTP code 500) server error"; GitLab's "access forbidden" is a permission refusal
        (
            "Deploy failed! Error: (HTTP code 500) server error - Get https://registry.gitlab.example/v2/acme/web/manifests/"
            "latest: denied: access forbidden",
            "auth",
            "denied_permission",
        ),
        # the distribution API's error code, spelt as the code
        (
            "translating TaskRun to Pod: error getting image manifest: MANIFEST_UNKNOWN: The named manifest is not known "
            "to the registry.; map[manifest:acme/api]",
            "other-acr",
            "manifest_unknown",
        ),
        # Harbor answers a push into a project that does not exist with "unauthorized: project … not found"
        (
            "docker push harbor.corp.example/payments/api:3\nThe push refers to repository [harbor.corp.example/payments/api]\n"
            "unauthorized: project payments not found: project payments not found",
            "other-acr",
            "registry_project_missing",
        ),
        # Node's socket error when no engine listens (dockerode, balena, testcontainers-node)
        ("Error: connect ENOENT /var/run/docker.sock\n    at PipeConnectWrap.afterConnect [as oncomplete] (net.js:1141:16)", "client-docker-daemon", "docker_daemon_unreachable"),
    ],
)
def test_daemon_api_wrappers_error_codes_and_harbor_projects(text: str, cause: str, signal: str) -> None:
    """Read from batches public-en49..51 (CI platforms, self-hosting platforms, Azure pages)."""
    assert_rule_decides(text, cause, signal)
    assert "server_error_5xx" not in extract(text).facts.signals


@pytest.mark.parametrize(
    "text",
    [
        # a Git host's webhook refused by the CI server
        "<title>Error 400 Provided signature [sha1=00ff] did not match to calculated</title>\n<tr><th>URI:</th><td>/github-webhook/</td></tr>",
        # a PowerShell download inside a build; the pull request's URL is not a pull
        "After https://github.com/acme/images/pull/812 the build fails with this error:\nInvoke-WebRequest : The operation has timed out.",
        # Azure Storage's data-plane role check
        "GET https://acmeexports.blob.core.windows.net/reports?restype=container&comp=list failed: 403 "
        "<Error><Code>AuthorizationPermissionMismatch</Code><Message>This request is not authorized to perform this "
        "operation using this permission.</Message></Error>",
    ],
)
def test_webhooks_powershell_downloads_and_storage_roles_stay_silent(text: str) -> None:
    assert_silent(text)
    signals = extract(text).facts.signals
    assert {"git_error", "archive_download_url", "storage_rbac_mismatch"} & set(signals), signals


def test_a_pull_requests_url_is_not_a_pull() -> None:
    assert "registry_failure_phrase" not in extract("see https://github.com/acme/app/pull/4728 for the error").facts.signals
    assert "registry_failure_phrase" in extract("the pull from our registry fails with an error").facts.signals


def test_helms_failed_fetch_is_not_an_os_package_manager() -> None:
    """apt says "E: Failed to fetch http…"; Helm says "Failed to fetch https://…/index.yaml" of a chart repository."""
    helm = extract(
        'Error: Looks like "https://charts.corp.example/stable" is not a valid chart repository or cannot be reached: '
        "Failed to fetch https://charts.corp.example/stable/index.yaml : 403 Forbidden"
    )
    assert "os_package_error" not in helm.facts.signals and "helm_chart_repo" in helm.facts.signals
    apt = extract("E: Failed to fetch https://packages.corp.example/apt/dists/stable/InRelease  403  Forbidden [IP: 10.0.0.5 443]")
    assert "os_package_error" in apt.facts.signals


@pytest.mark.parametrize(
    ("text", "cause", "signal"),
    [
        # Java's Docker clients (spotify, docker-java) reach the engine on TCP 2375
        (
            "Could not build image: com.spotify.docker.client.exceptions.DockerException: org.apache.http.conn."
            "HttpHostConnectException: Connect to localhost:2375 [localhost/127.0.0.1] failed: Connection refused",
            "client-docker-daemon",
            "docker_daemon_unreachable",
        ),
        # a socket path taken for a host name; Docker Desktop's newer engine pipe
        (
            "Docker API call to '/var/run/docker.sock/v1.24/images/create?fromImage=paketobuildpacks%2Fbuilder' failed "
            'with status code 500 "/var/run/docker.sock: Name or service not known"',
            "client-docker-daemon",
            "docker_daemon_unreachable",
        ),
        ("build-image failed: Illegal char <:> at index 5: npipe:////./pipe/dockerDesktopLinuxEngine", "client-docker-daemon", "docker_daemon_unreachable"),
        # NGINX's resolver inside a pull-through cache cannot reach its DNS server
        (
            '[error] 85#85: *3 registry-1.docker.io could not be resolved (110: Operation timed out), client: 127.0.0.1, '
            'request: "GET /v2/ HTTP/1.1", host: "registry-1.docker.io"',
            "client-dns",
            "dns_lookup_timeout",
        ),
        # a Nexus/Artifactory front end refusing the Docker API's method
        (
            "buildx failed with: failed to solve: unexpected status: 400 HTTP method POST is not supported by this URL",
            "other-acr",
            "registry_method_refused",
        ),
        (
            "docker push nexus.corp.example:8082/team/api:1\nerror parsing HTTP 405 response body: unexpected end of JSON "
            'input: "" (405 Method Not Allowed)',
            "other-acr",
            "registry_method_refused",
        ),
    ],
)
def test_java_daemon_clients_registry_caches_resolvers_and_refused_methods(text: str, cause: str, signal: str) -> None:
    """Read from batches public-en52 (image builders, artifact repositories) and public-ja8."""
    assert_rule_decides(text, cause, signal)


@pytest.mark.parametrize(
    "text",
    [
        'ERROR: failed to build: invalid tag "SuperApp:3378fae": repository name must be lowercase',
        "mvn deploy:deploy-file -Durl=https://nexus.corp.example/repository/releases fails: Return code is: 401, "
        "ReasonPhrase: Unauthorized.",
        "> Could not resolve all artifacts for configuration ':classpath'.\n   > Could not GET "
        "'https://nexus.corp.example/repository/jcenter/org/acme/lib/1.0/lib-1.0.pom'. > PKIX path building failed",
        'kubectl rollout status deployment/web -n web --timeout=120s\nWaiting for deployment "web" rollout to finish: '
        "0 of 1 updated replicas are available...\nerror: timed out waiting for the condition",
    ],
)
def test_image_names_maven_artifacts_and_rollout_waits_stay_silent(text: str) -> None:
    assert_silent(text)
    signals = extract(text).facts.signals
    assert {"invalid_reference", "java_build_error", "kubectl_api_server"} & set(signals), signals


@pytest.mark.parametrize(
    ("text", "cause", "signal"),
    [
        # the machine's clock is behind the certificate's start: the clock, not the registry
        (
            'Get "https://registry-1.docker.io/v2/": tls: failed to verify certificate: x509: certificate has expired or is '
            "not yet valid: current time 2021-01-01T00:00:12Z is before 2024-02-22T00:00:00Z",
            "other-acr",
            "clock_behind",
        ),
        # the MTU named beside a stalled pull
        (
            "docker pull quay.io/acme/api:2 stalls on the large layers and then fails with net/http: TLS handshake "
            "timeout; our VPN interface has an MTU of 1400",
            "client-firewall",
            "mtu_prose",
        ),
        # an inspecting product named in prose beside a registry operation, no certificate error pasted
        (
            "minikube cannot pull from k8s.gcr.io on the corporate laptops because Netskope intercepts SSL to it",
            "tls-interception",
            "interception_prose",
        ),
        # podman's "Failed, retrying in 4s" follows any failed request: here the /v2/ ping, not a layer
        (
            'level=warning msg="Failed, retrying in 4s ... (3/3). Error: pinging container registry quay.corp.example: '
            'Get \\"https://quay.corp.example/v2/\\": net/http: TLS handshake timeout"',
            "client-firewall",
            "tls_handshake_timeout",
        ),
        # Harbor's other wording of a missing project, as the kubelet reports it
        (
            'Failed to pull image "harbor.corp.example/infra/coredns:1.6.1": rpc error: code = Unknown desc = Error response '
            "from daemon: unauthorized: project not found, name: infra: project not found, name: infra",
            "other-acr",
            "registry_project_missing",
        ),
    ],
)
def test_clocks_mtus_inspection_prose_retries_and_harbor_projects(text: str, cause: str, signal: str) -> None:
    """Read from batches public-en53 (the client's network and OS) and public-zh13."""
    assert_rule_decides(text, cause, signal)
    assert "download_failed" not in extract(text).facts.signals


def test_apts_unresolved_mirror_stays_silent() -> None:
    text = "Step 4/9 : RUN apt-get update\nErr http://repo.corp-mirror.example/ubuntu focal InRelease\n  Could not resolve 'repo.corp-mirror.example'"
    assert_silent(text)
    assert "os_package_error" in extract("Could not resolve 'repo.corp-mirror.example'").facts.signals


@pytest.mark.parametrize(
    ("text", "cause", "signal"),
    [
        # a registry saying the repository does not exist (Harbor, a pull-through cache)
        ("docker pull harbor.corp.example/cache/memcached:alpine\nError response from daemon: unknown: repository cache/memcached not found", "other-acr", "manifest_unknown"),
        # Harbor's proxy-cache project is the registry's own feature, not an HTTP proxy on the path
        (
            "docker pull harbor.corp.example/proxy-cache/library/nginx:1.25 fails after we rotated the Docker Hub token; core log: "
            'login to dockerhub error: {"detail":"Incorrect authentication credentials"}',
            "auth",
            "unauthorized",
        ),
        # a TLS-inspecting product named beside pulls that fail, no certificate error pasted
        ("Behind Zscaler our AKS Edge node cannot pull container images from mcr.microsoft.com until we add the root CA", "tls-interception", "interception_ca_seen"),
    ],
)
def test_missing_repositories_proxy_caches_and_inspecting_products(text: str, cause: str, signal: str) -> None:
    """Read from batches public-en54 (pull-through caches and mirrors) and public-en55 (Azure-adjacent platforms)."""
    assert_rule_decides(text, cause, signal)
    if "proxy-cache" in text:
        assert "proxy_mention" not in extract(text).facts.signals


def test_a_here_documents_eof_is_no_connection_closed() -> None:
    """The marker that opens a here-document (``cat <<EOF``) is no connection closed mid-request.

    (Its terminator line is glued to the line before it in the text signals are read from; after a
    word character, as in the real paste this was read from, it is no word of its own either.)
    """
    config = "cat <<EOF >> /etc/containers/registries.conf\n[[registry.mirror]]\n  insecure = true\nEOF"
    assert "eof_error" not in extract(config).facts.signals
    assert "eof_error" not in extract("cat <<'EOF' | sudo tee /etc/docker/daemon.json").facts.signals
    assert "eof_error" in extract('Error response from daemon: Get "https://mirror.corp.example/v2/": EOF').facts.signals


def test_an_expected_result_is_no_successful_pull() -> None:
    """An issue template's "Expected result: Image is successfully pulled." describes a hope."""
    text = (
        "docker pull ghcr.io/acme/tool:latest\nExpected result: Image is successfully pulled.\n"
        "Actual result:\nlatest: Pulling from acme/tool\nmanifest unknown"
    )
    assert "pull_succeeded" not in extract(text).facts.signals
    assert_rule_decides(text, "other-acr", "manifest_unknown")
    assert "pull_succeeded" in extract('Successfully pulled image "ghcr.io/acme/tool:1" in 2.1s').facts.signals


def test_artifact_registrys_permission_names() -> None:
    """Google's permission names read as a refusal, and are no self-hosted registry host."""
    text = (
        "podman pull gcr.io/acme/base-image fails: Unauthenticated requests do not have permission "
        '"artifactregistry.repositories.downloadArtifacts" on resource "projects/acme/locations/us/repositories/gcr.io"'
    )
    signals = extract(text).facts.signals
    assert "no_permission_prose" in signals and "self_hosted_registry_host" not in signals
    assert diagnose(text).cause == "auth"


def test_an_admission_webhook_that_got_a_registrys_401_is_answered() -> None:
    """kubectl's "Error from server" carrying the registry's own token answer is a registry failure."""
    text = (
        'Error from server (BadRequest): error when creating "deploy.yaml": admission webhook "policy.sigstore.dev" denied '
        "the request: validation failed: GET https://contosoreg.azurecr.io/oauth2/token?scope=repository%3Aapp%3Apull&"
        "service=contosoreg.azurecr.io: UNAUTHORIZED: authentication required, visit https://aka.ms/acr/authorization"
    )
    d = diagnose(text)
    assert d.reply and d.cause == "auth", [(c.id, c.confidence) for c in d.causes]
    by_rules = classify(extract(text), learned=None, cite=False)  # the cards alone, not the library's vote
    assert by_rules.cause == "auth", [(c.id, c.score) for c in by_rules.causes]


@pytest.mark.parametrize(
    ("text", "cause", "signal"),
    [
        (  # a 429 said as the registry's answer, without the word toomanyrequests
            "the controller keeps polling https://eu.gcr.io/v2/acme/app/manifests/v3 and the registry is now "
            'returning 429 "Quota Exceeded" for our whole project',
            "other-acr",
            "toomanyrequests",
        ),
        (  # a registry's token service refusing, with no scope in the URL
            "podman login quay.example.org fails: unable to retrieve auth token: GET "
            "https://quay.example.org/token?service=quay.example.org: DENIED: denied",
            "auth",
            "registry_token_request",
        ),
        (  # an IAM-style refusal naming the action the user may not take
            "docker push fra.ocir.io/acme/team/api:7\ndenied: User ocid1.user.oc1..abc cannot PushImageLayer on "
            "resource acme/team/api",
            "auth",
            "denied_permission",
        ),
        (  # a registry switched to read-only (maintenance or quota)
            "docker push harbor.corp.example/web/app:2.0\ndenied: The registry is in read-only mode, any "
            "modification is prohibited",
            "other-acr",
            "registry_read_only",
        ),
        (  # Azure Batch could not pull the pool's images
            "az batch pool create --json-file pool.json\nThe specified pool failed to allocate: One or more container "
            "images specified are invalid (contosoreg.azurecr.io/tools/aligner:3)",
            "service-integration",
            "batch_pool_images_invalid",
        ),
        (  # a corrupt auth file: the client cannot read its registry login
            "skopeo inspect docker://ghcr.io/acme/tool:1 fails: error getting username and password: error reading "
            'JSON file "/run/user/1000/containers/auth.json": unexpected end of JSON input',
            "auth",
            "credential_helper_error",
        ),
        (  # the credentials store is not configured
            "oras login contosoreg.azurecr.io -u bot\nError: could not get the credentials store: credentials store "
            "config was not set up",
            "auth",
            "credential_helper_error",
        ),
        (  # Docker's CLI pointed at a context that no longer exists
            "docker --context desktop-linux pull nginx:1.27\nunable to resolve docker endpoint: context "
            '"desktop-linux" does not exist',
            "client-docker-daemon",
            "docker_daemon_unreachable",
        ),
        (  # the node's container runtime socket is gone
            'cannot pull image: rpc error: code = Unavailable desc = connection error: desc = "transport: Error while '
            'dialing dial unix /run/containerd/containerd.sock: connect: no such file or directory"',
            "client-docker-daemon",
            "docker_daemon_unreachable",
        ),
        (  # the reporter says their network blocks the registry
            "our CI runners sit behind restricted egress and cannot pull mcr.microsoft.com/dotnet/sdk:8.0 any more; "
            "the company blocks access to the registry since Monday",
            "client-firewall",
            "egress_blocked_prose",
        ),
        (  # Chinese: unauthorised access to the registry
            "执行 pack builder create 时报错: 无法获取 run-image 的清单, 未授权访问 contosoreg.azurecr.io 仓库",
            "auth",
            "unauthorized",
        ),
    ],
)
def test_quota_answers_token_services_read_only_registries_batch_pools_and_credential_stores(
    text: str, cause: str, signal: str
) -> None:
    assert_rule_decides(text, cause, signal)


@pytest.mark.parametrize(
    ("text", "signal"),
    [
        (  # a platform router's report of the running app
            'at=error code=H10 desc="App crashed" method=GET path="/" host=shop-demo.herokuapp.com status=503 bytes=',
            "app_runtime_error",
        ),
        (  # a serverless runtime failing to start the handler
            '{"errorMessage": "Error: fork/exec /var/task/bootstrap: exec format error", "errorType": '
            '"Runtime.ExitError"}\nafter I changed the image entrypoint',
            "app_runtime_error",
        ),
        (  # GitHub's API throttling a workflow engine
            "Pulling acme/rnaseq-pipeline ...\nAPI rate limit exceeded -- Provide your GitHub user name and password "
            "to get a higher rate limit",
            "github_api_rate_limit",
        ),
        (  # a missing local compose file after a pull command
            "docker-compose pull\nERROR: .FileNotFoundError: [Errno 2] No such file or directory: "
            "'/srv/app/docker-compose.override.yml'",
            "local_file_missing",
        ),
        (  # gRPC to a cloud control plane over TCP
            "warning unable to get preferred agent image: rpc error: code = Unavailable desc = connection error: desc = "
            '"transport: Error while dialing dial tcp 198.51.100.20:443: connect: connection refused"',
            "grpc_service_dial",
        ),
        (  # a container the engine no longer has, after a pull that worked
            "Image ghcr.io/acme/web:1 pulled\nCreating container web...\nError response from daemon: No such "
            "container: web-old",
            "daemon_no_such_container",
        ),
    ],
)
def test_platform_runtime_errors_github_throttling_local_files_and_grpc_services_stay_silent(
    text: str, signal: str
) -> None:
    assert signal in extract(text).facts.signals
    assert_silent(text)


def test_a_missing_container_after_a_failed_pull_keeps_the_pulls_error() -> None:
    """The daemon's "No such container" is its own answer; the registry failure before it still decides."""
    text = (
        'docker pull acme/edge\nError response from daemon: Get "https://registry-1.docker.io/v2/": read tcp '
        "192.0.2.5:47730->198.51.100.9:443: read: connection reset by peer\nError: No such container: edge"
    )
    d = diagnose(text)
    assert "registry_error_line" in d.facts.signals
    assert d.reply and d.cause == "client-firewall", [(c.id, c.confidence) for c in d.causes]


def test_a_local_images_404_is_not_the_registrys_manifest_answer() -> None:
    """docker-py's 404 for the local engine's image inspect says nothing of what the registry answered."""
    text = (
        "Failed to install add-on: Can't install acme/addon-web:1.4: 404 Client Error for "
        'http+docker://localhost/v1.45/images/acme/addon-web:1.4/json: Not Found ("No such image: acme/addon-web:1.4")'
    )
    signals = extract(text).facts.signals
    assert "docker_local_image_missing" in signals and "manifest_unknown" not in signals
    registry_404 = "docker pull acme/addon-web:1.4\nError response from daemon: manifest for acme/addon-web:1.4 not found"
    assert "manifest_unknown" in extract(registry_404).facts.signals


def test_could_not_resolve_is_dns_only_with_a_host() -> None:
    """"Could not resolve Feature/dependencies" is no name lookup; "Could not resolve host: X" is."""
    assert "dns_temporary_failure" not in extract("Error: Could not resolve Feature 'ghcr.io/acme/features/cli:1'").facts.signals
    assert "dns_temporary_failure" in extract("curl: (6) Could not resolve host: contosoreg.azurecr.io").facts.signals


def test_pulling_data_is_not_an_image_pull() -> None:
    text = "When I try pulling data for device updates I keep getting the following error: UnknownHostException"
    assert "registry_failure_phrase" not in extract(text).facts.signals
    assert "registry_failure_phrase" in extract("pulling the image failed with an error").facts.signals


def test_acrpull_words_without_a_cluster_do_not_make_it_a_cluster_problem() -> None:
    """"AcrPull" with no cluster in the paste: the kubelet rule's full weight needs a cluster."""
    text = (
        "docker pull contosoreg.azurecr.io/tools/runner:2 from the batch job fails with 401 Unauthorized; the job's "
        "managed identity has no AcrPull role assignment on the registry"
    )
    d = diagnose(text)
    assert d.cause != "aks-pull", [(c.id, c.confidence) for c in d.causes]
    cluster = text + "\nthe pods on the AKS node pool show ErrImagePull"
    assert diagnose(cluster).cause == "aks-pull"


def test_the_snap_store_is_a_package_store_even_through_a_proxy() -> None:
    """snap install/refresh behind a broken proxy is a proxy problem of a package store, not of a registry."""
    text = (
        'sudo snap refresh microk8s\nerror: cannot refresh "microk8s": Post "https://api.snapcraft.io/v2/snaps/refresh": '
        "proxyconnect tcp: tls: first record does not look like a TLS handshake"
    )
    assert "snap_store" in extract(text).facts.signals
    assert_silent(text)


def test_no_proxy_named_beside_the_registry_points_at_the_proxy() -> None:
    text = (
        "docker push registry.corp.example:5000/team/api:3 keeps failing: the daemon sends the push to our "
        "proxy; NO_PROXY in http-proxy.conf lists the registry but seems to be ignored"
    )
    signals = extract(text).facts.signals
    assert "no_proxy_prose" in signals
    d = diagnose(text)
    assert d.reply and d.cause == "client-proxy", [(c.id, c.confidence) for c in d.causes]


@pytest.mark.parametrize(
    ("text", "signal"),
    [
        (  # kubeadm waiting for its own control plane
            "[wait-control-plane] Waiting for the kubelet to boot up the control plane as static Pods from directory "
            '"/etc/kubernetes/manifests". This can take up to 4m0s\n[kubelet-check] Initial timeout of 40s passed.',
            "kubectl_api_server",
        ),
        (  # a volume the engine cannot create
            "Error response from daemon: error while creating mount source path '/srv/data/app': mkdir /srv/data: "
            "read-only file system",
            "docker_local_error",
        ),
        (  # another service's gRPC TLS with an expired certificate
            "the etcd member restarts; the containerd log shows: grpc: addrConn.createTransport failed: connection "
            'error: desc = "transport: authentication handshake failed: x509: certificate has expired or is not yet '
            'valid: current time 2025-03-01T10:00:00Z is after 2025-02-20T09:00:00Z"',
            "grpc_tls_error",
        ),
        (  # ECS names secrets and registry auth in one message: here it was the secrets
            "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: "
            "unable to retrieve secrets from ssm: service call has been retried 3 time(s): AccessDeniedException: "
            "not authorized to perform ssm:GetParameters",
            "ecs_secret_fetch_failed",
        ),
        (  # Docker Desktop refusing a bind mount
            "docker: Error response from daemon: Mounts denied: The path /opt/data is not shared from the host and is not known to Docker.",
            "docker_local_error",
        ),
        ("network proxy-net declared as external, but could not be found", "docker_local_error"),
        (  # metrics scraping a kubelet: its own API port, its own certificate
            "E1203 08:14:02.118 scraper.go:140] unable to fetch metrics from node worker-2: Get "
            '"https://10.20.3.14:10250/metrics/resource": x509: cannot validate certificate for 10.20.3.14 because it doesn\'t contain any IP SANs',
            "kubelet_api_port",
        ),
        (  # Gradle fetching a POM through a TLS-inspecting network: a package repository, not a registry
            "> Could not resolve com.acme:platform-bom:3.1.\n   > Could not get resource 'https://nexus.acme.example/repository/maven/com/acme/platform-bom/3.1/platform-bom-3.1.pom'.\n"
            "      > PKIX path building failed: unable to find valid certification path to requested target",
            "java_build_error",
        ),
    ],
)
def test_kubeadm_waits_volume_mounts_and_grpc_certificates_stay_silent(text: str, signal: str) -> None:
    assert signal in extract(text).facts.signals
    assert_silent(text)


def test_a_chart_repositorys_certificate_is_not_a_registrys() -> None:
    """A classic Helm chart repository (index.yaml) on a registry host: its TLS failure is the chart
    repository's, so no registry-tls-config rule speaks (22 of 22 such library pastes are unrelated)."""
    text = (
        "$ helm repo add --ca-file ca.crt corp https://harbor.corp.example/chartrepo/platform\n"
        'Error: looks like "https://harbor.corp.example/chartrepo/platform" is not a valid chart repository or cannot '
        'be reached: Get "https://harbor.corp.example/chartrepo/platform/index.yaml": x509: certificate is valid for '
        "ingress.local, not harbor.corp.example"
    )
    ex = extract(text)
    assert "helm_chart_repo" in ex.facts.signals and "default_server_certificate" in ex.facts.signals
    rules_only = classify(ex, learned=None)
    assert all(not c.reasons for c in rules_only.causes if c.id == "registry-tls-config"), rules_only.causes
    assert_silent(text)


def test_ecs_registry_auth_failures_are_still_answered() -> None:
    """The same ECS message naming the registry's credentials is a registry failure."""
    text = (
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: "
        "unable to retrieve ecr registry auth: service call has been retried 3 time(s): RequestError: send request "
        'failed caused by: Post "https://api.ecr.eu-west-1.amazonaws.com/": dial tcp 52.1.2.3:443: i/o timeout'
    )
    d = diagnose(text)
    assert d.reply and d.cause != "unrelated", [(c.id, c.confidence) for c in d.causes]


def test_buildkite_is_not_buildkit() -> None:
    text = "build https://buildkite.com/acme/api/builds/812 failed: dial tcp 172.18.0.6:80: i/o timeout"
    assert "tool_buildkit" not in extract(text).facts.signals
    assert "tool_buildkit" in extract("ERROR: failed to solve: moby/buildkit: failed to resolve source").facts.signals


def test_an_az_acr_command_refused_with_an_error_code_is_registry_side() -> None:
    text = (
        "az acr cache create -r contosoreg -n hub-cache --source-repo docker.io/library/nginx -t nginx\n"
        "(CacheRuleQuotaExceeded) The registry has reached the maximum number of cache rules."
    )
    assert "az_error_code" in extract(text).facts.signals
    assert_rule_decides(text, "other-acr", "az_error_code")
    forbidden = (
        "az acr update -n contosoreg --public-network-enabled false\n(AuthorizationFailed) The client 'ops@contoso.com' "
        "does not have authorization to perform action 'Microsoft.ContainerRegistry/registries/write'"
    )
    assert diagnose(forbidden).cause != "other-acr"


def test_a_public_registrys_layer_host_timing_out_is_the_data_endpoint() -> None:
    """The registry's API answered; its layer CDN or bucket timed out: the path to the layer host blocks."""
    text = (
        "docker pull registry.k8s.io/kube-proxy:v1.30.2\nv1.30.2: Pulling from kube-proxy\nerror pulling image "
        'configuration: download failed after attempts=6: Get "https://prod-registry-k8s-io-eu-west-1.s3.dualstack.'
        'eu-west-1.amazonaws.com/containers/images/sha256:5a9e": dial tcp 198.51.100.30:443: i/o timeout'
    )
    assert "registry_layer_cdn" in extract(text).facts.signals
    assert_rule_decides(text, "client-firewall-data-endpoint", "registry_layer_cdn")
    expired = text.replace("dial tcp 198.51.100.30:443: i/o timeout", "x509: certificate has expired or is not yet valid")
    by_rules = classify(extract(expired), learned=None, cite=False)
    assert by_rules.cause != "client-firewall-data-endpoint", [(c.id, c.score) for c in by_rules.causes]


def test_a_registry_operation_that_hangs_is_a_registry_failure() -> None:
    signals = extract("docker login registry.gitlab.example.com just hangs since I joined the VPN").facts.signals
    assert "registry_failure_phrase" in signals
    assert "registry_failure_phrase" not in extract("the web UI hangs when I open the settings page").facts.signals


def test_a_pattern_ending_at_a_line_end_matches_whatever_the_next_line_starts_with() -> None:
    """Joining lines (for terminal-wrapped phrases) glues a line's last word to the next line's first
    ("…: EOF" + "这个错误" reads "eof这个错误"); a pattern that fails there is tried on the lines too."""
    for after in ("这个错误表示 Docker 尝试使用 HTTPS 连接", "This error means the registry closed the connection"):
        text = f'failed to do request: Head "https://registry.corp.example:5000/v2/team/app/blobs/sha256:0a": EOF\n{after}'
        assert "eof_error" in extract(text).facts.signals, after
    heredoc = "cat <<EOF > /etc/containers/registries.conf\n[[registry]]\nlocation = \"quay.io\"\nEOF\nsudo systemctl restart crio"
    assert "eof_error" not in extract(heredoc).facts.signals  # a line that is only EOF closes a here-document


@pytest.mark.parametrize(
    ("text", "signal"),
    [
        # NuGet / Azure Artifacts feeds and the PowerShell Gallery are package feeds, even inside an image build
        (
            "docker build -t contosoreg.azurecr.io/api:7 . fails at the restore step:\n => ERROR [build 4/7] RUN dotnet "
            "restore\n/src/NuGet.targets(132,5): error : Unable to load the service index for source "
            "https://pkgs.dev.azure.com/contoso/_packaging/shared/nuget/v3/index.json.\n/src/NuGet.targets(132,5): "
            "error :   Response status code does not indicate success: 401 (Unauthorized).",
            "nuget_feed_error",
        ),
        (
            "PS> Install-Module -Name Az -Scope CurrentUser\nWARNING: Unable to resolve package source "
            "'https://www.powershellgallery.com/api/v2/'.\nPackageManagement\\Install-Package : No match was found for "
            "the specified search criteria and module name 'Az'.",
            "nuget_feed_error",
        ),
        # the kubelet listing nodes or pods talks to the API server, not to a registry
        (
            "worker node never joins:\nE0312 09:14:02.118 1287 kubelet.go:386] Failed to list *api.Node: Get "
            "https://k8s-master.corp.example:443/api/v1/nodes?fieldSelector=metadata.name%3Dnode-3: x509: "
            "certificate signed by unknown authority",
            "kubectl_api_server",
        ),
        # oc login is the OpenShift API server's login, not a registry's
        (
            "[root@bastion ~]# oc login -u admin\nerror: x509: certificate signed by unknown authority - verify you "
            "have provided the correct host and port and that the server is currently running.",
            "kubectl_api_server",
        ),
    ],
)
def test_package_feeds_and_the_api_server_from_the_windows_and_pipeline_batches_stay_silent(text: str, signal: str) -> None:
    assert signal in extract(text).facts.signals
    assert_silent(text)


def test_chinese_words_for_throttling_are_throttling() -> None:
    """限流 / 请求过多 / 速率限制 are Chinese for what レート制限 and "rate limit" say."""
    text = "拉取镜像的时候一直 timeout，重试也不行，是不是被限流了"
    assert "toomanyrequests" in extract(text).facts.signals
    d = diagnose(text)
    assert d.reply and d.cause == "other-acr", [(c.id, c.confidence) for c in d.causes]
    assert_silent("pip 安装的时候 PyPI 镜像一直 timeout，好像被限流了")


def test_a_bare_denied_after_the_requests_url_is_the_registrys_refusal() -> None:
    """GHCR answers a manifest request for a missing or private package with a bare "denied" after the URL."""
    text = 'docker: Error response from daemon: Head "https://ghcr.io/v2/acme/tool/manifests/2.1": denied'
    assert "bare_denied" in extract(text).facts.signals
    by_rules = classify(extract(text), learned=None, cite=False)
    assert {c.id for c in by_rules.causes[:2]} == {"auth", "other-acr"}, [(c.id, c.score) for c in by_rules.causes]
    longer = 'Error response from daemon: Head "https://ghcr.io/v2/acme/tool/manifests/2.1": denied: requested access to the resource is denied'
    assert "bare_denied" not in extract(longer).facts.signals


def test_other_package_managers_registries_stay_silent() -> None:
    """Hex, Composer, the Bazel Central Registry and tool plugin stores call their package index a registry."""
    text = (
        "$ mix deps.get\nFailed to fetch record for plug_cowboy from registry (using cache instead)\n:timeout\n"
        "** (Mix) No package with name plug_cowboy (from: mix.exs) in registry"
    )
    assert "language_package_manager" in extract(text).facts.signals
    assert_silent(text)
    assert_silent(
        "sudo grafana-cli plugins install grafana-piechart-panel\nError: Failed to send request: Get "
        '"https://grafana.com/api/plugins/repo/grafana-piechart-panel": dial tcp 34.120.177.193:443: i/o timeout'
    )


@pytest.mark.parametrize(
    ("text", "signal"),
    [
        # an ACME client ordering a certificate: its DNS-01 timeouts are the challenge's, not a registry's
        (
            'time="2024-05-02T08:11:40Z" level=error msg="Unable to obtain ACME certificate for domains '
            '\\"shop.example.net\\"" providerName=le.acme error="unable to generate a certificate for the domains '
            "[shop.example.net]: error: one or more domains had a problem:\\n[shop.example.net] propagation: "
            'time limit exceeded: last error: read udp 10.0.3.4:40112->1.1.1.1:53: i/o timeout"',
            "acme_certificate",
        ),
        # Prometheus scraping a target: its 401 is the target's, not a registry's
        (
            "targets page shows kubernetes-nodes DOWN with: server returned HTTP status 401 Unauthorized, and the "
            "cadvisor job says Get https://10.1.4.9:10250/metrics/cadvisor: context deadline exceeded",
            "metrics_scrape",
        ),
        # kubectl applying manifests before their CRDs: the API server does not know the kind
        (
            "$ kubectl create -f deploy/\nerror: unable to recognize \"deploy/monitor.yaml\": no matches for kind "
            '"PodMonitor" in version "monitoring.coreos.com/v1"',
            "kubectl_api_server",
        ),
    ],
)
def test_certificate_orders_metrics_scrapes_and_unknown_kinds_stay_silent(text: str, signal: str) -> None:
    assert signal in extract(text).facts.signals
    assert_silent(text)


def test_a_registry_pull_next_to_a_certificate_or_scrape_word_is_still_answered() -> None:
    """The words of cert-manager or Prometheus do not silence a failing image pull."""
    for text in (
        "cert-manager pods never start: Failed to pull image \"quay.io/jetstack/cert-manager-controller:v1.14.9\": "
        "rpc error: code = NotFound desc = failed to pull and unpack image: not found; http-01 solver never ran",
        "prometheus scrape failed pods: Back-off pulling image \"myreg.azurecr.io/exporter:2\": Get "
        '"https://myreg.azurecr.io/v2/": dial tcp 20.49.102.151:443: i/o timeout',
    ):
        d = diagnose(text)
        assert d.reply and d.cause != "unrelated", [(c.id, c.confidence) for c in d.causes]


@pytest.mark.parametrize(
    ("text", "signal"),
    [
        # the command line itself was rejected: nothing reached a registry
        (
            "$ az acr import --name contosoreg --source docker.io/library/redis:7 --force-tag\n"
            "az: error: unrecognized arguments: --force-tag",
            "cli_usage_error",
        ),
        # Git Bash rewrote the resource id into a Windows path before az sent it
        (
            "ERROR: (InvalidSchema) No connection adapters were found for 'C:/Program Files/Git/subscriptions/"
            "0000/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/contosoreg/providers/"
            "Microsoft.Authorization/roleAssignments'",
            "cli_usage_error",
        ),
        # Azure SQL's firewall, in words close to ACR's "client with IP ... is not allowed access"
        (
            "Login failed: Cannot open server 'orders-sql' requested by the login. Client with IP address "
            "'198.51.100.23' is not allowed to access the server.",
            "sql_firewall",
        ),
    ],
)
def test_cli_usage_errors_and_other_services_firewalls_stay_silent(text: str, signal: str) -> None:
    assert signal in extract(text).facts.signals
    assert_silent(text)


def test_acrs_own_ip_refusal_is_still_answered_beside_a_sql_firewall_word() -> None:
    text = (
        "db works now (the 'cannot open server' error is gone) but the push fails: denied: client with IP "
        "'198.51.100.23' is not allowed access. Refer https://aka.ms/acr/firewall to grant access."
    )
    d = diagnose(text)
    assert d.reply and d.cause == "registry-public-access", [(c.id, c.confidence) for c in d.causes]


def test_a_client_that_cannot_read_oci_manifests_is_registry_side() -> None:
    """A client asking only for Docker media types gets 'OCI index found, but Accept header does not
    support OCI indexes': upgrade the client or publish a Docker manifest."""
    text = (
        "flux image automation stopped on the new tags: manifest unknown: OCI index found, but accept header "
        "does not support OCI indexes (contosoreg.azurecr.io/web:2.4)"
    )
    assert "oci_manifest_unsupported" in extract(text).facts.signals
    by_rules = classify(extract(text), learned=None, cite=False)
    assert by_rules.cause == "other-acr", [(c.id, c.score) for c in by_rules.causes]


def test_az_acr_login_without_a_docker_binary_is_the_docker_client() -> None:
    text = "$ az acr login -n contosoreg\nPlease verify if docker is installed."
    d = diagnose(text)
    assert d.reply and d.cause == "client-docker-daemon", [(c.id, c.confidence) for c in d.causes]


@pytest.mark.parametrize(
    ("text", "signal"),
    [
        # Kafka's schema registry refusing a client: a 401, but not a container registry's
        (
            "producer crashed on start: org.apache.kafka.common.errors.SerializationException: Error registering "
            "Avro schema; io.confluent.kafka.schemaregistry.client.rest.exceptions.RestClientException: "
            "Unauthorized; error code: 401 (schema registry key rotated yesterday)",
            "other_registry_kind",
        ),
        # a Dubbo provider registering with its service registry
        (
            "java.lang.IllegalStateException: Failed to register dubbo://10.2.0.8:20880/com.acme.OrderService?"
            "application=orders to registry 10.2.0.9:8848, cause: connection refused",
            "other_registry_kind",
        ),
        # the Windows Registry
        (
            "Set-ItemProperty : Requested registry access is not allowed.\nAt line:1 char:1 + Set-ItemProperty "
            "-Path HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies -Name X -Value 1 (access denied)",
            "other_registry_kind",
        ),
        # .NET writing the Windows Registry without the rights to
        (
            "Unhandled exception: System.UnauthorizedAccessException: Attempted to perform an unauthorized operation.\n"
            "   at Microsoft.Win32.RegistryKey.CreateSubKey(String subkey)\n   at Setup.Installer.RegisterAutostart()",
            "other_registry_kind",
        ),
        # a VM image in an Azure Compute Gallery, not a container image
        (
            "==> azure-arm: ERROR: the Shared Gallery Image to which to publish the managed image version to "
            "does not exist in the resource group images-rg",
            "vm_image",
        ),
        # Android's repo tool and its manifest repository
        (
            "fatal: cannot obtain manifest https://android.example.org/platform/manifest.git\n"
            "Repo command failed: UpdateManifestError",
            "other_manifest",
        ),
    ],
)
def test_other_kinds_of_registry_image_and_manifest_stay_silent(text: str, signal: str) -> None:
    assert signal in extract(text).facts.signals
    assert_silent(text)


def test_a_schema_registry_image_that_cannot_be_pulled_is_still_answered() -> None:
    text = (
        'Warning  Failed  kubelet  Failed to pull image "confluentinc/cp-schema-registry:7.9.9": rpc error: '
        "code = NotFound desc = failed to pull and unpack image: not found"
    )
    d = diagnose(text)
    assert d.reply and d.cause == "other-acr", [(c.id, c.confidence) for c in d.causes]


def test_a_compute_quota_stops_a_deployment_not_the_registry() -> None:
    text = (
        "Deploying to Azure Container Instances failed.\nError type: Unauthorized\nError Message: This region has "
        "quota of 0 instances for your subscription. Try selecting a different region or SKU."
    )
    assert "compute_quota" in extract(text).facts.signals
    assert_silent(text)


def test_a_windows_image_for_a_linux_container_group_is_a_platform_mismatch() -> None:
    text = (
        'Code="ImageOsTypeNotMatchContainerGroup" Message="The container image '
        "'mcr.microsoft.com/dotnet/framework/aspnet:4.8' doesn't support specified OS 'Linux' for container group 'web'.\""
    )
    assert "platform_mismatch" in extract(text).facts.signals
    d = diagnose(text)
    assert d.reply and d.cause == "other-acr", [(c.id, c.confidence) for c in d.causes]


def test_a_pull_failure_told_with_a_proxy_and_no_other_error_names_the_proxy() -> None:
    """In words only: the build pod cannot pull its base image, and the site is behind a proxy."""
    text = (
        "our builds run behind the corporate proxy; the executor pod never gets the proxy env and "
        "the base image pull fails every time"
    )
    by_rules = classify(extract(text), learned=None, cite=False)
    assert by_rules.reply and by_rules.cause == "client-proxy", [(c.id, c.score) for c in by_rules.causes]
    told = "described together with a proxy"
    assert any(told in e.detail for e in by_rules.evidence)
    # only a fallback: with a concrete error in the paste, that error's rules speak instead
    text_401 = text + "\nError response from daemon: Get https://contosoreg.azurecr.io/v2/: unauthorized: authentication required"
    assert not any(told in e.detail for e in classify(extract(text_401), learned=None, cite=False).evidence)


def test_a_service_refusing_a_windows_version_is_a_platform_mismatch_not_a_restricted_registry() -> None:
    """ACI's and App Service's own words for a Windows base image they cannot run: the image's platform,
    not a registry that the service cannot reach (which 'ACI and an error' would otherwise suggest)."""
    for text in (
        "az container create failed: (UnsupportedWindowsVersion) Unsupported windows image version. "
        "Supported versions are 'Windows Server 2019 - After 2B'",
        "Cannot run the specified image as a Windows Containers Web App. Platform of the specified image: windows, "
        "Version: 10.0.20348.1;",
    ):
        assert "platform_mismatch" in extract(text).facts.signals, text
        d = classify(extract(text), learned=None, cite=False)
        assert d.reply and d.cause == "other-acr", [(c.id, c.score) for c in d.causes]


def test_aci_refusing_the_container_groups_registry_password_is_a_credential() -> None:
    text = (
        "Deployment failed. Code=\"InvalidImageRegistryPassword\" Message=\"The password in the "
        "'imageRegistryCredentials' of container group 'jobs' cannot be empty.\" (container instances, contosoreg.azurecr.io)"
    )
    d = classify(extract(text), learned=None, cite=False)
    assert d.reply and d.cause == "auth", [(c.id, c.score) for c in d.causes]
    assert "--registry-login-server contosoreg.azurecr.io" in (d.fix[0].command or ""), [s.command for s in d.fix]
    # the password's message is not the identity's: no "names a registry identity it does not have"
    assert not any("identity" in e.detail for e in d.evidence), [e.detail for e in d.evidence]


def test_a_proxy_name_that_does_not_resolve_is_the_proxy_not_a_missing_registry() -> None:
    """'proxyconnect tcp: dial tcp: lookup X' names the proxy: even when X reads 'http' (a proxy URL cut at an
    unescaped @ in its password) the registry's own name was never looked up."""
    text = (
        'Error: pinging container registry harbor.corp.example: Get "https://harbor.corp.example/v2/": '
        "proxyconnect tcp: dial tcp: lookup http on 10.1.0.2:53: no such host"
    )
    d = classify(extract(text), learned=None, cite=False)
    assert d.reply and d.cause == "client-proxy", [(c.id, c.score) for c in d.causes]
    assert any("proxy's own" in e.detail for e in d.evidence), [e.detail for e in d.evidence]
    # nothing says the registry's name is missing: that name was never looked up
    assert not any(e.data.get("cause") in ("registry-not-found", "client-dns") for e in d.evidence), [
        e.detail for e in d.evidence
    ]
    assert d.facts.proxy != "http"  # the scheme left by a cut proxy URL is not the proxy's host
    assert d.fix[0].text.startswith("The proxy's own host name did not resolve on 10.1.0.2"), d.fix[0].text
    named = classify(
        extract('Get "https://ghcr.io/v2/": proxyconnect tcp: dial tcp: lookup proxy.corp.example: no such host'),
        learned=None,
        cite=False,
    )
    assert named.cause == "client-proxy" and named.facts.proxy == "proxy.corp.example"
    assert not any(e.data.get("cause") == "client-dns" for e in named.evidence), [e.detail for e in named.evidence]
    assert "percent-encoded" in named.fix[0].text


def test_a_locked_or_immutable_tag_is_the_registrys_own_setting() -> None:
    for text, command_part in (
        ("docker push contosoreg.azurecr.io/api:2.1\nunknown: The operation is disallowed on this registry, repository or image.",
         "--query changeableAttributes"),
        ("ERROR: failed to push 123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:2.1: tag invalid: The image tag '2.1' "
         "already exists in the 'api' repository and cannot be overwritten because the repository is immutable.", None),
    ):
        d = diagnose(text)
        assert d.reply and d.cause == "other-acr", [(c.id, c.confidence) for c in d.causes]
        assert "new tag" in d.fix[0].text, [s.text for s in d.fix]
        if command_part:
            assert command_part in (d.fix[0].command or "")


def test_a_scripts_own_urlopen_failure_stays_silent_but_a_pull_beside_it_is_answered() -> None:
    text = (
        "docker run --rm -v $(pwd):/app -w /app python:3.12 python fetch.py\n"
        "<urlopen error [Errno -3] Temporary failure in name resolution>"
    )
    assert "script_http_error" in extract(text).facts.signals
    assert_silent(text)
    pulled = (
        "<urlopen error [Errno -3] Temporary failure in name resolution>\n"
        'Error response from daemon: Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io: '
        "Temporary failure in name resolution"
    )
    d = classify(extract(pulled), learned=None, cite=False)
    assert d.reply and d.cause == "client-dns", [(c.id, c.score) for c in d.causes]


def test_a_login_endpoint_answering_5xx_is_the_registry_not_the_credentials() -> None:
    """The CLI says 'login failed', but the registry answered 502: a fault at the registry or its gateway."""
    text = (
        "$ docker login registry.acme.example\nError response from daemon: login attempt to "
        "https://registry.acme.example/v2/ failed with status: 502 Bad Gateway\nlogin failed."
    )
    assert "login_attempt_5xx" in extract(text).facts.signals
    d = classify(extract(text), learned=None, cite=False)
    assert d.reply and d.cause == "other-acr", [(c.id, c.score) for c in d.causes]


def test_a_registry_returning_5xx_in_words_and_a_retyped_io_timeout_are_answered() -> None:
    told = classify(extract("quay.io has been returning 503s all morning"), learned=None, cite=False)
    assert told.reply and told.cause == "other-acr", [(c.id, c.score) for c in told.causes]
    retyped = 'crictl pull fails: rpc error: Get "https://ghcr.io/v2/": dial tcp i/o time out'
    assert "io_timeout" in extract(retyped).facts.signals
    d = classify(extract(retyped), learned=None, cite=False)
    assert d.reply and d.cause == "client-firewall", [(c.id, c.score) for c in d.causes]


def test_authentication_is_required_is_a_credential_refusal() -> None:
    text = "jf docker push to our Artifactory registry fails: unknown: Authentication is required"
    assert "unauthorized" in extract(text).facts.signals
    d = classify(extract(text), learned=None, cite=False)
    assert d.reply and d.cause == "auth", [(c.id, c.score) for c in d.causes]


def test_a_registry_refusing_a_pushed_manifest_is_registry_side() -> None:
    """400 on a manifest PUT, or 'Unsupported manifest type': the registry does not store that manifest kind."""
    for text in (
        "ERROR: failed to solve: error writing manifest blob: failed commit on ref \"sha256:9f2c\": unexpected status: "
        "400 Bad Request (buildx --cache-to type=registry,ref=contosoreg.azurecr.io/app:buildcache)",
        'PUT https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/app/manifests/cache: {"errors":[{"code":"UNSUPPORTED",'
        '"message":"Unsupported manifest type: application/vnd.docker.distribution.manifest.list.v2+json"}]}',
    ):
        assert "registry_refused_manifest" in extract(text).facts.signals, text
        d = classify(extract(text), learned=None, cite=False)
        assert d.reply and d.cause == "other-acr", [(c.id, c.score) for c in d.causes]
        assert "image-manifest=true" in (d.fix[0].command or ""), [s.command for s in d.fix]


def test_harbors_immutable_tag_rule_is_the_registrys_setting() -> None:
    text = (
        "Error: PUT https://harbor.corp.example/v2/library/web/manifests/1.4: PRECONDITION: Failed to process request "
        "due to 'web:1.4' configured as immutable."
    )
    assert "registry_write_locked" in extract(text).facts.signals
    d = classify(extract(text), learned=None, cite=False)
    assert d.reply and d.cause == "other-acr", [(c.id, c.score) for c in d.causes]


def test_gits_own_authentication_failure_stays_silent_but_a_registry_login_is_answered() -> None:
    """git prints 'fatal: Authentication failed for ...' for a clone or push; a GitLab registry login is a registry's."""
    text = (
        "git push origin main\nremote: HTTP Basic: Access denied\nremote: You must use a personal access token "
        "with 'write_repository' scope for Git over HTTP.\nfatal: Authentication failed for 'https://gitlab.example.com/team/app.git/'"
    )
    assert "git_auth_failed" in extract(text).facts.signals
    d = classify(extract(text), learned=None, cite=False)
    assert not d.reply and d.cause == "unrelated", [(c.id, c.score) for c in d.causes]
    login = (
        "$ docker login registry.gitlab.example.com -u ci\nError response from daemon: Get "
        '"https://registry.gitlab.example.com/v2/": unauthorized: HTTP Basic: Access denied'
    )
    d = classify(extract(login), learned=None, cite=False)
    assert d.reply and d.cause == "auth", [(c.id, c.score) for c in d.causes]


def test_dockers_platform_warning_alone_is_a_platform_mismatch() -> None:
    text = (
        "docker run -p 8080:80 acme/report-api:2.3\nWARNING: The requested image's platform (linux/amd64) does not "
        "match the detected host platform (linux/arm64/v8) and no specific platform was requested"
    )
    assert "platform_mismatch" in extract(text).facts.signals
    d = classify(extract(text), learned=None, cite=False)
    assert d.reply and d.cause == "other-acr", [(c.id, c.score) for c in d.causes]
    assert "imagetools inspect" in (d.fix[0].command or ""), [s.command for s in d.fix]


def test_a_misspelt_registry_in_the_writers_words_beside_the_right_name_is_not_the_failure() -> None:
    """The tool asked docker.io (and got a 503); 'dokcer.io' is the writer's typo. A typo that failed alone still is one."""
    text = (
        'ctr: failed to resolve reference "docker.io/acme/tools:1.2": failed to fetch anonymous token: unexpected '
        "status: 503 Service Unavailable\nprobably a problem on the dokcer.io side?"
    )
    ex = extract(text)
    assert "public_lookalike" not in ex.derived["host_kinds"], ex.derived["host_kinds"]
    d = classify(ex, learned=None, cite=False)
    assert d.reply and d.cause == "other-acr", [(c.id, c.score) for c in d.causes]
    alone = 'Error response from daemon: Get "https://dokcer.io/v2/": dial tcp 198.51.100.20:443: i/o timeout'
    assert "public_lookalike" in extract(alone).derived["host_kinds"]
    d = classify(extract(alone), learned=None, cite=False)
    assert d.cause == "registry-not-found", [(c.id, c.score) for c in d.causes]


def test_aci_pulling_from_a_public_registry_is_not_a_network_restricted_registry() -> None:
    public = (
        "Deploying to Azure Container Instances fails:\n(InaccessibleImage) The image "
        "'docker.io/library/nginx:1.27' in container group 'web' is not accessible. Please check the image and registry credential."
    )
    restricted = "cannot pull from a registry restricted to private endpoints"
    d = classify(extract(public), learned=None, cite=False)
    assert d.cause != "service-integration", [(c.id, c.score) for c in d.causes]
    assert not any(restricted in reason for c in d.causes for reason in c.reasons)
    acr = public.replace("docker.io/library/nginx", "contosoreg.azurecr.io/web")
    d = classify(extract(acr), learned=None, cite=False)
    assert d.cause == "service-integration", [(c.id, c.score) for c in d.causes]
    assert any(restricted in reason for reason in d.causes[0].reasons)


def test_the_japanese_consoles_tag_immutability_is_the_registrys_setting() -> None:
    text = "ECR へ docker push すると unexpected status: 400 Bad Request になる。リポジトリのタグの不変性が IMMUTABLE になっていた。"
    assert "registry_write_locked" in extract(text).facts.signals
    d = classify(extract(text), learned=None, cite=False)
    assert d.reply and d.cause == "other-acr", [(c.id, c.score) for c in d.causes]


def test_a_registry_name_built_from_a_shell_variable_is_not_a_misspelt_host() -> None:
    """'$ACR_NAME.azurecr.io' and PowerShell's '$env:ACR_NAME.azurecr.io' are templates, not names anyone looked up."""
    for text in (
        'az acr run --registry $ACR_NAME --cmd "$ACR_NAME.azurecr.io/api:v1 python -V" /dev/null\nerror: the run failed',
        'docker pull $env:ACR_NAME.azurecr.io/api:v1\nError response from daemon: the run failed',
    ):
        ex = extract(text)
        assert not ex.facts.hosts and "lookalike" not in ex.derived["host_kinds"], (ex.facts.hosts, ex.derived)
        assert classify(ex, learned=None, cite=False).cause != "registry-not-found"
    assert extract("docker pull contosoreg.azurecr.io/api:v1").facts.hosts[0].host == "contosoreg.azurecr.io"


def test_az_acr_login_asking_whether_docker_runs_is_the_docker_client() -> None:
    text = "$ az acr login --name contosoreg\nPlease verify whether docker is installed and running properly"
    d = classify(extract(text), learned=None, cite=False)
    assert d.reply and d.cause == "client-docker-daemon", [(c.id, c.score) for c in d.causes]


def test_cmd_exe_rejecting_the_command_line_stays_silent() -> None:
    text = 'az acr run --registry %ACR% --cmd "python -c \\"print(1)\\"" /dev/null\n"" was unexpected at this time.'
    assert "cli_usage_error" in extract(text).facts.signals
    assert_silent(text)


def test_a_registry_losing_a_layers_upload_session_is_registry_side() -> None:
    text = (
        "pushing layer sha256:4f1c failed: PATCH https://registry.acme.example/v2/tools/blobs/uploads/8c2e: "
        '404 Not Found {"errors":[{"code":"BLOB_UPLOAD_UNKNOWN","message":"blob upload unknown to registry"}]}'
    )
    ex = extract(text)
    assert "blob_upload_rejected" in ex.facts.signals and "download_failed" not in ex.facts.signals
    d = classify(ex, learned=None, cite=False)
    assert d.reply and d.cause == "other-acr", [(c.id, c.score) for c in d.causes]
    assert (d.fix[0].command or "").startswith("docker push registry.acme.example/tools"), [s.command for s in d.fix]


def test_the_distribution_apis_error_envelope_is_a_container_registrys_answer_whatever_it_is_called() -> None:
    """'注册中心' also names a service registry (Nacos, Eureka); an OCI error envelope settles that it is an image registry."""
    text = (
        '登录到注册中心时出现以下 401 错误: {"errors":[{"code":"UNAUTHORIZED","message":"Invalid username or password",'
        '"detail":[{"type":"repository","name":"tools","actions":["pull"]}]}]}'
    )
    signals = extract(text).facts.signals
    assert "other_registry_kind" in signals and "distribution_error_json" in signals, signals
    d = classify(extract(text), learned=None, cite=False)
    assert d.reply and d.cause == "auth", [(c.id, c.score) for c in d.causes]
    assert_silent("Nacos 注册中心连接失败: 服务注册时出现错误 (error: connection refused)")


def test_an_empty_host_in_another_services_api_url_is_not_an_unset_registry_variable() -> None:
    """``https:///v2/`` is a registry request with no host (an unset $CI_REGISTRY); the same empty
    host in another service's API path is that service's client, and stays silent."""
    assert_silent(
        'Syncing projects failed\nGet "https:///api/v4/users/ops/projects?page=2&per_page=100": x509: certificate signed by unknown authority'
    )
    d = diagnose('docker login -u "$CI_REGISTRY_USER" --password-stdin\nError response from daemon: Get "https:///v2/": http: no Host in request URL')
    assert "empty_registry_host" in d.facts.signals
    assert d.reply and d.cause == "registry-not-found", [(c.id, c.confidence) for c in d.causes]


def test_terraforms_own_azure_login_failure_is_not_a_registry_login() -> None:
    """The azurerm provider's "Error building ARM Config" (and Terraform's "Initializing the
    backend...") name Terraform even when the word does not appear: its Azure CLI login is not the registry's."""
    assert_silent(
        "Initializing the backend...\n╷\n│ Error: Error building ARM Config: please ensure you have installed Azure CLI"
        " version 2.0.79 or newer. Error parsing json result from the Azure CLI: Error waiting for the Azure CLI:"
        " exit status 1: ERROR: Please run 'az login' to setup account."
    )


def test_gos_plain_http_answer_is_a_registry_served_without_tls_even_alone() -> None:
    """Go's "server gave HTTP response to HTTPS client" alone is, in real pastes, a registry served
    over plain HTTP; kubectl's "Unable to connect to the server:" prefix is its API server."""
    assert_rule_decides("http: server gave HTTP response to HTTPS client", "registry-tls-config", "go_http_response_to_https")
    assert_silent("Unable to connect to the server: http: server gave HTTP response to HTTPS client")


def test_github_packages_permission_code_is_the_tokens_scope() -> None:
    """ghcr.io's ``permission_denied: write_package`` is the token's package scope; the same code
    from npm's GitHub registry is npm's and stays silent."""
    assert_rule_decides(
        "ERROR: failed to push ghcr.io/acme/api:1.4.0: denied: permission_denied: write_package", "auth", "package_permission_denied"
    )
    assert_rule_decides("permission_denied: read_package", "auth", "package_permission_denied")
    assert_silent(
        "npm ERR! code E403\nnpm ERR! 403 403 Forbidden - PUT https://npm.pkg.github.com/@acme%2fui - Permission permission_denied: write_package"
    )


def test_the_registrys_storage_refusing_the_request_itself_is_not_a_firewall() -> None:
    """An object store's own request error behind a registry (a required header missing, a
    requester-pays bucket) is the registry's storage setup; AccessDenied from it stays the data path."""
    xml = "<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    pull = (
        "$ docker pull registry.acme.example/base/python:3.12\n3.12: Pulling from base/python\n"
        'error pulling image configuration: error parsing HTTP 400 response body: invalid character \'<\' looking for beginning of value: "{body}"'
    )
    rejected = pull.format(body=xml.format(code="InvalidRequest", message="Missing x-amz-content-sha256"))
    assert_rule_decides(rejected, "other-acr", "storage_request_rejected")
    denied = pull.format(body=xml.format(code="AccessDenied", message="Access Denied")).replace("HTTP 400", "HTTP 403")
    d = diagnose(denied)
    assert d.reply and d.cause == "client-firewall-data-endpoint", [(c.id, c.confidence) for c in d.causes]


@pytest.mark.parametrize(
    ("text", "signal"),
    [
        # a JSON-escaped log line: the registry's /v2/ URL ends in \" rather than "
        ('{"msg":"build failed: Get \\"https://https/v2/\\": dial tcp: lookup https on 10.96.0.10:53: no such host"}', "v2_endpoint"),
        # kubectl logs on a container whose image cannot be pulled
        (
            'Error from server (BadRequest): container "api" in pod "api-7d9f" is waiting to start: trying and failing to pull image',
            "pod_pull_failure",
        ),
        # containerd resolving the image at the registry (172 library pastes, none unrelated)
        ('Warning  Failed  kubelet  failed to resolve reference "quay.io/acme/worker:v2.3": not found', "registry_error_line"),
    ],
)
def test_registry_operations_in_their_less_common_wordings_are_answered(text: str, signal: str) -> None:
    d = diagnose(text)
    assert signal in d.facts.signals, d.facts.signals
    assert d.reply and d.cause != "unrelated", [(c.id, c.confidence) for c in d.causes]


def test_gits_rejected_push_is_not_a_registry_push() -> None:
    """git's "failed to push some refs" holds "failed to push", which a registry push also prints."""
    assert_silent(
        "To github.com:acme/app.git\n ! [rejected]        main -> main (fetch first)\n"
        "error: failed to push some refs to 'github.com:acme/app.git'\n"
        "hint: Updates were rejected because the remote contains work that you do not have locally."
    )
    assert_silent("error: failed to push some refs to 'https://dev.azure.com/acme/_git/app'")


def test_testcontainers_failing_to_fetch_its_image_is_a_pull_failure() -> None:
    """Testcontainers words a failed pull as ContainerFetchException: "Can't get Docker image"."""
    d = diagnose(
        "org.testcontainers.containers.ContainerFetchException: Can't get Docker image: "
        "RemoteDockerImage(imageName=postgres:16-alpine, imagePullPolicy=DefaultPullPolicy())\n"
        "\tat org.testcontainers.containers.GenericContainer.getDockerImageName(GenericContainer.java:1364)"
    )
    assert "registry_op_failed" in d.facts.signals, d.facts.signals
    assert d.reply and d.cause != "unrelated", [(c.id, c.confidence) for c in d.causes]


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        # "unauthorized: authentication required" as Microsoft's Traditional Chinese docs word it
        ("az acr login 成功了，但是 docker pull 的時候出現錯誤：未經授權：需要驗證", "auth"),
        # "ACR Tasks can't push or pull images": zh-TW writes Tasks as 工作 and pull as 提取
        ("我們的 ACR 工作無法推送或提取映射，請問要怎麼設定網路規則？", "service-integration"),
    ],
)
def test_traditional_chinese_registry_failures_are_answered(text: str, cause: str) -> None:
    """Traditional Chinese (Taiwan, Hong Kong) words registry failures differently from Simplified
    Chinese (無法, 鏡像, 提取, 未經授權); the library's zh-TW pastes went unanswered."""
    d = diagnose(text)
    assert d.reply and d.cause == cause, [(c.id, c.confidence) for c in d.causes]


def test_traditional_chinese_chatter_about_mappings_and_pages_stays_silent() -> None:
    """映射 (mapping) and 無法 (cannot) alone are not a registry failure: a port mapping or a page."""
    assert_silent("部署時出現錯誤：端口映射失敗，請問怎麼處理")
    assert_silent("這個頁面無法顯示，請稍後再試")


def test_an_image_said_not_to_exist_is_the_registrys_missing_repository_not_credentials() -> None:
    """Registries answer a missing repository with 'denied' or 'unauthorized' as often as with
    'not found'; when the person says the image or tag does not exist, that decides it."""
    assert_rule_decides(
        "Error response from daemon: pull access denied for acme/worker, repository does not exist or "
        "may require 'docker login': denied: requested access to the resource is denied\n"
        "looks like the image doesn't exist anymore on docker hub?",
        "other-acr",
        "image_missing_prose",
    )
    # Answered other-acr, but not by image_missing_prose: its pattern wants "tag was removed" with
    # nothing between, so "the tag 1.8.3 was removed" is decided by the pull rules and the library.
    d = diagnose("kubelet keeps failing with ErrImagePull; the tag 1.8.3 was removed from quay.io last week")
    assert d.reply and d.cause == "other-acr", [(c.id, c.confidence) for c in d.causes]


def test_a_local_tag_or_a_vm_image_that_does_not_exist_is_not_a_registry_answer() -> None:
    """docker push's 'An image does not exist locally' is a local tag; a VM image is no container image."""
    d = diagnose("An image does not exist locally with the tag: myreg.azurecr.io/app")
    assert "image_missing_prose" not in d.facts.signals
    assert_silent(
        "Error: validating OS base images required by ./cluster.json: OS base image not available in "
        "target cloud: some VM images are missing on the target cloud"
    )


def test_a_missing_ca_file_under_certs_d_is_the_registrys_trust_setup() -> None:
    """Docker reads /etc/docker/certs.d/<host>/*.crt before every pull from that host; a file that
    is named there but missing (a dangling symlink) fails the pull before any request is made."""
    assert_rule_decides(
        "$ docker pull registry.example.org/platform/base:9\n"
        "Trying to pull repository registry.example.org/platform/base ...\n"
        "open /etc/docker/certs.d/registry.example.org/corp-ca.crt: no such file or directory",
        "registry-tls-config",
        "registry_ca_file_missing",
    )


def test_a_resolver_socket_that_cannot_be_opened_is_the_clients_dns() -> None:
    """Go's resolver dials the name server first; 'cannot assign requested address' on that dial
    (a loopback resolver with IPv6 off, a VM without the address) fails before any lookup is sent."""
    assert_rule_decides(
        'Error response from daemon: Get "https://contoso.azurecr.io/v2/": dial tcp: lookup contoso.azurecr.io '
        "on [::1]:53: dial udp [::1]:53: connect: cannot assign requested address",
        "client-dns",
        "dns_udp_failure",
    )


def test_login_failed_alone_is_not_the_registrys_401() -> None:
    """az acr login prints 'Login failed.' after every failed docker login, a network one too: the
    words are no 401 from the registry, so a DNS failure before them keeps its cause and the reply
    never claims the registry answered 'unauthorized'."""
    d = diagnose(
        "$ az acr login --name contoso\n"
        'Error response from daemon: Get "https://contoso.azurecr.io/v2/": dial tcp: lookup contoso.azurecr.io '
        "on 127.0.0.53:53: server misbehaving\nLogin failed."
    )
    assert "unauthorized" not in d.facts.signals and "login_failed" in d.facts.signals
    assert d.reply and d.cause == "client-dns", [(c.id, c.confidence) for c in d.causes]
    assert not any("401" in reason for cause in d.causes for reason in cause.reasons)


def test_a_login_that_failed_without_saying_why_still_leans_on_credentials() -> None:
    """With no network error in the paste, a failed login is most often the credentials."""
    d = diagnose("docker login contoso.azurecr.io -u ci-bot\nPassword:\nLogin failed, check the pipeline logs")
    assert "login_failed" in d.facts.signals
    assert d.causes and d.causes[0].id == "auth", [(c.id, c.confidence) for c in d.causes]


def test_an_expired_azure_cli_sign_in_names_no_registry() -> None:
    """Every az command prints the CLI's lapsed sign-in (AADSTS700082, 'Please run az login'):
    without a registry in the paste it is the CLI's own login, and passive mode stays silent."""
    assert_silent(
        "$ az storage account list -o table\n"
        'ERROR: Get Token request returned http error: 400 and server response: {"error":"invalid_grant",'
        '"error_description":"AADSTS700082: The refresh token has expired due to inactivity."}\n'
        "Please run 'az login' to setup account."
    )


def test_az_acr_login_after_a_lapsed_sign_in_is_still_answered() -> None:
    """The same lapsed sign-in under az acr login is the registry login failing: still answered."""
    assert_rule_decides(
        "$ az acr login --name contoso\n"
        "AADSTS700082: The refresh token has expired due to inactivity.\nPlease run 'az login' to setup account.",
        "auth",
        "az_login_needed",
    )


@pytest.mark.parametrize(
    "text",
    [
        "$ docker exec -it worker sh\nError response from daemon: Container "
        "4f1c2a9b7d3e8f60a1b2c3d4e5f60718293a4b5c6d7e8f9012a3b4c5d6e7f8a9 is not running",
        "$ docker run -d --name api registry.example.org/team/api:2\n"
        'docker: Error response from daemon: Conflict. The container name "/api" is already in use by container '
        '"9c8b7a6d5e4f". You have to remove (or rename) that container to be able to reuse that name.',
        "Creating network app_default\nError response from daemon: cannot create network 4e5f (br-4e5f): conflicts "
        "with network 9a8b (br-9a8b): networks have overlapping IPv4",
        "docker: Error response from daemon: oci runtime error: container_linux.go:247: starting container process "
        'caused "exec: \\"/entrypoint.sh\\": permission denied".',
    ],
)
def test_the_engines_own_container_and_network_errors_are_not_registry_failures(text: str) -> None:
    """'Error response from daemon' also prefixes the engine's local errors: a stopped container,
    a name or network clash, the runtime failing to start a process. No registry was asked."""
    assert_silent(text)


def test_a_stopped_docker_daemon_is_still_the_daemon_not_a_stopped_container() -> None:
    """'is not running' about the daemon itself keeps its cause (the container rule wants a container ID)."""
    assert_rule_decides(
        "$ docker pull contoso.azurecr.io/api:1\nerror during connect: this error may indicate that the docker "
        "daemon is not running: Get \"http://%2F%2F.%2Fpipe%2Fdocker_engine/v1.24/images/create\"",
        "client-docker-daemon",
        "docker_daemon_unreachable",
    )


def test_a_client_that_cannot_reach_the_docker_engine_is_the_daemon() -> None:
    """Docker Toolbox and Kitematic say 'Docker Engine' where the CLI says 'Docker daemon': the
    client could not reach the engine in its VM, before any registry was asked."""
    assert_rule_decides(
        "Pulling nginx from the hub...\nThere was a problem connecting to the Docker Engine in the VirtualBox VM. "
        "Check the host-only adapter and try again.",
        "client-docker-daemon",
        "docker_daemon_unreachable",
    )


def test_the_daemons_own_network_timeout_is_answered_with_the_network_candidates() -> None:
    """An older daemon's 'Network timed out while trying to connect to <registry URL>' is a registry
    request lost on the network path; a remark that the internet works does not make it solved."""
    d = diagnose(
        "docker pull acme/tools\nNetwork timed out while trying to connect to https://index.docker.io/v1/repositories/acme/tools/images. "
        "You may want to check your internet connection or if you are behind a proxy.\nMy internet works fine."
    )
    assert "docker_network_timeout" in d.facts.signals
    assert d.reply and d.cause in {"client-dns", "client-firewall", "client-proxy"}, [(c.id, c.confidence) for c in d.causes]


def test_a_registrys_5xx_in_the_clients_words_is_one_line_of_evidence() -> None:
    """docker's 'received unexpected HTTP status: 502 Bad Gateway' is both a registry 5xx and a bare 5xx:
    the reply says it once, in the more telling words, and the cause keeps both rules' weight."""
    d = diagnose("Error response from daemon: Get https://quay.io/v2/acme/tool/manifests/1.2: received unexpected HTTP status: 502 Bad Gateway")
    assert {"registry_status_5xx", "server_error_5xx"} <= set(d.facts.signals)
    details = [e.detail for e in d.evidence if e.check == "text"]
    assert d.cause == "other-acr" and len([x for x in details if "5xx" in x]) == 1, details
    assert d.causes[0].score >= 9


def test_a_docker_login_5xx_is_one_line_of_evidence() -> None:
    """docker login's 'failed with status: 503' is both a login 5xx and a bare 5xx: the reply says it
    once, in the login's words, and the cause keeps both rules' weight."""
    d = diagnose(
        "Error response from daemon: login attempt to https://myreg.azurecr.io/v2/ failed with status: 503 Service Unavailable"
    )
    assert {"login_attempt_5xx", "server_error_5xx"} <= set(d.facts.signals)
    details = [e.detail for e in d.evidence if e.check == "text"]
    assert d.cause == "other-acr" and len([x for x in details if "5xx" in x]) == 1, details
    assert d.causes[0].score >= 7.5


def test_a_chinese_base_image_pull_through_an_inspecting_proxy_is_answered() -> None:
    """'从注册表拉取基础镜像' (pulling the base image from the registry) is a registry operation."""
    d = diagnose("Zscaler 会拦截 HTTPS 流量并替换证书，从注册表拉取基础镜像也一样：\n\nx509: certificate signed by unknown authority")
    assert d.reply and d.cause == "tls-interception", [(c.id, c.confidence) for c in d.causes]


def test_a_metrics_backends_ingestion_limit_is_not_a_registry_push() -> None:
    """Cortex, Mimir and Loki say 'push failed' with a 429 when a tenant's ingestion limit is hit."""
    d = diagnose(
        'level=warn ts=2023-05-02T10:11:12Z caller=push.go:55 msg="push failed" err="rpc error: code = Code(429) '
        'desc = the request has been rejected because the tenant exceeded its ingestion rate limit, set to 10000 items/s"'
    )
    assert not d.reply, [(c.id, c.confidence) for c in d.causes]


@pytest.mark.parametrize(
    "text",
    [
        "Dec 01 10:00:00 node1 dockerd[811]: failed to start daemon: error initializing graphdriver: driver not supported: overlay2",
        "Docker Desktop - Unexpected WSL error\ndeploying WSL2 distributions\n"
        "provisioning docker WSL distros: ensuring main distro is deployed: exit code: 4294967295",
    ],
)
def test_a_docker_engine_that_cannot_start_is_the_local_daemon(text: str) -> None:
    """dockerd refusing its storage driver, or Docker Desktop failing to set up its WSL distros: no engine runs."""
    d = diagnose(text)
    assert d.reply and d.cause == "client-docker-daemon", [(c.id, c.confidence) for c in d.causes]


def test_red_hats_missing_registry_ca_file_is_the_registrys_trust_setup() -> None:
    """Red Hat's registry CA in certs.d links to /etc/rhsm/ca/redhat-uep.pem, which only the rhsm package installs."""
    d = diagnose("the node cannot pull the pause image from registry.access.redhat.com: /etc/rhsm/ca/redhat-uep.pem: no such file or directory")
    assert "registry_ca_file_missing" in d.facts.signals
    assert d.reply and d.cause == "registry-tls-config" and d.confidence >= 0.5, [(c.id, c.confidence) for c in d.causes]


def test_a_maven_docker_plugins_push_is_not_another_cloud_tool() -> None:
    """'maven' names another cloud tool's endpoint, except when Maven's Docker plugin is pushing an image."""
    d = diagnose(
        "[INFO] --- docker-maven-plugin:1.2.2:push (default-cli) @ api ---\n[ERROR] Failed to execute goal "
        "com.spotify:docker-maven-plugin:1.2.2:push (default-cli) on project api: Exception caught: "
        "unauthorized: authentication required -> [Help 1]"
    )
    reasons = [reason for cause in d.causes for reason in cause.reasons]
    assert "Another cloud tool or service endpoint." not in reasons, reasons
    assert d.reply and d.cause == "auth", [(c.id, c.confidence) for c in d.causes]


def test_a_push_refused_as_too_large_is_the_registrys_front_end() -> None:
    """nginx's body-size limit in front of a registry refuses big layers; a git push's 413 stays another tool's."""
    d = diagnose(
        "$ docker push registry.example.com/ml/model:2\n"
        "3f1c2a9b8e7d: Pushing  1.2GB/4.8GB\n"
        "error parsing HTTP 413 response body: invalid character '<' looking for beginning of value: "
        '"<html>\\r\\n<head><title>413 Request Entity Too Large</title></head>"'
    )
    assert "upload_too_large" in d.facts.signals
    assert d.reply and d.cause == "other-acr", [(c.id, c.confidence) for c in d.causes]
    git = diagnose("error: RPC failed; HTTP 413 curl 22 The requested URL returned error: 413\nfatal: the remote end hung up unexpectedly")
    assert not git.reply, [(c.id, c.confidence) for c in git.causes]


def test_a_gateway_error_while_uploading_a_layer_is_a_push_failure() -> None:
    d = diagnose(
        "Pushing 9c1e2b7a04d3\n2014/01/02 10:00:00 Received HTTP code 502 while uploading layer: <html>\n"
        "<head><title>502 Bad Gateway</title></head>\n</html>"
    )
    assert d.reply and d.cause == "other-acr", [(c.id, c.confidence) for c in d.causes]


def test_minikubes_registry_warning_is_answered_without_its_proxy_link_deciding() -> None:
    """minikube warns when its node cannot reach the registry; its hint links a proxy page for everyone,
    which is not the user saying a proxy is on the path."""
    d = diagnose(
        "❗  Failing to connect to https://registry.k8s.io/ from inside the minikube container\n"
        "💡  To pull new external images, you may need to configure a proxy: "
        "https://minikube.sigs.k8s.io/docs/reference/networking/proxy/"
    )
    assert "proxy_mention" not in d.facts.signals
    assert d.reply and d.confidence < 0.5, [(c.id, c.confidence) for c in d.causes]


@pytest.mark.parametrize(
    "text",
    [
        "ERROR: failed to solve: node:18-alpine: failed to resolve source metadata for docker.io/library/node:18-alpine",
        "Could not resolve com.android.tools.build:gradle:7.0.0.",
        'failed to resolve reference "docker.io/library/busybox:latest"',
        "fatal: unable to access 'https://git.example.com/x.git/': Could not resolve host: git.example.com",
    ],
)
def test_a_tools_resolve_that_is_not_a_name_lookup_is_not_resolver_prose(text: str) -> None:
    """Build tools resolve metadata, references and dependencies; curl's DNS error has its own signal."""
    assert "resolve_failure_prose" not in diagnose(text).facts.signals


def test_pulls_that_time_out_in_prose_are_answered() -> None:
    d = diagnose("pulls from the private registry time out only when I'm on the corporate VPN")
    assert {"error_marker", "registry_failure_phrase"} <= set(d.facts.signals)
    assert d.reply, [(c.id, c.confidence) for c in d.causes]


def test_a_message_that_says_pulls_fail_has_an_error_in_words() -> None:
    """'No error in the message' is not said of a message that says pulls, pushes or logins fail."""
    d = diagnose("since we switched the registry to a private endpoint, pulls from the office laptops fail")
    reasons = [reason for cause in d.causes for reason in cause.reasons]
    assert "No error in the message." not in reasons, reasons
    assert d.reply and d.cause == "registry-private-endpoint", [(c.id, c.confidence) for c in d.causes]


def test_a_client_that_cannot_reach_the_registry_in_prose_is_answered() -> None:
    d = diagnose("the build agent in the new subnet cannot reach contoso.azurecr.io, the connection times out on 443")
    assert "registry_unreachable_prose" in d.facts.signals
    assert d.reply and d.cause in {"client-firewall", "client-proxy", "registry-private-endpoint"}, [(c.id, c.confidence) for c in d.causes]


def test_acr_tasks_failing_after_the_registry_was_locked_down_is_the_service_integration() -> None:
    d = diagnose("our ACR Tasks runs fail to push since we locked down the registry to selected IPs")
    assert d.reply and d.cause == "service-integration", [(c.id, c.confidence) for c in d.causes]


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        ("x509 errors when pulling from our ACR in the office, at home it works", "tls-interception"),
        ("docker pull from the registry times out in the office but works from home", "client-firewall"),
    ],
)
def test_works_on_another_network_is_a_symptom_not_a_solution(text: str, cause: str) -> None:
    """'at home it works' says the office network is the difference; it is not the problem being solved."""
    d = diagnose(text)
    assert "resolved_prose" not in d.facts.signals
    assert d.reply and d.cause == cause, [(c.id, c.confidence) for c in d.causes]


@pytest.mark.parametrize(
    "text",
    [
        "ACR からの pull が社内ネットワークだけでタイムアウトします",
        "プライベート エンドポイントを作成してから AKS からイメージを pull できなくなりました",
    ],
)
def test_japanese_prose_that_pulls_time_out_or_stopped_working_is_answered(text: str) -> None:
    """Japanese puts the failure after the object; 'できなくなりました' (can no longer) is a failure."""
    d = diagnose(text)
    assert "registry_failure_phrase_ja" in d.facts.signals
    assert d.reply, [(c.id, c.confidence) for c in d.causes]


def test_an_azure_registry_resolving_to_its_public_address_is_the_private_dns() -> None:
    d = diagnose("from the VNet, nslookup contoso.azurecr.io still returns the public IP instead of the private one")
    assert d.reply and d.cause == "registry-private-endpoint", [(c.id, c.confidence) for c in d.causes]


@pytest.mark.parametrize(
    ("text", "cause", "at_least"),
    [
        ("Microsoft Defender stopped showing vulnerability scan results for our registry after we turned off public access", "service-integration", 0.5),
        ("our Azure ML workspace can't build the environment image any more, its ACR is in a VNet", "service-integration", 0.5),
        ("pulling from registry.lab.internal fails, the registry's certificate is not trusted on the new nodes", "registry-tls-config", 0.5),
        ("Netskope breaks every docker pull from Docker Hub on the office Wi-Fi", "tls-interception", 0.0),
    ],
)
def test_short_chat_reports_of_a_registry_failure_are_answered(text: str, cause: str, at_least: float) -> None:
    """What people type in a channel: a sentence, no log. 'stopped showing', 'breaks', 'not trusted', 'Azure ML'."""
    d = diagnose(text)
    assert d.reply and d.cause == cause and d.confidence >= at_least, [(c.id, c.confidence) for c in d.causes]


def test_azure_mls_other_errors_are_not_a_registrys() -> None:
    """Azure ML named without its images or registry (a compute instance's download) is not an image build."""
    d = diagnose("Could not install Azure ML websocket server on the compute instance: downloading the server failed, please try again later")
    assert "azure_ml_image_prose" not in d.facts.signals and d.cause != "service-integration"


def test_check_acr_saying_the_cluster_cannot_pull_is_the_clusters_side() -> None:
    d = diagnose("ran az aks check-acr against our registry and it says the cluster can't pull from it")
    assert d.reply and d.cause == "aks-pull", [(c.id, c.confidence) for c in d.causes]


def test_pods_that_stopped_pulling_after_an_egress_change_lead_with_the_firewall() -> None:
    d = diagnose("every pod on the new node pool is in ImagePullBackOff since the network team added a UDR to the hub firewall")
    assert d.reply and d.cause == "client-firewall", [(c.id, c.confidence) for c in d.causes]


#: What people type in Slack, with no log: works here but not there, 'none of the nodes can pull', a proxy
#: 'returning 407', a registry name that 'doesn't resolve', a bare 403 (``None``: the words cannot tell
#: the cause, and the reply names candidates and the deciding check).
CHANNEL_REPORTS = [
    ("can't log in to our registry since the password rotation", "registry_login_failed", "auth"),
    ("cannot log in to contoso.azurecr.io with the service principal any more", "registry_login_failed", "auth"),
    ("since the DNS server change nobody in the office can pull from our registry", "registry_failure_phrase_verb", "client-dns"),
    ("our registry is returning 500s on every push since noon", "registry_failure_phrase", "other-acr"),
    ("docker push が途中で止まります", "registry_failure_phrase_ja", None),  # 止まります: stops, a stalled push
    ("証明書エラーで ACR から pull できません", "ssl_generic", None),  # 証明書エラー: a certificate error
    ("docker login works on my mac but not in WSL", "works_here_not_there_prose", "client-firewall"),
    ("pull works from cloud shell but not from our on-prem build agents", "works_here_not_there_prose", "client-firewall"),
    ("自宅だと pull できるのに会社だとできません", "works_elsewhere_prose", "client-firewall"),
    ("公司网络下 docker login harbor 失败，家里可以", "works_elsewhere_prose", "client-firewall"),
    ("since this morning none of the AKS nodes can pull from our ACR", "registry_failure_phrase_verb", "aks-pull"),
    ("the build agent times out pushing to myreg.azurecr.io", "registry_failure_phrase_verb", "client-firewall"),
    ("our proxy is returning 407 when docker pulls from ACR", "proxy_auth_required", "client-proxy"),
    ("the registry name doesn't resolve from the jumpbox", "registry_name_unresolved_prose", "client-dns"),
    ("ACR の名前が解決できません", "registry_name_unresolved_prose", "client-dns"),
    ("the kubelet on the new nodes can't authenticate to ECR", "registry_login_failed", None),  # the nodes' credential provider or the credentials: candidates
    ("after the firewall change our build servers get connection reset when pushing to the registry", "connection_reset", "client-firewall"),
    ('kubectl get events shows "failed to do request: Head ... i/o timeout" for every ACR image', "registry_error_line", None),
    ("we get 403 when the pipeline pushes to ACR, worked yesterday", "forbidden_403", None),
    ("ACR のプライベートエンドポイントを作ってから名前解決がパブリック IP を返します", "pe_dns_public_prose", "registry-private-endpoint"),
    ("GKE nodes time out pulling from gcr.io after we removed the public IPs", "registry_failure_phrase_verb", "client-firewall"),
    ("we're hitting Docker Hub rate limits in CI again", "toomanyrequests", "other-acr"),
    ("the ACR firewall is blocking our AKS cluster even though the subnet is allowed", "selected_networks_prose", "registry-public-access"),
    ("we moved to a new vnet and now the private endpoint DNS doesn't work for ACR", "resolve_failure_prose", "registry-private-endpoint"),
    ("the scan results in Defender are empty since we locked down ACR", "defender_scan", "service-integration"),
    ("AKS nodes can't connect to ACR, it times out", "io_timeout", "client-firewall"),
    ("AKS のノードから ACR に接続できません。タイムアウトします", "io_timeout", "client-firewall"),
    ("our new IPv6-only nodes can't pull from ghcr.io, it has no AAAA record", "ipv6_only_prose", "client-firewall"),
    ("pulls fail on the new subnet, the NSG allows 443 to AzureContainerRegistry service tag only", "firewall_words", "client-firewall"),
    ("our image pull fails since IT changed the firewall", "firewall_words", "client-firewall"),
    ("is ACR down? our deploys are stuck pulling images", "registry_outage_prose", "other-acr"),
    ("FYI docker login to ACR works but docker push returns denied", "login_ok_operation_denied_prose", "auth"),
    ("ACR pull through cache rule returns 404 for docker hub images", "status_404_prose", "other-acr"),
    ("the new self-hosted runner can't reach myreg.azurecr.io, curl to /v2/ hangs", "registry_unreachable_prose", "client-firewall"),
    ("the App Service logs say ImagePullFailure for our ACR image after we disabled admin user", "admin_user_disabled", "auth"),
    ("GitHub Actions runner: Error: Cannot perform an interactive login from a non TTY device", "login_credentials_missing", "auth"),
    ("ACR 的私有终结点配置后，AKS 拉取镜像超时", "private_endpoint_words", "registry-private-endpoint"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "signal", "cause"),
    [
        pytest.param(
            "$ docker pull registry.example.com/team/tool:1.0\n"
            "Image registry.example.com/team/tool:1.0 uses outdated schema1 manifest format. "
            "Please upgrade to a schema2 image for better future compatibility.",
            "schema1_image", "other-acr", id="docker-outdated-schema1-warning",
        ),
        pytest.param(
            'ctr: failed to resolve reference "registry.example.com/legacy/app:3": not implemented: media type '
            '"application/vnd.docker.distribution.manifest.v1+prettyjws" is no longer supported since containerd v2.1',
            "schema1_image", "other-acr", id="containerd-prettyjws-refused",
        ),
        pytest.param(
            "ERROR: (gcloud.run.deploy) Revision 'api-00002' is not ready: Cloud Run does not support image "
            "'europe-docker.pkg.dev/p/r/api:2': Container manifest type 'application/vnd.oci.image.index.v1+json' must support amd64/linux.",
            "platform_mismatch", "other-acr", id="cloud-run-platform",
        ),
        pytest.param(
            '2021/03/01 10:00:00 Image pull was unsuccessful: reading image "gcr.io/acme/base:1.4": Get '
            "https://gcr.io/v2/token?scope=repository%3Aacme%2Fbase%3Apull&service=gcr.io: invoking docker-credential-gcloud: exit status 1",
            "registry_op_failed", "auth", id="pull-was-unsuccessful",
        ),
        pytest.param(
            "[ERROR] Failed to execute goal com.spotify:dockerfile-maven-plugin:1.4.13:push (default-cli) on project shop: "
            "Could not push image: denied: Your Authorization Token is invalid. -> [Help 1]",
            "unauthorized", "auth", id="ecr-authorization-token-invalid",
        ),
        pytest.param(
            "since the VPN client update our laptops can't resolve the private registry hostname, every docker pull fails",
            "resolve_failure_prose", "client-dns", id="prose-cannot-resolve-registry",
        ),
        pytest.param(
            'Error: choosing an image from manifest list docker://registry.example.com/tools/cli:2: no image found in manifest list for architecture arm64, variant "v8", OS linux',
            "platform_mismatch", "other-acr", id="podman-no-image-for-architecture",
        ),
        pytest.param(
            "docker-build:index:Image app error: failed to connect to any docker daemon",
            "docker_daemon_unreachable", "client-docker-daemon", id="pulumi-no-docker-daemon",
        ),
        pytest.param(
            "our nerdctl push keeps trying https even though the registry at registry.lab:5000 is plain http",
            "https_instead_of_http_prose", "registry-tls-config", id="prose-https-to-plain-http-registry",
        ),
        pytest.param(
            "私有仓库 push 不了镜像，客户端会自动把 http 转成 https",
            "https_instead_of_http_prose", "registry-tls-config", id="zh-prose-https-to-plain-http-registry",
        ),
        pytest.param(
            "the operator pod never starts: the kube-rbac-proxy image is missing from the gcr.io/kubebuilder registry",
            "image_missing_prose", "other-acr", id="prose-image-missing-from-registry",
        ),
        pytest.param(
            "after kubectl apply -f operator.yaml the controller pod can't pull its image because the image repository has been deleted",
            "image_missing_prose", "other-acr", id="prose-image-repository-deleted-beside-kubectl",
        ),
        pytest.param(
            "kubectl describe pod shows ErrImagePull; inside the node apt-get update gets 407 Proxy Authentication Required from the proxy",
            "pod_pull_failure", "client-proxy", id="pod-pull-beside-apt-through-proxy",
        ),
        pytest.param(
            "our docker pulls from Docker Hub run into cert issues since Zscaler was rolled out",
            "ssl_generic", "tls-interception", id="prose-cert-issues-behind-zscaler",
        ),
        *CHANNEL_REPORTS,
    ],
)  # fmt: skip
def test_a_tools_message_is_read_as_its_signal_and_cause(text: str, signal: str, cause: str | None) -> None:
    """Messages of real tools (Docker's schema-1 warning, containerd 2.1, Cloud Run, kaniko-style pull
    logs, ECR) and sentences people type: each is read as its signal and answered, and where the words
    name the cause, it leads."""
    d = diagnose(text)
    assert signal in d.facts.signals, sorted(d.facts.signals)
    assert d.reply, [(c.id, c.confidence) for c in d.causes]
    if cause is not None:
        assert d.cause == cause, [(c.id, c.confidence) for c in d.causes]


@pytest.mark.parametrize(
    "text",
    [
        "the app works on my laptop but not in production",
        "docker compose works on linux but not on windows, the bind mount is empty",
        "the container works with docker but not with podman, it exits with code 1",
        "docker run works on my machine but not in CI, the tests fail",
        "git pull works from my laptop but not from the build server",
        "our proxy is returning 407 when pip installs packages",
        "the api returns 403 when the pipeline calls it",
        "the database host name doesn't resolve from the app service",
        "the hostname doesn't resolve from my laptop, it's the wiki",
        "curl gets 407 from the corporate proxy",
        "kubectl get pods times out after the VPN change",
        "we can't authenticate to the grafana api with the new token",
        "we're hitting the GitHub API rate limit in CI again",
        "DNS doesn't work inside WSL since the update, apt can't reach anything",
        "the firewall is blocking our database port 5432",
        "kubectl logs are empty since the upgrade",
        "the cronjob times out pushing metrics to the pushgateway",
        "the job failed to push metrics to the pushgateway",
        "Grafana failed pulling metrics from prometheus",
        "the wiki has no AAAA record so IPv6-only laptops can't open it",
        "I can't log in to jira since this morning",
        "cannot log in to grafana after the upgrade",
        "unable to login to the vpn portal",
        "nobody can pull requests on github today",
        "the API is returning 500s since the deploy",
        "no one can log in to jira",
        "時計が止まります",
        "会議中に Teams が固まる",
        "証明書エラーで社内 Wiki が開けません",
        "npm install fails behind the firewall",
        "the firewall blocks git pull from github",
        "is the wiki down? confluence is stuck loading",
        "is GitHub down? our actions are stuck queued",
        "the schema registry is down again, kafka consumers fail",
        "the API returns 404 for the old endpoint",
        "npm login works but npm publish returns 403",
        "git login works but git push returns denied",
        "we're stuck pulling the latest changes from the monorepo",
        "the build is stuck pulling dependencies from maven central",
        "the GitHub repo with our dotfiles has been deleted",
        "pip install runs into cert issues behind Zscaler",
        "apt-get update fails with 407 from the proxy",
        "the website keeps redirecting http to https and my browser shows a loop",
        "the app keeps trying https to reach the local mock server at localhost:8080",
        "git push 不了代码，提示 403",
        "代码拉不下来，git clone 一直超时",
        "we have cert issues with the grafana dashboard since yesterday",
    ],
)
def test_other_things_said_the_same_way_stay_silent(text: str) -> None:
    """The same phrasings about something that is not an image registry: another tool's rate limit, DNS,
    firewall, proxy or certificate trouble, a deleted git repository, a site's HTTPS redirect, metrics
    pushed to a Pushgateway, a login to another service ('can't log in to X' is a registry's only when X
    reads as one), Chinese 'can't push' about code, Japanese stalls and certificate errors elsewhere."""
    assert not diagnose(text).reply


def test_gnutls_pull_and_push_functions_are_not_registry_operations() -> None:
    """GnuTLS (curl, git, apt) reports a broken TLS stream as 'Error in the pull function': its transport's
    read callback, not an image pull."""
    text = (
        "* Connected to deb.example.org (203.0.113.9) port 443 (#0)\n"
        "* gnutls_handshake() failed: Error in the pull function.\n"
        "curl: (35) gnutls_handshake() failed: Error in the pull function."
    )
    d = diagnose(text)
    assert not {"registry_failure_phrase", "registry_failure_phrase_verb"} & set(d.facts.signals), d.facts.signals
    assert not d.reply
