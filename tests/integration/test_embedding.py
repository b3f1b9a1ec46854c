"""docs/embedding.md is true: its Python example runs as written, from a clone's root, and what it
prints is what the engine decided (the refund ids of the sample scenarios, as `refund list` shows)."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import REPO


def test_the_embedding_example_runs(tmp_path):
    text = (REPO / "docs/embedding.md").read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n(.*?)```", text, re.S)
    # run from a copy of the paths it names: sample_edi/ read in place, outputs in tmp_path
    code = code.replace('Path("sample_edi', f'Path("{REPO}/sample_edi')
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()  # the engine's structlog events go to stdout too, unless configured
    assert lines[0] == "1 []"  # remit-1.835: one claim payment, no finding
    (second,) = [line for line in lines if line.startswith("['RF-")]
    refund_ids = re.findall(r"'(RF-[0-9A-F]{16})'", second)
    written = [line.split(",", 1)[0] for line in (tmp_path / "out" / "refund_requests.csv").read_text().splitlines()[1:]]
    assert refund_ids and refund_ids == sorted(written)
