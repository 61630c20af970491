"""Where a log follower resumes in the lines saved when its replica was retired (pure)."""

from __future__ import annotations

from podium.runtime.ray import lines_after


def test_the_rest_after_what_was_seen() -> None:
    saved = ["a", "b", "c", "d", "e"]
    assert lines_after(["a", "b", "c"], saved) == ["d", "e"]
    assert lines_after(["x", "b", "c"], saved) == ["d", "e"]  # the longest suffix that matches
    assert lines_after(["e"], saved) == []
    assert lines_after([], saved) == saved
    assert lines_after(["zzz"], saved) == saved  # a gap: everything saved rather than nothing


def test_repeated_lines_match_their_last_occurrence() -> None:
    saved = ["tick", "tick", "x", "tick", "end"]
    assert lines_after(["x", "tick"], saved) == ["end"]
    assert lines_after(["tick"], saved) == ["end"]
