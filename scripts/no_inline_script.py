#!/usr/bin/env python3
"""Trunk's post-build hook (Trunk.toml): moves every inline <script> Trunk wrote into the built
index.html (the wasm loader) into a file beside it, named by its content, so the page's
Content-Security-Policy (a <meta> in index.html, which works on any static host) allows only
the page's own files and no inline script."""
import hashlib
import os
import pathlib
import re

SCRIPT = re.compile(r"<script(?P<attrs>[^>]*)>(?P<body>.*?)</script>", re.S)


def main():
    staging = pathlib.Path(os.environ["TRUNK_STAGING_DIR"])
    public_url = os.environ.get("TRUNK_PUBLIC_URL", "/")
    page = staging / "index.html"

    def externalize(match):
        attrs = match["attrs"]
        if re.search(r"\ssrc=", attrs):
            return match[0]
        body = match["body"]
        name = f"boot-{hashlib.sha256(body.encode()).hexdigest()[:16]}.js"
        (staging / name).write_text(body)
        # A nonce would be the same for every visitor of a static file: worthless.
        attrs = re.sub(r'\s+nonce="[^"]*"', "", attrs)
        return f'<script{attrs} src="{public_url}{name}"></script>'

    page.write_text(SCRIPT.sub(externalize, page.read_text()))


if __name__ == "__main__":
    main()
