"""Which tags are t2s releases: one definition for release, the default baseline,
``pack``, ``install``, ``push`` and the pre-push hook."""

from __future__ import annotations

from t2s.errors import UsageError
from t2s.gitstore.store import GitStore, TagRef
from t2s.record.provenance import KEYS, Provenance
from t2s.record.refs import parse_version

RELEASE_TAG_RULE = (
    f"an annotated tag vX.Y.Z (no leading zeros) on a release merge made by `t2s release` "
    f"(two parents, trailers {KEYS['release']}: vX.Y.Z and {KEYS['candidate']}: its second parent)"
)


def release_tag_problem(store: GitStore, tag: TagRef) -> str | None:
    """Why ``tag`` is not a t2s release tag, or None when it is one.

    A t2s release tag, and nothing else, counts as a release (for the next version,
    the default baseline, ``pack``, ``install``, ``push`` and the pre-push hook):

    1. its name is ``vX.Y.Z`` with X, Y, Z decimal numbers without leading zeros;
    2. it is annotated: the ref points at a tag object that carries the same name;
    3. it tags a commit that ``t2s release`` made: a merge of two parents whose
       message has the trailers ``T2S-Release: <the tag's name>`` and
       ``T2S-Candidate: <the second parent>``.
    """
    if parse_version(tag.name) is None:
        return "its name is not vX.Y.Z (numbers without leading zeros)"
    if not tag.annotated:
        return "it is a lightweight tag, not an annotated one"
    if tag.tagged_name != tag.name:
        return f"its tag object is named {tag.tagged_name!r}"
    if tag.target_type != "commit":
        return f"it tags a {tag.target_type}, not a commit"
    prov = Provenance.of(store.commit_message(tag.target))
    if len(tag.parents) != 2 or prov.release != tag.name:
        return f"{tag.target[:12]} is not a release merge made by `t2s release` for {tag.name}"
    if prov.candidate != tag.parents[1]:
        return f"{tag.target[:12]} does not merge the candidate its {KEYS['candidate']} trailer names"
    return None


def release_tags(store: GitStore) -> list[tuple[tuple[int, int, int], str]]:
    """The t2s release tags (see :func:`release_tag_problem`), oldest version first.
    Other ``v*`` tags, e.g. a lightweight one on a patch commit, are ignored."""
    found = []
    for tag in store.tag_refs("v*"):
        version = parse_version(tag.name)
        if version is not None and release_tag_problem(store, tag) is None:  # the problem checks the name first
            found.append((version, tag.name))
    return sorted(found)


def latest_release_tag(store: GitStore) -> str | None:
    tags = release_tags(store)
    return tags[-1][1] if tags else None


def require_release_tag(store: GitStore, name: str, where: str = "") -> str:
    """The commit of release tag ``name``; a :class:`UsageError` saying why when
    ``name`` is not a t2s release tag."""
    found = [t for t in store.tag_refs(name) if t.name == name] if parse_version(name) else []
    problem = release_tag_problem(store, found[0]) if found else None
    if found and problem is None:
        return found[0].target
    if problem is None:
        problem = (
            "there is no such tag" if parse_version(name) else "its name is not vX.Y.Z (numbers without leading zeros)"
        )
    raise UsageError(
        f"{name!r}{where} is not a t2s release: {problem}",
        hint=f"a release is {RELEASE_TAG_RULE}; list them with `git tag -l 'v*'`",
    )
