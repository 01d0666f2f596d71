"""The prompts' edit examples locate real text of the skill being edited (issue 20): a
model that copies an example's anchor or heading still finds its place."""

from __future__ import annotations

import json

from t2s.consolidation.group import render_messages
from t2s.consolidation.models import MergeInput, MergerAnswer
from t2s.patches.examples import DEFAULTS, skill_examples
from t2s.patches.placeholders import placeholder_problem
from t2s.patches.retries import edit_format_prompt

SKILL = """---
name: demo
description: A demo skill.
---

# Demo

## Workflow

1. **Read the table.** Print the header
   and every row.
2. Compute the answer.
- Check the totals.

## Pitfalls

- Dates are serial numbers.
- Dates are serial numbers.
- Text keys need stripping.
"""


def test_examples_are_lines_and_headings_of_the_skill():
    found = skill_examples({"SKILL.md": SKILL})
    # the last one-line item that occurs once (the duplicated one cannot be an anchor)
    assert found == {"line": "- Text keys need stripping.", "heading": "## Pitfalls", "after": "## Workflow"}
    assert skill_examples(None) == DEFAULTS


def test_edit_format_quotes_the_skill():
    prompt = edit_format_prompt({"SKILL.md": SKILL})
    assert '"anchor": "- Text keys need stripping."' in prompt
    assert '"heading": "## Pitfalls"' in prompt
    assert "{example_" not in prompt and "{example_" not in edit_format_prompt()


def test_merger_prompts_show_a_complete_accounting_of_the_group():
    inputs = [
        MergeInput(
            label="patch 0001",
            ref="r1",
            commit="c1",
            lessons=[{"id": "p0001.1", "text": "a", "support": ["t1"]}],
            diff="",
        ),
        MergeInput(
            label="patch 0004",
            ref="r4",
            commit="c4",
            lessons=[{"id": "p0004.1", "text": "b", "support": ["t4"]}],
            diff="",
        ),
    ]
    system, user = render_messages(
        run="r1", name="L1-01", level=1, s0_texts={"SKILL.md": SKILL}, inputs=inputs, min_support=2
    )
    assert '"heading": "## Pitfalls"' in system["content"] and "{example_" not in system["content"]
    example = json.loads(user["content"].rsplit("`", 2)[1])
    assert example["lessons"][0]["sources"] == ["p0001.1", "p0004.1"]
    assert example["edits"] == [
        {"op": "append_to_section", "heading": "## Pitfalls", "text": "- <the merged lesson, general and procedural>"}
    ]
    assert MergerAnswer.model_validate(example)  # the shape is whole; only its texts are stand-ins


def test_angle_bracket_stand_ins_are_placeholders():
    assert placeholder_problem("- <what this case taught>")
    assert placeholder_problem("Use a <b> tag for bold, then close it.") is None
