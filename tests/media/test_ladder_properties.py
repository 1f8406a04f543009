"""Properties of the ladder for any source size, SAR and rotation (Hypothesis)."""

from __future__ import annotations

from fractions import Fraction
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from reelout.media.ladder import Limits, Plan, Rung, plan_ladder
from reelout.media.probe import SourceInfo, VideoStream

LIMITS = Limits(max_duration_seconds=3600, max_pixels=8192 * 8192, min_short_side=16)
SARS = [Fraction(1), Fraction(4, 3), Fraction(10, 11), Fraction(40, 33), Fraction(3, 4)]

sides = st.integers(min_value=16, max_value=8192)
rotations = st.sampled_from([0, 90, 180, 270])


def video(width: int, height: int, sar: Fraction = Fraction(1), rotation: int = 0) -> VideoStream:
    return VideoStream(
        index=0, codec="h264", width=width, height=height, sar=sar, rotation=rotation
    )


def plan_for(stream: VideoStream) -> Plan:
    return plan_ladder(SourceInfo("mp4", 10.0, 1000, video=stream), LIMITS)


@st.composite
def videos(draw: st.DrawFn) -> VideoStream:
    """Any stored size, SAR and rotation whose shown short side is at least the minimum."""
    stream = video(draw(sides), draw(sides), draw(st.sampled_from(SARS)), draw(rotations))
    return stream if min(stream.display_size) >= 16 else video(stream.width, stream.height)


def dimensions(rung: Rung) -> tuple[int, int]:
    return rung.width, rung.height


@given(videos())
def test_there_is_always_at_least_one_rung(stream: VideoStream) -> None:
    assert len(plan_for(stream).rungs) >= 1


@given(videos())
def test_never_upscales(stream: VideoStream) -> None:
    shown_width, shown_height = stream.display_size
    for rung in plan_for(stream).rungs:
        assert rung.width <= shown_width
        assert rung.height <= shown_height
        assert rung.short_side <= 1080


@given(videos())
def test_dimensions_are_even(stream: VideoStream) -> None:
    for rung in plan_for(stream).rungs:
        assert rung.width % 2 == 0
        assert rung.height % 2 == 0


@given(videos())
def test_aspect_is_kept_to_the_nearest_even_pixel(stream: VideoStream) -> None:
    shown_width, shown_height = stream.display_size
    aspect = Fraction(shown_width, shown_height)
    for rung in plan_for(stream).rungs:
        if shown_width >= shown_height:
            assert abs(rung.width - rung.height * aspect) <= 1
        else:
            assert abs(rung.height - rung.width / aspect) <= 1
        if rung.short_side >= 100:  # every standard rung: within 1 %
            assert abs(Fraction(rung.width, rung.height) / aspect - 1) <= Fraction(1, 100)


@given(videos())
def test_rungs_strictly_ascend_with_rising_caps(stream: VideoStream) -> None:
    rungs = plan_for(stream).rungs
    for smaller, larger in pairwise(rungs):
        assert smaller.short_side < larger.short_side
        assert smaller.width <= larger.width
        assert smaller.height <= larger.height
        assert smaller.video_maxrate_kbps < larger.video_maxrate_kbps
        assert smaller.audio_kbps <= larger.audio_kbps


@given(sides, sides)
def test_portrait_is_landscape_turned(width: int, height: int) -> None:
    landscape = [dimensions(rung) for rung in plan_for(video(width, height)).rungs]
    portrait = [dimensions(rung) for rung in plan_for(video(height, width)).rungs]
    assert portrait == [(h, w) for w, h in landscape]


@given(sides, sides, st.sampled_from([90, 270]))
def test_a_quarter_turn_is_the_same_as_stored_portrait(width: int, height: int, turn: int) -> None:
    rotated = plan_for(video(width, height, rotation=turn)).rungs
    assert rotated == plan_for(video(height, width)).rungs
