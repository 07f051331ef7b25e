"""Language of a paste, and Japanese for the evidence lines that live checks write in English.

A reply follows the language the user wrote in: Japanese prose (or a Japanese-localised
error) around a paste means a Japanese reply, unless the caller says otherwise (``--lang``,
the user's Slack locale). Kana decide it: Chinese text has none, and English logs with a
stray Japanese file name have too few.

Live checks describe what they saw in English (``resolves to 10.0.0.4 via ...``); the
renderers pass those lines through ``localize_detail`` and ``localize_vantage`` so a
Japanese reply is Japanese throughout, with the technical values (hosts, addresses,
codes) kept as they are. Lines no pattern knows stay English rather than being guessed.
"""

from __future__ import annotations

import re

SUPPORTED = ("en", "ja")
_KANA = re.compile(r"[\u3041-\u309f\u30a1-\u30fa\u30fc]")
#: Kana needed before a paste counts as Japanese ("エラー" alone is three).
MIN_KANA = 3
_SAMPLE = 20_000


def detect_lang(text: str) -> str:
    """``ja`` when the paste is written (or localised) in Japanese, else ``en``."""
    if text.isascii():
        return "en"
    sample = text if len(text) <= 2 * _SAMPLE else text[:_SAMPLE] + text[-_SAMPLE:]
    for count, _ in enumerate(_KANA.finditer(sample), 1):
        if count >= MIN_KANA:
            return "ja"
    return "en"


def resolve_lang(requested: str | None, text: str) -> str:
    """The explicit choice when there is one, else the paste's own language."""
    if requested in SUPPORTED:
        return requested
    return detect_lang(text)


_VANTAGES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^from the user's paste$"), "ユーザーの貼り付けから"),
    (re.compile(r"^the user's machine \(acrcheck probe\)$"), "ユーザーのマシン (acrcheck probe)"),
    (re.compile(r"^the user's machine: (.+) \(acrcheck probe\)$"), r"ユーザーのマシン: \1 (acrcheck probe)"),
    (re.compile(r"^the bot's network$"), "ボットのネットワーク"),
]


def localize_vantage(vantage: str, lang: str) -> str:
    """Where an observation was made, in the reply's language."""
    if lang != "ja":
        return vantage
    for pattern, template in _VANTAGES:
        if pattern.match(vantage):
            return pattern.sub(template, vantage)
    return vantage


#: English evidence lines of the live checks (bot/checks) and their Japanese form. Values
#: captured from the English line are kept verbatim; order matters (first match wins).
_DETAILS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^resolves to (.+?) via (.+?)( \[.+\])?$"), r"\1 に解決されます (経由: \2)\3"),
    (re.compile(r"^resolves to (.+?)( \[.+\])?$"), r"\1 に解決されます\2"),
    (re.compile(r"^no DNS answer within (\S+) s(.*)$"), r"\1 秒以内に DNS の応答がありません\2"),
    (re.compile(r"^lookup failed: (.+)$"), r"名前解決に失敗しました: \1"),
    (re.compile(r"^DNS not checked: (.+)$"), r"DNS は確認していません: \1"),
    (re.compile(r"^DNS (\S+): (.+)$"), r"DNS \1: \2"),
    (
        re.compile(r"^reachable (.+?): /v2/ answered 401 with a Bearer challenge \(network OK\)(.*)$"),
        r"到達可能 \1: /v2/ が Bearer チャレンジ付きの 401 を返しました (ネットワークは正常)\2",
    ),
    (
        re.compile(r"^denied by the registry firewall (.+?): 403 DENIED(.*)$"),
        r"レジストリのファイアウォールが拒否しました \1: 403 DENIED\2",
    ),
    (
        re.compile(r"^reachable (.+?): /v2/ answered 200 without credentials \(anonymous access\)(.*)$"),
        r"到達可能 \1: /v2/ が資格情報なしで 200 を返しました (匿名アクセス)\2",
    ),
    (
        re.compile(r"^(.+?): /v2/ answered HTTP (\d+) \(registry-side error or throttling\)(.*)$"),
        r"\1: /v2/ が HTTP \2 を返しました (レジストリ側のエラーまたは調整)\3",
    ),
    (
        re.compile(r"^reachable (.+?): HTTP (\d+) from the data endpoint(.*)$"),
        r"到達可能 \1: データ エンドポイントから HTTP \2\3",
    ),
    (
        re.compile(r"^(.+?): /v2/ answered HTTP (\d+)(.*?) \(not the registry's usual answer\)(.*)$"),
        r"\1: /v2/ が HTTP \2\3 を返しました (レジストリの通常の応答ではありません)\4",
    ),
    (re.compile(r"^(.+?): /v2/ answered HTTP (\d+)(.*)$"), r"\1: /v2/ が HTTP \2 を返しました\3"),
    (
        re.compile(r"^TLS (.+?): the certificate is not valid for (\S+) \((.+)\)(.*)$"),
        r"TLS \1: 証明書は \2 に対して有効ではありません (\3)\4",
    ),
    (re.compile(r"^TLS (.+?): certificate not trusted \((.+)\)(.*)$"), r"TLS \1: 証明書が信頼されていません (\2)\3"),
    (re.compile(r"^timeout (.+?): no (.+?) within (\S+) s(.*)$"), r"タイムアウト \1: \3 秒以内に \2 がありません\4"),
    (re.compile(r"^connection reset (.+)$"), r"接続がリセットされました \1"),
    (re.compile(r"^connection closed without an answer (.+)$"), r"応答なしで接続が閉じられました \1"),
    (re.compile(r"^connection refused (.+)$"), r"接続が拒否されました \1"),
    (re.compile(r"^TLS handshake failed (.+?): (.+)$"), r"TLS ハンドシェイクに失敗しました \1: \2"),
    (
        re.compile(r"^proxy (\S+) requires authentication \(407\) for CONNECT (.+)$"),
        r"プロキシ \1 が CONNECT \2 に認証 (407) を要求しました",
    ),
    (re.compile(r"^proxy (\S+) refused CONNECT (.+) \(403\)$"), r"プロキシ \1 が CONNECT \2 を拒否しました (403)"),
    (re.compile(r"^proxy (\S+) answered CONNECT (.+?) with (.+)$"), r"プロキシ \1 が CONNECT \2 に \3 を返しました"),
    (re.compile(r"^proxy (\S+) is unreachable \((.+)\)$"), r"プロキシ \1 に到達できません (\2)"),
    (
        re.compile(r"^proxy (\S+) accepted the connection but never answered CONNECT$"),
        r"プロキシ \1 は接続を受け付けましたが CONNECT に応答しませんでした",
    ),
    (
        re.compile(r"^proxy (\S+) failed before the tunnel was up: (.+)$"),
        r"プロキシ \1 はトンネル確立前に失敗しました: \2",
    ),
    (
        re.compile(r"^client IP (\S+) \((.+?)\) cannot reach the public endpoint: public network access is Disabled$"),
        r"クライアント IP \1 (\2) はパブリック エンドポイントに到達できません: パブリック ネットワーク アクセスが無効です",
    ),
    (
        re.compile(
            r"^client IP (\S+) \((.+?)\) is allowed: the registry accepts all networks \(defaultAction Allow\)$"
        ),
        r"クライアント IP \1 (\2) は許可されています: レジストリはすべてのネットワークを受け付けます (defaultAction Allow)",
    ),
    (
        re.compile(r"^client IP (\S+) \((.+?)\) is inside allowed rule (.+)$"),
        r"クライアント IP \1 (\2) は許可規則 \3 に含まれています",
    ),
    (
        re.compile(r"^client IP (\S+) \((.+?)\) is not in the registry's IP allow list \((.+)\)$"),
        r"クライアント IP \1 (\2) はレジストリの IP 許可リストにありません (\3)",
    ),
    (
        re.compile(r"^no Azure registry endpoint in the paste, so no live check was run$"),
        "貼り付けに Azure レジストリのエンドポイントがないため、ライブ チェックは実行していません",
    ),
]
#: Clauses the checks append to a line (checked from the end, repeatedly).
_TAILS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"; the login server answers, so only the data path is blocked$"),
        "。ログイン サーバーは応答するため、データ経路だけがブロックされています",
    ),
    (re.compile(r"; no time left to read the certificate$"), "。証明書を読み取る時間が残っていません"),
    (re.compile(r" \(from Resource Graph\)$"), " (Resource Graph から)"),
    (re.compile(r" \(correlation id (\S+)\)$"), r" (相関 ID \1)"),
    (re.compile(r"; certificate issued by ([^;]+)$"), r"。証明書の発行者: \1"),
    (re.compile(r"; it is issued for ([^;]+)$"), r"。証明書の発行先: \1"),
    (
        re.compile(r"; issuer '([^']+)' is a public CA missing from this machine's trust store$"),
        r"。発行者 '\1' はこのマシンの信頼ストアにない公的 CA です",
    ),
]


def localize_detail(detail: str, lang: str) -> str:
    """An evidence line in the reply's language (unknown shapes stay as they are)."""
    if lang != "ja" or not detail.isascii():
        return detail
    tail = ""
    changed = True
    while changed:
        changed = False
        for pattern, template in _TAILS:
            match = pattern.search(detail)
            if match:
                tail = match.expand(template) + tail
                detail = detail[: match.start()]
                changed = True
    for pattern, template in _DETAILS:
        if pattern.match(detail):
            # the checks' "at 1.2.3.4:443" / "via the proxy" say where the probe connected
            detail = pattern.sub(template, detail, count=1).replace("via the proxy", "プロキシ経由")
            return re.sub(r"(^| )at (\S+:\d+)", r"\1\2", detail) + tail
    return detail + tail
