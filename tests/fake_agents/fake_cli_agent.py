"""A small CLI agent for the `harness = "command"` tests, run as a real subprocess.

    fake_cli_agent.py MODE --output PATH [--skills DIR]

Modes: ``solve`` (reads the task prompt on stdin, copies column A into column B of the
input workbook, writes a Claude-Code-style ``stream-json`` transcript to stdout),
``wrong`` (the same, stripping the texts), ``hang`` (never ends), ``silent`` (writes
nothing, exits 0), ``flood`` (writes to stdout without end), ``crash`` (exits 3).
"""

import json
import re
import sys
import time
from pathlib import Path


def emit(line):
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def main():
    mode = sys.argv[1]
    output = Path(sys.argv[sys.argv.index("--output") + 1])
    skills = Path(sys.argv[sys.argv.index("--skills") + 1]) if "--skills" in sys.argv else None
    if mode == "hang":
        while True:
            time.sleep(3600)
    if mode == "flood":
        chunk = "x" * 65536 + "\n"
        while True:
            sys.stdout.write(chunk)
    if mode == "crash":
        sys.exit(3)
    prompt = sys.stdin.read()
    if mode == "silent":
        return
    skill = next(skills.glob("*/SKILL.md")) if skills else None
    inp = re.search(r"Input workbook: (\S+)", prompt).group(1)
    code = (
        "import openpyxl\n"
        f"wb = openpyxl.load_workbook({inp!r})\nws = wb.worksheets[0]\n"
        "for r in range(1, 4):\n"
        f"    ws.cell(r, 2).value = ws.cell(r, 1).value{'.strip()' if mode == 'wrong' else ''}\n"
        f"wb.save({str(output)!r})\n"
    )
    sid = "fake-session"
    emit({"type": "system", "subtype": "init", "session_id": sid, "model": "fake-model", "tools": ["Bash"]})
    emit({"type": "user", "sessionId": sid, "message": {"role": "user", "content": prompt}})
    emit(
        {
            "type": "assistant",
            "sessionId": sid,
            "message": {
                "id": "msg_1",
                "role": "assistant",
                "model": "fake-model",
                "content": [
                    {"type": "text", "text": f"Reading the skill at {skill.parent.name if skill else 'none'}."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "Bash",
                        "input": {"command": f"python - <<'PY'\n{code}PY"},
                    },
                ],
                "usage": {"input_tokens": 300, "output_tokens": 40},
            },
        }
    )
    exec(code, {})
    emit(
        {
            "type": "user",
            "sessionId": sid,
            "message": {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "saved"}],
            },
        }
    )
    emit(
        {
            "type": "assistant",
            "sessionId": sid,
            "message": {
                "id": "msg_2",
                "role": "assistant",
                "model": "fake-model",
                "content": [{"type": "text", "text": "Done."}],
                "usage": {"input_tokens": 350, "output_tokens": 5},
            },
        }
    )
    emit({"type": "result", "subtype": "success", "session_id": sid, "num_turns": 2})


main()
