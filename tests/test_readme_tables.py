"""The README's long-context tables are what `pipelines.fit` computes."""

from conftest import ROOT

from pipelines.fit import longest_context_table

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_long_context_tables_are_computed_by_pipelines_fit():
    assert longest_context_table(prefill_tokens=1024) in README
    assert longest_context_table() in README
