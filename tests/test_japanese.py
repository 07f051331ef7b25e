"""Japanese on par: full-width text, Japanese prose and localised errors, replies in Japanese."""

from __future__ import annotations

import io

import pytest

from bot.cli.main import main
from bot.diagnose import diagnose
from bot.engine.knowledge import default_knowledge
from bot.engine.lang import detect_lang, localize_detail, localize_vantage, resolve_lang
from bot.engine.models import VANTAGE_PASTE
from bot.engine.normalize import fold_width, normalize
from bot.engine.render_text import render_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ｄｉａｌ　ｔｃｐ：　ｌｏｏｋｕｐ", "dial tcp: lookup"),
        ("ｴﾗｰ（４０３）", "エラー (403)"),
        ("「unauthorized: authentication required」エラー", '"unauthorized: authentication required" エラー'),
        ("myreg.azurecr.ioに接続できません", "myreg.azurecr.io に接続できません"),
        ("エラーdial tcp", "エラー dial tcp"),
        ("plain ascii stays", "plain ascii stays"),
    ],
)
def test_fold_width(raw: str, expected: str) -> None:
    assert fold_width(raw) == expected


def test_signal_phrases_are_written_as_normalised_text() -> None:
    """A phrase that normalisation changes could never match (e.g. 'dockerデーモン' becomes 'docker デーモン')."""
    for signal in default_knowledge().signals:
        for phrase in (*signal.any, *signal.all):
            assert fold_width(phrase).lower() == phrase, (signal.id, phrase)


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("dial tcp: lookup x.azurecr.io: no such host", "en"),
        ("デプロイでこのエラーが出ます: dial tcp: lookup x.azurecr.io: no such host", "ja"),
        ("拉取镜像失败 dial tcp: i/o timeout", "en"),  # Chinese: no kana, English reply
        ("ファイル", "ja"),
        ("エ", "en"),
    ],
)
def test_detect_lang(text: str, lang: str) -> None:
    assert detect_lang(text) == lang


def test_explicit_language_wins() -> None:
    assert resolve_lang("en", "エラーが発生") == "en"
    assert resolve_lang(None, "エラーが発生") == "ja"
    assert resolve_lang("fr", "plain") == "en"


#: Symptom lines of Microsoft's Japanese troubleshooting guide and the causes it gives for them.
GUIDE_SYMPTOMS = [
    ("イメージをプッシュまたはプルできず、エラー dial tcp: lookup myregistry.azurecr.io が発生する",
     {"client-dns", "registry-private-endpoint", "registry-not-found", "client-firewall"}),
    ("イメージをプッシュまたはプルできず、エラー Client.Timeout exceeded while awaiting headers が発生する",
     {"client-firewall", "client-proxy", "registry-private-endpoint"}),
    ("イメージをプッシュまたはプルできず、Azure CLI エラー Could not connect to the registry login server が発生する",
     {"client-firewall", "client-proxy"}),
    ("ACR タスクによるイメージのプッシュまたはプルができない", {"service-integration"}),
    ("プライベート エンドポイントを使用して構成されたレジストリにアクセスしようとすると、エラー host is not reachable が発生します。",
     {"registry-private-endpoint"}),
    ("仮想ネットワーク設定を構成できず、エラー Failed to save firewall and virtual network settings for container registry が発生する",
     {"registry-resource-provider"}),
    ("docker pull が \"net/http: 接続の待機中に要求が取り消されました (ヘッダーの待機中に Client.Timeout を超えました)\" というエラーで失敗する",
     {"client-firewall", "client-proxy", "registry-private-endpoint"}),
]  # fmt: skip


@pytest.mark.parametrize(("text", "causes"), GUIDE_SYMPTOMS, ids=range(len(GUIDE_SYMPTOMS)))
def test_guide_symptoms_are_answered_in_japanese(text: str, causes: set[str]) -> None:
    d = diagnose(text)
    assert d.reply, [(c.id, c.score) for c in d.causes]
    assert d.lang == "ja"
    assert causes & {c.id for c in d.causes[:3]}, [(c.id, c.score) for c in d.causes]
    rendered = render_text(d)
    assert "考えられる原因" in rendered and "Likely cause" not in rendered


@pytest.mark.parametrize(
    "text",
    [
        "docker push は成功するが、docker pull が \"権限がありません: 認証が必要です\" というエラーで失敗する",
        "Error response from daemon: Get https://myreg.azurecr.io/v2/: dial tcp 20.1.2.3:443: i/o タイムアウト",
        "ｄｏｃｋｅｒ　ｐｕｌｌ　ｍｙｒｅｇ．ａｚｕｒｅｃｒ．ｉｏ／ａｐｐ：ｖ１　→　ｕｎａｕｔｈｏｒｉｚｅｄ：　ａｕｔｈｅｎｔｉｃａｔｉｏｎ　ｒｅｑｕｉｒｅｄ",
    ],
)
def test_localised_and_full_width_errors_are_read(text: str) -> None:
    d = diagnose(text)
    assert d.reply and d.cause != "unrelated", [(c.id, c.score) for c in d.causes]


def test_full_width_paste_keeps_its_facts() -> None:
    d = diagnose("ｄｉａｌ　ｔｃｐ：　ｌｏｏｋｕｐ　ｍｙｒｅｇ．ａｚｕｒｅｃｒ．ｉｏ：　ｎｏ　ｓｕｃｈ　ｈｏｓｔ")
    assert d.facts.login_server == "myreg.azurecr.io"
    assert d.cause == "registry-not-found"


def test_japanese_prose_around_an_english_error_gets_a_japanese_reply() -> None:
    text = "昨日から pull できません。\n```\nError response from daemon: Get \"https://myreg.azurecr.io/v2/\": proxyconnect tcp: EOF\n```"
    d = diagnose(text)
    assert (d.cause, d.lang) == ("client-proxy", "ja")
    rendered = render_text(d)
    assert "ユーザーの貼り付けから" in rendered and VANTAGE_PASTE not in rendered
    assert diagnose(text, lang="en").lang == "en"


def test_cli_replies_in_the_paste_language_unless_told() -> None:
    text = "プロキシ経由で pull すると proxyconnect tcp: EOF が発生します myreg.azurecr.io"
    out = io.StringIO()
    assert main(["diagnose", text], stdout=out) == 0
    assert "考えられる原因" in out.getvalue()
    out = io.StringIO()
    assert main(["diagnose", "--lang", "en", text], stdout=out) == 0
    assert "Likely cause" in out.getvalue()


@pytest.mark.parametrize(
    ("english", "japanese"),
    [
        ("resolves to 10.0.0.4 (private) via x.privatelink.azurecr.io [system resolver]",
         "10.0.0.4 (private) に解決されます (経由: x.privatelink.azurecr.io) [system resolver]"),
        ("no DNS answer within 3 s [8.8.8.8]", "3 秒以内に DNS の応答がありません [8.8.8.8]"),
        ("denied by the registry firewall at 20.1.2.3:443: 403 DENIED (client 1.2.3.4)",
         "レジストリのファイアウォールが拒否しました 20.1.2.3:443: 403 DENIED (client 1.2.3.4)"),
        ("timeout via the proxy: no TLS handshake within 5 s", "タイムアウト プロキシ経由: 5 秒以内に TLS handshake がありません"),
        ("proxy http://p:3128 requires authentication (407) for CONNECT x.azurecr.io:443",
         "プロキシ http://p:3128 が CONNECT x.azurecr.io:443 に認証 (407) を要求しました"),
        ("reachable at 1.2.3.4:443: /v2/ answered 401 with a Bearer challenge (network OK); certificate issued by DigiCert",
         "到達可能 1.2.3.4:443: /v2/ が Bearer チャレンジ付きの 401 を返しました (ネットワークは正常)。証明書の発行者: DigiCert"),
        ("something new at 1.2.3.4:443", "something new at 1.2.3.4:443"),
    ],
)  # fmt: skip
def test_live_evidence_lines_in_japanese(english: str, japanese: str) -> None:
    assert localize_detail(english, "ja") == japanese
    assert localize_detail(english, "en") == english


def test_vantage_in_japanese() -> None:
    assert localize_vantage(VANTAGE_PASTE, "ja") == "ユーザーの貼り付けから"
    assert localize_vantage("the user's machine: laptop-7 (acrcheck probe)", "ja") == "ユーザーのマシン: laptop-7 (acrcheck probe)"
    assert localize_vantage("the bot's network", "ja") == "ボットのネットワーク"
    assert localize_vantage("office network", "ja") == "office network"


def test_normalize_is_linear_on_huge_japanese_input() -> None:
    text = "日本語のエラー dial tcp i/o タイムアウト myreg.azurecr.io\n" * 30_000
    assert "タイムアウト" in normalize(text)
