"""What the agent is told: the system prompt with the skill, and observations of the
code it ran, cut to head + tail."""

from __future__ import annotations

from pathlib import Path

from t2s import sandbox
from t2s.agent.bundle import SkillBundle
from t2s.prompts import load as prompt, render


def truncate(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to ``limit`` characters, keeping head and tail, with a marker."""
    if limit <= 0 or len(text) <= limit:
        return text, False
    head = limit * 2 // 3
    tail = limit - head
    cut = len(text) - head - tail
    return f"{text[:head]}\n[... {cut} characters cut ...]\n{text[-tail:]}", True


def format_exec(tool: str, result: sandbox.ExecResult, limit: int) -> tuple[str, bool]:
    parts = [f"[{tool}] {result.verdict} in {result.duration_s:.1f} s"]
    out = result.stdout or ""
    err = result.stderr or ""
    if out.strip():
        parts.append("stdout:\n" + out.rstrip())
    if err.strip():
        parts.append("stderr:\n" + err.rstrip())
    if not out.strip() and not err.strip():
        parts.append("(no output)")
    text, cut = truncate("\n".join(parts), limit)
    return text, cut or result.truncated


def _relativise(text: str, workdir: Path) -> str:
    """Show paths inside the work directory as relative paths (stable prompts, so the
    response cache keys do not depend on a temporary directory's name)."""
    for form in {str(workdir), str(Path(workdir).resolve())}:
        text = text.replace(form.rstrip("/") + "/", "")
    return text


def skill_files_section(skill: SkillBundle, protocol: str, on_disk: bool) -> str:
    files = skill.other_files
    if not files:
        return "This skill has no other files."
    how = (
        "Read one with `READ_SKILL_FILE: <path>` when it is relevant."
        if protocol == "text"
        else "Read one with the read_skill_file tool when it is relevant."
    )
    lines = [how, ""] + [f"- {p}" for p in files]
    if on_disk:
        lines += [
            "",
            "The whole skill folder is also on disk at `skill/` in the working directory (run its scripts from there).",
        ]
    return "\n".join(lines)


def system_prompt(skill: SkillBundle, protocol: str, *, on_disk: bool = False) -> str:
    proto = prompt("agent_text_protocol.md" if protocol == "text" else "agent_tools_protocol.md")
    return (
        render(
            prompt("agent_system.md"),
            protocol=proto.strip(),
            skill_name=skill.name,
            skill_body=skill.body,
            skill_files=skill_files_section(skill, protocol, on_disk),
        ).strip()
        + "\n"
    )
