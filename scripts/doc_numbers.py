"""The numbers README.md and docs/ quote from the product — model commits and sha256s, the example photos' counts,
tiles, runtime and CSV columns — checked against the manifest and a real count, or rewritten from them.

    python scripts/doc_numbers.py            # list what differs (exit 1 if anything does)
    python scripts/doc_numbers.py --write    # rewrite the docs from the product (after a new default version)

``tests/test_docs_consistency.py`` runs the check, so a new default model version or runtime fails CI until the docs
are regenerated. Hand-written: the facts are this product's own, and no documentation tool knows them.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLES = ROOT / "examples"
SPARSE = "noaa_train_6"  # the API examples' photo
BATCH = "noaa_train_1"  # the batch CSV example's photo
COMMIT = re.compile(r"\b[0-9a-f]{40}\b")
SHA256 = re.compile(r"\b[0-9a-f]{64}\b")
SHORT_SHA = re.compile(r"`([0-9a-f]{12})`|\b([0-9a-f]{12})…")


@dataclass(frozen=True)
class Facts:
    """What the product says now: the manifest's pins and the default version's counts of the example photos."""

    version: str
    commit: str
    sha256: str
    runtime: str
    commits: frozenset[str]  # every version's commit
    sha256s: frozenset[str]  # every version's weights and exported files, and the example photos
    counts: dict[str, dict[str, int]]  # example photo stem -> per-class counts (default version and runtime)
    tiles: dict[str, int]
    errors: dict[str, float]  # the default version's typical error per class on the SPARSE photo
    batch_csv: list[str]  # the batch CSV's header and the BATCH photo's row, as the product writes them


def product_facts() -> Facts:
    """Count the two example photos with the default version as the app does (auto runtime, auto scale)."""
    from detector.counting.model import Detector
    from detector.counting.records import PhotoRecord, write_counts_csv
    from detector.counting.uncertainty import CountUncertainty
    from detector.files import sha256_bytes, sha256_file
    from detector.settings import ModelSettings
    from detector.versions.manifest import load_manifest

    manifest = load_manifest()
    version = manifest.get()
    detector = Detector.load(ModelSettings(device="cpu"))
    results = {stem: detector.count(EXAMPLES / f"{stem}.jpg", source=f"{stem}.jpg") for stem in (SPARSE, BATCH)}
    data = (EXAMPLES / f"{BATCH}.jpg").read_bytes()
    record = PhotoRecord(f"{BATCH}.jpg", results[BATCH], sha256=sha256_bytes(data), size=len(data))
    with tempfile.TemporaryDirectory() as folder:
        batch_csv = write_counts_csv(Path(folder) / "batch.csv", [record], errors=CountUncertainty.of(version))
        batch_csv = batch_csv.read_text().splitlines()
    files = {sha for v in manifest.versions.values() for r in v.runtimes.values() for sha in r.files.values()}
    return Facts(
        version=version.name,
        commit=version.commit,
        sha256=version.sha256,
        runtime=detector.runtime,
        commits=frozenset(v.commit for v in manifest.versions.values()),
        sha256s=frozenset(
            {v.sha256 for v in manifest.versions.values()} | files | {sha256_file(p) for p in EXAMPLES.glob("*.jpg")}
        ),  # fmt: skip
        counts={stem: result.counts for stem, result in results.items()},
        tiles={stem: result.tiles for stem, result in results.items()},
        errors={
            n: CountUncertainty.of(version).photo_error(n, results[SPARSE].counts) or 0.0 for n in version.class_names
        },
        batch_csv=batch_csv,
    )


def _python_counts(counts: dict[str, int]) -> str:
    return "{" + ", ".join(f"'{name}': {count}" for name, count in counts.items()) + "}"


def _json_counts(counts: dict[str, int]) -> str:
    return "{" + ", ".join(f'"{name}": {count}' for name, count in counts.items()) + "}"


def _with_elapsed_of(header: str, row: str, doc_row: str) -> str:
    """The product's CSV row with the doc's elapsed_ms (a time measured once, not a fact to check)."""
    cells, doc_cells = next(csv.reader(io.StringIO(row))), next(csv.reader(io.StringIO(doc_row)))
    column = header.split(",").index("elapsed_ms")
    if len(doc_cells) > column and len(cells) > column:
        cells[column] = doc_cells[column]
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cells)
    return out.getvalue()


# Each rule: a pattern over a doc's text and what its match must read, given the facts.
Rule = tuple[str, re.Pattern[str], Callable[[re.Match[str], Facts], str]]
COUNTS = r"\{'adult_males': \d+, 'subadult_males': \d+, 'adult_females': \d+, 'juveniles': \d+, 'pups': \d+\}"
RULES: list[Rule] = [
    (
        "/model_info's answer (# version commit sha256 source) is the default version's",
        re.compile(r"# v\d+ [0-9a-f]{40} [0-9a-f]{64} shipped"),
        lambda m, f: f"# {f.version} {f.commit} {f.sha256} shipped",
    ),
    (
        f"the counts printed for {SPARSE}.jpg are the default version's",
        re.compile(rf"(print\(result\[\"counts\"\], result\[\"total\"\]\)\n# ){COUNTS} \d+\n"),
        lambda m, f: f"{m[1]}{_python_counts(f.counts[SPARSE])} {sum(f.counts[SPARSE].values())}\n",
    ),
    (
        f"the /count JSON of {SPARSE}.jpg holds the default version's counts",
        re.compile(rf'"source": "{SPARSE}.jpg", "counts": \{{[^}}]*\}}, "total": \d+'),
        lambda m, f: (
            f'"source": "{SPARSE}.jpg", "counts": {_json_counts(f.counts[SPARSE])}, '
            f'"total": {sum(f.counts[SPARSE].values())}'
        ),
    ),
    (
        f"the status line of {SPARSE}.jpg: total, tiles, version, sha256 and runtime",
        re.compile(
            r"\*\*\d+\*\* animals in 1248×832 px( · [\d.]+ s on \*\*cpu\*\* · )\d+ tiles( · [^·]+· )model \*\*v\d+\*\*"
            r"(?: \(`[0-9a-f]{12}`, shipped, [\w-]+\))?"
        ),
        lambda m, f: (
            f"**{sum(f.counts[SPARSE].values())}** animals in 1248×832 px{m[1]}{f.tiles[SPARSE]} tiles{m[2]}"
            f"model **{f.version}**" + (f" (`{f.sha256[:12]}`, shipped, {f.runtime})" if "(`" in m[0] else "")
        ),
    ),
    (
        "the batch CSV's header is the product's",
        re.compile(r"^file,adult_males,subadult_males,adult_females,juveniles,pups,total,.*$", re.MULTILINE),
        lambda m, f: f.batch_csv[0],
    ),
    (
        f"the batch CSV's row of {BATCH}.jpg is the product's (elapsed time aside)",
        re.compile(rf"^{BATCH}\.jpg,\d.*$", re.MULTILINE),
        lambda m, f: _with_elapsed_of(f.batch_csv[0], f.batch_csv[1], m[0]),
    ),
    (
        "the batch CSV's failure row has the header's number of columns",
        re.compile(r"^bad\.jpg,,+(bad\.jpg: .*)$", re.MULTILINE),
        lambda m, f: "bad.jpg" + "," * (len(f.batch_csv[0].split(",")) - 1) + m[1],
    ),
    (
        f"the counts table of {SPARSE}.jpg: adult males with their typical error, and the total",
        re.compile(r'\[\["adult males", \d+, "± \d+ per photo"\], …, \["total", \d+, ""\]\]'),
        lambda m, f: (
            f'[["adult males", {f.counts[SPARSE]["adult_males"]}, "± {f.errors["adult_males"]:.0f} per photo"], '
            f'…, ["total", {sum(f.counts[SPARSE].values())}, ""]]'
        ),
    ),
]


def problems(text: str, facts: Facts, name: str = "") -> Iterator[str]:
    """Where ``text`` disagrees with the product: each rule's mismatches, and any commit or sha256 (full, or 12
    characters as the app abbreviates it) that is no model version's, exported file's or example photo's."""
    for what, pattern, expected in RULES:
        for match in pattern.finditer(text):
            if match[0] != expected(match, facts):
                yield f"{name}: {what}: {match[0][:100]!r} should read {expected(match, facts)[:100]!r}"
    for commit in COMMIT.findall(text):
        if commit not in facts.commits and not any(sha.startswith(commit) for sha in facts.sha256s):
            yield f"{name}: commit {commit} is no model version's (weights/manifest.yaml)"
    for sha in SHA256.findall(text):
        if sha not in facts.sha256s:
            yield f"{name}: sha256 {sha[:16]}… is no model file's or example photo's"
    for groups in SHORT_SHA.findall(text):
        short = groups[0] or groups[1]
        if not any(known.startswith(short) for known in facts.sha256s | facts.commits):
            yield f"{name}: abbreviated sha {short} is no model file's, commit's or example photo's"


def rewrite(text: str, facts: Facts) -> str:
    for _, pattern, expected in RULES:
        text = pattern.sub(lambda m, expected=expected: expected(m, facts), text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the docs from the product")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from detector.logs import quiet_libraries

    quiet_libraries()  # stdout: the differences only
    facts = product_facts()
    found = []
    for path in DOCS:
        text = path.read_text()
        if args.write and (new := rewrite(text, facts)) != text:
            path.write_text(new)
            print(f"rewrote {path.relative_to(ROOT)}", file=sys.stderr)
            text = new
        found += problems(text, facts, str(path.relative_to(ROOT)))
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
