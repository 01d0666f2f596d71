"""The skill an agent works with: its files, read from git at S0 or from a folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from t2s.errors import T2SError
from t2s.skill.format import SKILL_FILE, parse_skill_md, read_skill_dir, skill_body


@dataclass
class SkillBundle:
    """A skill as the agent sees it: its files (read from git, never the working tree)."""

    skill_dir: str
    files: dict[str, bytes]
    tree: str | None = None
    s0: str | None = None

    @classmethod
    def from_git(cls, store, rev: str, skill_dir: str) -> SkillBundle:
        """The skill in folder ``skill_dir`` of commit ``rev``."""
        commit = store.resolve(rev)
        tree = store.subtree(commit, skill_dir)
        if not tree:
            raise T2SError(f"{skill_dir} does not exist at {rev} ({commit[:12]})")
        files = store.read_files(commit, skill_dir)
        if SKILL_FILE not in files:
            raise T2SError(f"{skill_dir}/{SKILL_FILE} does not exist at {rev} ({commit[:12]})")
        return cls(skill_dir=skill_dir, files=files, tree=tree, s0=commit)

    @classmethod
    def from_dir(cls, path: Path) -> SkillBundle:

        files, _ = read_skill_dir(Path(path))
        if SKILL_FILE not in files:
            raise T2SError(f"{path}: no {SKILL_FILE}")
        return cls(skill_dir=Path(path).name, files=files)

    @property
    def name(self) -> str:
        try:
            return parse_skill_md(self.text(SKILL_FILE)).name or PurePosixPath(self.skill_dir).name
        except T2SError:
            return PurePosixPath(self.skill_dir).name

    def text(self, rel: str) -> str:
        return self.files[rel].decode("utf-8", errors="replace")

    @property
    def body(self) -> str:
        return skill_body(self.text(SKILL_FILE)).strip()

    @property
    def other_files(self) -> list[str]:
        return sorted(p for p in self.files if p != SKILL_FILE)

    @property
    def has_scripts(self) -> bool:
        return any(not p.endswith(".md") for p in self.other_files)

    def resolve(self, path: str) -> str | None:
        """The skill file a model meant by ``path`` (lenient: prefixes, ``./``, quotes)."""
        text = str(path or "").strip().strip("`'\"").strip()
        text = text.replace("\\", "/")
        name = PurePosixPath(self.skill_dir).name
        for prefix in (self.skill_dir.rstrip("/") + "/", f"skills/{name}/", f"{name}/", "skill/", "./", "/"):
            if text.startswith(prefix):
                text = text[len(prefix) :]
        parts: list[str] = []
        for part in PurePosixPath(text).parts:
            if part in ("", "."):
                continue
            if part == "..":
                return None
            parts.append(part)
        rel = "/".join(parts)
        if rel in self.files:
            return rel
        for candidate in (f"references/{rel}", f"{rel}.md", f"references/{rel}.md"):
            if candidate in self.files:
                return candidate
        lowered = {p.lower(): p for p in self.files}
        return lowered.get(rel.lower())
