"""Edits in memory: each op, each failure message, path guardrails, leaks, overlaps."""

from __future__ import annotations

import json

import pytest
import unidiff
from pydantic import ValidationError

from t2s.patches.diff import unified_diff
from t2s.patches.edits import EditError, EditList, edit_list_schema, headings, parse_edits
from t2s.patches.guardrails import check_edit_path
from t2s.patches.leaks import distinctive_values, find_leaks, is_distinctive
from t2s.patches.overlaps import find_overlaps
from t2s.patches.render import render_edits
from t2s.patches.retries import edit_format_prompt
from t2s.skill.format import Limits

SKILL = """\
---
name: demo
description: Work with spreadsheets in a demo.
---

# Demo

## Workflow

- Open the workbook with openpyxl.
- Write the answer cells.

### Details

Keep formulas as formulas.

## Pitfalls

- Merged cells hide values.

See [formulas](references/formulas.md).
"""
FORMULAS = "# Formulas\n\nUse SUM for totals.\n"
S0 = {"SKILL.md": SKILL, "references/formulas.md": FORMULAS, "scripts/run.py": "print('hi')\n"}
DIR = "skills/demo"


def render(edits, files=S0, **kw):
    return render_edits(files, edits, skill_dir=DIR, **kw)


def ok(edits, files=S0, **kw):
    result = render(edits, files, **kw)
    assert result.ok, result.feedback()
    unidiff.PatchSet(result.diff)  # always parses
    assert "\r" not in result.diff
    return result


def fail(edits, files=S0, **kw):
    result = render(edits, files, **kw)
    assert not result.ok
    assert result.diff == ""
    return result.failures


# ---------------------------------------------------------------------- ops
def test_insert_after_and_before_an_anchor():
    r = ok(
        [
            {"op": "insert", "anchor": "- Open the workbook", "position": "after", "text": "- Check the sheet name."},
            {"op": "insert", "anchor": "## Pitfalls", "position": "before", "text": "## Checks\n\nRe-read the task.\n"},
        ]
    )
    text = r.files["SKILL.md"]
    assert "- Open the workbook with openpyxl.\n- Check the sheet name.\n- Write" in text
    assert "Keep formulas as formulas.\n\n## Checks\n\nRe-read the task.\n## Pitfalls" in text
    assert r.added == 4 and r.removed == 0
    assert r.paths == ["skills/demo/SKILL.md"]
    assert r.diff.startswith(
        "diff --git a/skills/demo/SKILL.md b/skills/demo/SKILL.md\n--- a/skills/demo/SKILL.md\n+++ b/skills/demo/SKILL.md\n@@ "
    )


def test_replace_and_delete():
    r = ok(
        [
            {"op": "replace", "old": "Merged cells hide values.", "new": "Merged cells hide values; unmerge first."},
            {"op": "replace", "old": "- Write the answer cells.\n", "new": ""},
        ]
    )
    assert "unmerge first" in r.files["SKILL.md"]
    assert "Write the answer" not in r.files["SKILL.md"]
    assert (r.added, r.removed) == (1, 2)


def test_append_to_section_continues_a_list_and_lands_after_subsections():
    r = ok(
        [
            {"op": "append_to_section", "heading": "Pitfalls", "text": "Dates are serial numbers."},
            {"op": "append_to_section", "heading": "## Workflow", "text": "- Save with a new name."},
        ]
    )
    text = r.files["SKILL.md"]
    # after the subsection "### Details", separated by a blank line (not a list there)
    assert "Keep formulas as formulas.\n\n- Save with a new name.\n\n## Pitfalls" in text
    assert text.endswith("See [formulas](references/formulas.md).\n\nDates are serial numbers.\n")


def test_append_to_section_continues_list_directly():
    r = ok([{"op": "append_to_section", "heading": "### Details", "text": "Also values."}])
    assert "Keep formulas as formulas.\n\nAlso values.\n\n## Pitfalls" in r.files["SKILL.md"]
    files = dict(
        S0,
        **{
            "SKILL.md": SKILL.replace(
                "\nSee [formulas](references/formulas.md).\n", "- [formulas](references/formulas.md)\n"
            )
        },
    )
    r = ok([{"op": "append_to_section", "heading": "pitfalls", "text": "- Hidden rows count too."}], files)
    assert "- [formulas](references/formulas.md)\n- Hidden rows count too.\n" in r.files["SKILL.md"]


def test_add_section_after_a_section_and_at_the_end():
    r = ok(
        [
            {"op": "add_section", "heading": "## Checks", "body": "Re-open the file.", "after": "Workflow"},
            {"op": "add_section", "heading": "Last words", "body": "Be careful.", "after": None},
        ]
    )
    text = r.files["SKILL.md"]
    assert "Keep formulas as formulas.\n\n## Checks\n\nRe-open the file.\n\n## Pitfalls" in text
    assert text.endswith("references/formulas.md).\n\n## Last words\n\nBe careful.\n")


def test_create_reference_linked_in_the_same_patch():
    r = ok(
        [
            {
                "op": "create_reference",
                "file": "references/dates.md",
                "content": "# Dates\n\nSerial numbers start in 1900.",
            },
            {
                "op": "append_to_section",
                "heading": "Pitfalls",
                "text": "- [Dates](references/dates.md): read for date cells.",
            },
        ]
    )
    assert r.files["references/dates.md"] == "# Dates\n\nSerial numbers start in 1900.\n"
    assert "new file mode 100644\n--- /dev/null\n+++ b/skills/demo/references/dates.md\n@@ -0,0 +1,3 @@\n" in r.diff
    assert r.paths == ["skills/demo/SKILL.md", "skills/demo/references/dates.md"]


def test_append_to_reference_and_skill_dir_prefix_is_accepted():
    r = ok(
        [{"op": "append_to_reference", "file": "skills/demo/references/formulas.md", "text": "Use AVERAGE for means."}]
    )
    assert r.files == {"references/formulas.md": FORMULAS + "\nUse AVERAGE for means.\n"}


def test_edits_apply_in_order_on_new_text():
    r = ok(
        [
            {"op": "append_to_section", "heading": "Pitfalls", "text": "- Totals row: never sum it twice."},
            {"op": "replace", "old": "never sum it twice", "new": "exclude it from sums"},
        ]
    )
    assert r.files["SKILL.md"].endswith("references/formulas.md).\n\n- Totals row: exclude it from sums.\n")


def test_unicode_text_and_crlf_free_output():
    r = ok(
        [
            {
                "op": "append_to_section",
                "heading": "Pitfalls",
                "text": "- Währung: « € » and 日本語 headers.\r\n- Ünïcödé ✓\r\n",
            },
        ]
    )
    assert "- Währung: « € » and 日本語 headers.\n- Ünïcödé ✓\n" in r.files["SKILL.md"]
    assert "\r" not in r.files["SKILL.md"]


def test_file_without_trailing_newline():
    files = dict(S0, **{"references/formulas.md": "# Formulas\n\nUse SUM for totals."})
    r = ok([{"op": "append_to_reference", "file": "references/formulas.md", "text": "More."}], files)
    assert r.files["references/formulas.md"] == "# Formulas\n\nUse SUM for totals.\n\nMore.\n"
    assert "-Use SUM for totals.\n\\ No newline at end of file\n+Use SUM for totals.\n" in r.diff
    # an edit elsewhere keeps the missing newline
    r = ok([{"op": "replace", "file": "references/formulas.md", "old": "# Formulas", "new": "# Formula notes"}], files)
    assert r.files["references/formulas.md"] == "# Formula notes\n\nUse SUM for totals."
    assert r.diff.endswith(" Use SUM for totals.\n\\ No newline at end of file\n")


def test_crlf_file_keeps_its_line_ends():
    files = dict(S0, **{"references/formulas.md": FORMULAS.replace("\n", "\r\n")})
    result = render([{"op": "append_to_reference", "file": "references/formulas.md", "text": "More.\n"}], files)
    assert result.ok, result.feedback()
    assert result.files["references/formulas.md"] == "# Formulas\r\n\r\nUse SUM for totals.\r\n\r\nMore.\r\n"
    assert unidiff.PatchSet(result.diff)[0].added == 2


def test_headings_ignore_code_fences_and_frontmatter():
    text = "---\nname: x\n# not: a heading\n---\n# Title\n```\n## not a heading\n```\n## Real\n"
    assert [(h.level, h.title) for h in headings(text.splitlines(keepends=True))] == [(1, "Title"), (2, "Real")]


# ---------------------------------------------------------------------- failures
def one(failures):
    assert len(failures) == 1, failures
    return failures[0]


def test_anchor_missing_names_the_edit_and_the_closest_line():
    f = one(
        fail(
            [
                {"op": "append_to_section", "heading": "Pitfalls", "text": "- fine"},
                {"op": "insert", "anchor": "Open the work book in pandas", "text": "x"},
            ]
        )
    )
    assert (f.index, f.op, f.file) == (2, "insert", "SKILL.md")
    # Too far from every line to be resolved (see test_real_model_slips.py): the closest lines are shown.
    assert f.reason.startswith(
        "the anchor text occurs 0 times in SKILL.md and no single line matches it closely enough; closest text (line 10"
    )
    assert "Open the workbook with openpyxl" in f.reason
    assert f.render().startswith("edit 2 (insert) on SKILL.md: the anchor text occurs 0 times")


def test_replace_missing_and_ambiguous():
    f = one(fail([{"op": "replace", "old": "Merged cels show values", "new": "x"}]))
    assert f.reason.startswith(
        "the text to replace occurs 0 times in SKILL.md and no single line matches it closely enough; "
        "closest text (line 19, 80% similar): '- Merged cells hide values.'"
    )
    f = one(fail([{"op": "replace", "old": "formulas", "new": "x"}]))
    assert f.reason == (
        "the text to replace occurs 4 times in SKILL.md (on lines 15, 21); "
        "include more surrounding text so that it occurs exactly once"
    )


def test_anchor_ambiguous():
    f = one(fail([{"op": "insert", "anchor": "- ", "text": "x"}]))
    assert "occurs 3 times in SKILL.md" in f.reason


def test_section_missing_and_ambiguous():
    f = one(fail([{"op": "append_to_section", "heading": "## Pitfall list", "text": "x"}]))
    assert f.reason.startswith("no heading 'Pitfall list' in SKILL.md; closest heading: 'Pitfalls'")
    files = dict(S0, **{"SKILL.md": SKILL + "\n### Pitfalls\n\nmore\n"})
    f = one(fail([{"op": "append_to_section", "heading": "Pitfalls", "text": "x"}], files))
    assert "occurs 2 times" in f.reason
    r = ok([{"op": "append_to_section", "heading": "### Pitfalls", "text": "x"}], files)
    assert r.files["SKILL.md"].endswith("more\n\nx\n")


def test_add_section_that_exists():
    f = one(fail([{"op": "add_section", "heading": "## pitfalls", "body": "x"}]))
    assert "already exists in SKILL.md (line 17); use append_to_section" in f.reason


def test_reference_exists_already():
    f = one(fail([{"op": "create_reference", "file": "references/formulas.md", "content": "# F\n"}]))
    assert f.reason.startswith("references/formulas.md already exists")


def test_reference_not_linked():
    f = one(fail([{"op": "create_reference", "file": "references/dates.md", "content": "# Dates\n\nx"}]))
    assert f.index is None and f.file == "references/dates.md"
    assert "SKILL.md does not link to it" in f.reason
    assert "[dates](references/dates.md)" in f.reason


@pytest.mark.parametrize(
    "path, words",
    [
        ("../x.md", "'..' would leave the skill folder"),
        ("references/../../x.md", "'..' would leave"),
        ("scripts/run.py", "scripts/ is never edited"),
        ("/etc/passwd", "absolute paths are not allowed"),
        ("references\\x.md", "backslashes are not allowed"),
        ("references/Big Name.md", "must match [a-z0-9][a-z0-9-_]*.md"),
        ("references/x.txt", "only 'SKILL.md' and 'references/<topic>.md'"),
        ("references/sub/x.md", "only 'SKILL.md' and 'references/<topic>.md'"),
        ("README.md", "only 'SKILL.md'"),
        ("references//x.md", "empty or '.' path components"),
        ("references/x\n.md", "characters not allowed"),
    ],
)
def test_bad_paths_are_refused(path, words):
    f = one(fail([{"op": "create_reference", "file": path, "content": "# X\n"}]))
    assert f.index == 1 and f.op == "create_reference"
    assert words in f.reason, f.reason


def test_editing_scripts_or_a_symlink_is_refused():
    f = one(fail([{"op": "replace", "file": "scripts/run.py", "old": "hi", "new": "ho"}]))
    assert "scripts/ is never edited" in f.reason
    f = one(
        fail(
            [{"op": "append_to_reference", "file": "references/link.md", "text": "x"}], symlinks={"references/link.md"}
        )
    )
    assert "is a symlink" in f.reason
    with pytest.raises(EditError, match="references is a symlink"):
        check_edit_path("references/new.md", skill_dir=DIR, existing=[], symlinks={"references"}, creating=True)


def test_frontmatter_name_change_is_refused():
    f = one(fail([{"op": "replace", "old": "name: demo", "new": "name: demo2"}]))
    assert f.reason == "the frontmatter name must stay 'demo'; the edits change it to 'demo2'"


def test_broken_frontmatter_is_refused():
    f = one(fail([{"op": "replace", "old": "description: Work", "new": "description: [Work"}]))
    assert f.reason.startswith("the frontmatter no longer parses")


def test_new_lint_finding_is_refused_but_old_ones_are_not():
    # a broken link is new
    f = one(fail([{"op": "append_to_section", "heading": "Pitfalls", "text": "See [x](references/missing.md)."}]))
    assert "new lint finding" in f.reason and "broken-link" in f.reason
    # an existing finding in S0 does not block an unrelated edit
    files = dict(S0, **{"SKILL.md": SKILL + "\nSee [y](references/gone.md).\n"})
    ok([{"op": "append_to_section", "heading": "Workflow", "text": "- fine"}], files)
    # strict mode refuses an unknown key; lenient accepts it
    edit = [{"op": "replace", "old": "description:", "new": "disable-model-invocation: true\ndescription:"}]
    assert "unknown-key" in one(fail(edit)).reason
    ok(edit, strict=False)


def test_size_overflow():
    text = "\n".join(f"- lesson {i}" for i in range(20))
    f = one(fail([{"op": "append_to_section", "heading": "Pitfalls", "text": text}], limits=Limits(30, 300)))
    assert f.reason.startswith("SKILL.md would have 42 lines; at most 30 (move detail into a references/ file)")
    f = one(
        fail([{"op": "append_to_reference", "file": "references/formulas.md", "text": text}], limits=Limits(500, 10))
    )
    assert f.reason.startswith("references/formulas.md would have 24 lines; at most 10")


def test_empty_patch_and_no_op_edits():
    assert one(fail([])).reason == "the list of edits is empty, so the patch changes nothing"
    f = one(fail([{"op": "replace", "old": "Demo", "new": "Demo"}]))
    assert "identical" in f.reason
    f = one(
        fail(
            [
                {"op": "replace", "old": "# Demo\n", "new": "# Demo!\n"},
                {"op": "replace", "old": "# Demo!\n", "new": "# Demo\n"},
            ]
        )
    )
    assert f.reason == "the edits change nothing (empty patch)"


def test_invalid_edit_objects_are_reported_per_index():
    failures = fail(
        [
            {"op": "replace", "old": "Demo"},
            {"op": "rewrite", "file": "SKILL.md"},
            {"op": "append_to_section", "heading": "Pitfalls", "text": "- ok"},
        ]
    )
    assert [(f.index, f.op) for f in failures] == [(1, "replace"), (2, "rewrite")]
    assert "new" in failures[0].reason and "not a valid edit" in failures[0].reason


def test_all_failing_edits_are_reported_together():
    failures = fail(
        [
            {"op": "insert", "anchor": "nope nope", "text": "x"},
            {"op": "append_to_section", "heading": "Pitfalls", "text": "- fine"},
            {"op": "create_reference", "file": "../up.md", "content": "x"},
        ]
    )
    assert [f.index for f in failures] == [1, 3]


# ---------------------------------------------------------------------- schema
def test_schema_and_parsing():
    schema = edit_list_schema()
    text = json.dumps(schema)
    for op in ("insert", "replace", "append_to_section", "add_section", "create_reference", "append_to_reference"):
        assert f'"{op}"' in text
    assert "exactly once" in text
    edits = parse_edits('{"edits": [{"op": "replace", "old": "a", "new": "b"}]}')
    assert edits[0].file == "SKILL.md"
    assert parse_edits([{"op": "insert", "anchor": "a", "text": "b"}])[0].position == "after"
    with pytest.raises(ValidationError):
        parse_edits([{"op": "replace", "old": "a", "new": "b", "line": 3}])
    assert EditList.model_validate({"edits": []}).edits == []


def test_documented_examples_are_valid_edits():
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "patches.md").read_text()
    prompt = edit_format_prompt()
    for text in (doc, prompt):
        examples = [
            line.strip().strip("`").split("`  plus `")[0]
            for line in text.splitlines()
            if line.strip().startswith(('{"op"', '`{"op"'))
        ]
        examples = [e for e in examples if e.endswith("}")]
        assert len(examples) >= 6
        edits = parse_edits(json.loads("[" + ",".join(examples) + "]"))
        assert {e.op for e in edits} == {
            "insert",
            "replace",
            "append_to_section",
            "add_section",
            "create_reference",
            "append_to_reference",
        }


def test_unified_diff_new_file_without_newline():
    diff = unified_diff("skills/d/references/a.md", None, "x")
    assert diff == (
        "diff --git a/skills/d/references/a.md b/skills/d/references/a.md\nnew file mode 100644\n"
        "--- /dev/null\n+++ b/skills/d/references/a.md\n@@ -0,0 +1 @@\n+x\n\\ No newline at end of file\n"
    )
    assert unidiff.PatchSet(diff)[0].is_added_file


# ---------------------------------------------------------------------- leaks
def test_leaks_found():
    text = (
        "- If the total is 12,345.67 write it in B2.\n- Task 13284 needed VLOOKUP.\n- The region is North-West Europe."
    )
    leaks = find_leaks(text, forbidden_values=["12345.67", "north-west  europe", 4711], forbidden_ids=["13284"])
    assert len(leaks) == 3
    assert any("held-out task id '13284'" in leak for leak in leaks)
    assert any("task-specific value '12345.67'" in leak and "12,345.67" in leak for leak in leaks)
    assert any("'north-west europe'" in leak for leak in leaks)


def test_leaks_in_a_diff_only_count_added_lines():
    diff = unified_diff("skills/d/SKILL.md", "a\nvalue 98765 here\n", "a\nnew line\n")
    assert find_leaks(diff, forbidden_values=["98765"]) == []
    diff = unified_diff("skills/d/SKILL.md", "a\n", "a\nvalue 98765 here\n")
    assert len(find_leaks(diff, forbidden_values=["98765"])) == 1


@pytest.mark.parametrize(
    "value, text",
    [
        ("125", "column 1250 and 3125 and 125.5 and 0.125"),  # not whole tokens
        ("42", "42 rows"),  # too few significant digits
        ("1000", "the top 1000 rows"),  # round number
        ("0.5", "round to 0.5"),
        (True, "set it to True"),
        ("Total", "the Total row"),  # common word
        ("abc", "abc"),  # too short
        ("North", "Northern lights"),  # not a whole word
        ("3.14", "version 3.145"),
    ],
)
def test_leaks_not_falsely_found(value, text):
    assert find_leaks(text, forbidden_values=[value]) == []


@pytest.mark.parametrize(
    "value, text",
    [
        ("125", "the answer is 125."),
        (125.0, "the answer is 125"),
        ("$1,250.50", "a fee of 1250.5 was due"),
        ("0.125", "rate .125 applies"),
        ("12.5%", "about 12.5 percent"),
        ("Acme Corp", "ACME   corp is the supplier"),
        ("2024-03-01", "filter from 2024-03-01 on"),
        ("2024", "in 2024 sales rose"),
    ],
)
def test_leaks_found_in_usual_spellings(value, text):
    assert len(find_leaks(text, forbidden_values=[value])) == 1


def test_ids_match_whole_tokens_only():
    assert find_leaks("see 13-12 and 113-1 and task-13-1x", forbidden_ids=["13-1"]) == []
    assert len(find_leaks("as in task 13-1, use SUM", forbidden_ids=["13-1"])) == 1
    assert find_leaks("id 7 appears", forbidden_ids=["7"]) == []  # too short to police
    assert find_leaks("spreadsheet_123x", forbidden_ids=["spreadsheet_123"]) == []
    assert len(find_leaks("(spreadsheet_123)", forbidden_ids=["spreadsheet_123"])) == 1


def test_distinctive_values_drop_visible_and_common_ones():
    assert is_distinctive("Acme Corp") and not is_distinctive("yes") and not is_distinctive(7)
    assert distinctive_values(["Acme Corp", "Zenith Ltd", "yes", 12345, 12345], visible=["Sales of Acme Corp"]) == [
        "Zenith Ltd",
        "12345",
    ]


def test_render_rejects_leaks():
    failures = fail(
        [{"op": "append_to_section", "heading": "Pitfalls", "text": "- For task sb-991 the answer is 48213."}],
        forbidden_values=["48213"],
        forbidden_ids=["sb-991"],
    )
    assert len(failures) == 2
    assert all(f.index is None for f in failures)


# ---------------------------------------------------------------------- overlaps
def test_overlaps_found_with_positions():
    edits = [
        {"op": "replace", "old": "- Open the workbook with openpyxl.\n- Write", "new": "x"},
        {"op": "replace", "old": "- Write the answer cells.", "new": "y"},
        {"op": "insert", "anchor": "Merged cells", "text": "z"},
        {"op": "replace", "old": "- Merged cells hide values.", "new": "w"},
        {"op": "append_to_section", "heading": "Workflow", "text": "- fine"},
        {"op": "append_to_section", "heading": "Workflow", "text": "- also fine"},
    ]
    found = find_overlaps(edits, S0)
    assert len(found) == 2, found
    assert found[0].startswith(
        "edits 1 (replace) and 2 (replace) touch the same region of SKILL.md near line 10 (the texts they replace overlap)"
    )
    assert found[1].startswith(
        "edits 3 (insert) and 4 (replace) touch the same region of SKILL.md near line 19 (3 (insert) is located in text that 4 (replace) rewrites)"
    )


def test_overlaps_heading_rewritten_and_duplicates():
    edits = [
        {"op": "replace", "old": "## Pitfalls\n", "new": "## Traps\n"},
        {"op": "append_to_section", "heading": "Pitfalls", "text": "- x"},
        {"op": "create_reference", "file": "references/a.md", "content": "a"},
        {"op": "create_reference", "file": "references/a.md", "content": "b"},
        {"op": "add_section", "heading": "New", "body": "a"},
        {"op": "add_section", "heading": "## new", "body": "b"},
        {"op": "insert", "anchor": "Demo", "text": "q"},
        {"op": "insert", "anchor": "Demo", "text": "q"},
    ]
    found = find_overlaps(edits, S0)
    assert len(found) == 4, found
    assert "1 (replace) and 2 (append_to_section)" in found[0]
    assert "both create references/a.md" in found[1]
    assert "both add a section 'New'" in found[2]
    assert "identical" in found[3]


def test_overlaps_without_files_compare_texts():
    edits = [
        {"op": "replace", "old": "alpha beta gamma delta", "new": "x"},
        {"op": "replace", "old": "gamma delta epsilon", "new": "y"},
        {"op": "insert", "anchor": "beta gamma", "text": "z"},
        {"op": "replace", "old": "unrelated words here", "new": "w"},
        {"op": "replace", "old": "alpha beta gamma delta", "new": "v", "file": "references/other.md"},
    ]
    found = find_overlaps(edits)
    # 2 and 3 share only 'gamma': too little to call without the file's text
    assert len(found) == 2, found
    assert "1 (replace) and 2 (replace)" in found[0]
    assert "1 (replace) and 3 (insert)" in found[1]


def test_no_overlaps_for_independent_edits():
    edits = [
        {"op": "replace", "old": "Open the workbook", "new": "Load the workbook"},
        {"op": "insert", "anchor": "Write the answer cells.", "text": "- more"},
        {"op": "append_to_section", "heading": "Pitfalls", "text": "- x"},
    ]
    assert find_overlaps(edits, S0) == []
    assert find_overlaps(edits) == []
