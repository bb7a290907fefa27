"""The run's JSON log: one object per line, nothing written when there is no folder."""

from __future__ import annotations

import json

from actors.records.journal import Journal


def test_a_journal_is_enabled_only_while_it_has_a_file_to_write(tmp_path):
    assert not Journal(None).enabled
    journal = Journal(tmp_path)
    assert journal.enabled
    journal.event("round", round=1, capacity=float("inf"))
    journal.close()
    assert not journal.enabled
    (line,) = journal.path.read_text().splitlines()
    record = json.loads(line)
    assert (record["event"], record["round"], record["capacity"], record["run"]) == (
        "round", 1, "inf", journal.run_id
    )
