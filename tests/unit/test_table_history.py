"""``glue.table._maybe_committed``: a manifest's first commit skips the scan only when the table's
whole history is commit_manifest's and none of it is that manifest's."""

from __future__ import annotations

from types import SimpleNamespace

from glue.table import _maybe_committed


def _metadata(*snapshots):
    """Snapshots oldest first: (id, parent, manifest_id or None for another writer[, sequence number]);
    the sequence number defaults to the id (a v2 table numbers its commits 1, 2, ...)."""
    made = [
        SimpleNamespace(
            snapshot_id=sid,
            parent_snapshot_id=parent,
            sequence_number=rest[0] if rest else sid,
            summary=SimpleNamespace(additional_properties={} if mid is None else {"manifest_id": mid}),
        )
        for sid, parent, mid, *rest in snapshots
    ]
    return SimpleNamespace(snapshots=made, current_snapshot=lambda: made[-1] if made else None)


def test_a_new_manifest_on_a_whole_history_of_ours_is_not_looked_for():
    assert _maybe_committed(_metadata((1, None, "a"), (2, 1, "b")), "c") is False
    assert _maybe_committed(_metadata(), "c") is False


def test_a_committed_manifest_is_looked_for():
    assert _maybe_committed(_metadata((1, None, "a"), (2, 1, "b")), "a") is True


def test_an_expired_parent_or_another_writer_means_look():
    assert _maybe_committed(_metadata((2, 1, "a"), (3, 2, "b")), "c") is True  # snapshot 1 expired
    assert _maybe_committed(_metadata((1, None, "a"), (2, 1, None), (3, 2, "b")), "c") is True


def test_a_history_cut_by_pyicebergs_expiry_means_look():
    # pyiceberg's ExpireSnapshots clears the parent id of the oldest snapshot it keeps: snapshot 3
    # looks like a first snapshot, but its sequence number says two commits came before it.
    assert _maybe_committed(_metadata((3, None, "a", 3), (4, 3, "b", 4)), "c") is True
