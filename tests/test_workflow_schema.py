"""Every workflow file (the project's and the skill-repo template) against GitHub's
workflow schema (check-jsonschema's vendored copy: offline), the template's sharded
evaluation, and docs/scale.md's Kubernetes manifest (kubernetes-validate's schemas) and
SLURM script."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from t2s.record import refs
from t2s.skill.repo import TEMPLATES

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = [*sorted((ROOT / ".github" / "workflows").glob("*.y*ml")), TEMPLATES / "workflow-t2s.yml"]
BIN = Path(sys.executable).parent


def check_workflows(*paths: Path) -> subprocess.CompletedProcess:
    tool = BIN / "check-jsonschema"
    if not tool.exists():
        pytest.skip("check-jsonschema is not installed (it comes with the test extra)")
    return subprocess.run(
        [str(tool), "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_workflow_file_is_valid_for_github():
    assert len(WORKFLOWS) >= 2
    out = check_workflows(*WORKFLOWS)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_schema_check_catches_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps: 3\n")
    out = check_workflows(bad)
    assert out.returncode == 1 and "steps" in out.stdout + out.stderr


def test_the_template_evaluates_in_shards_then_collects_and_gates():
    jobs = yaml.safe_load((TEMPLATES / "workflow-t2s.yml").read_text())["jobs"]
    assert "T2S_EVAL_SHARDS" in str(jobs["shards"]["steps"])
    evaluation = jobs["eval"]
    assert evaluation["needs"] == "shards"
    assert evaluation["strategy"]["matrix"]["shard"] == "${{ fromJSON(needs.shards.outputs.matrix) }}"
    assert evaluation["env"]["T2S_SHARD"] == "${{ matrix.shard }}/${{ needs.shards.outputs.count }}"
    run = "\n".join(str(step.get("run", "")) for step in evaluation["steps"])
    assert "--shard auto" in run and "eval-shard-" in run
    assert set(jobs["gate"]["needs"]) == {"lint", "eval"}
    # the step's shell turns T2S_SHARD=K/N into the notes ref t2s writes for the shard
    push = next(step["run"] for step in evaluation["steps"] if "git push" in str(step.get("run", "")))
    label_line = next(line for line in push.splitlines() if line.startswith("label="))
    shown = subprocess.run(
        ["bash", "-c", f'T2S_SHARD=3/8; {label_line}; echo "refs/notes/t2s/eval-shard-$label"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert shown == refs.eval_shard_notes(refs.shard_label(3, 8))


def _block(language: str, must_contain: str) -> str:
    text = (ROOT / "docs" / "scale.md").read_text()
    blocks = re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)
    return next(b for b in blocks if must_contain in b)


def test_the_kubernetes_manifest_is_a_valid_indexed_job(tmp_path):
    manifest = _block("yaml", "kind: Job")
    job = yaml.safe_load(manifest)
    assert job["spec"]["completionMode"] == "Indexed"
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["T2S_SHARD_COUNT"] == str(job["spec"]["completions"])
    assert "t2s eval" in manifest and "--shard auto" in manifest
    tool = BIN / "kubernetes-validate"
    if not tool.exists():
        pytest.skip("kubernetes-validate is not installed (it comes with the test extra)")
    good = tmp_path / "job.yaml"
    good.write_text(manifest)
    out = subprocess.run([str(tool), "--strict", str(good)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(manifest.replace("completions: 8", "completions: eight"))
    out = subprocess.run([str(tool), "--strict", str(bad)], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0  # the validator has teeth


def test_the_slurm_script_is_valid_bash_running_a_shard(tmp_path):
    script = _block("bash", "#SBATCH --array")
    path = tmp_path / "eval.sbatch"
    path.write_text(script)
    subprocess.run(["bash", "-n", str(path)], check=True)
    assert "t2s eval" in script and "--shard auto" in script and "git push" in script
