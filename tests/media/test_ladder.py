"""The ladder plan: rung sizes, bitrates, frame rate and limits (checks 1, 2, 4, 5 of
shared/specs/hls-checks.md), from probe results written out by hand."""

from __future__ import annotations

from fractions import Fraction

import pytest

from reelout.media.ladder import (
    AudioPlan,
    Limits,
    PlanError,
    output_frame_rate,
    plan_ladder,
    video_maxrate_kbps,
)
from reelout.media.probe import AudioStream, SourceInfo, VideoStream

LIMITS = Limits(max_duration_seconds=3600, max_pixels=4096 * 2304)
STEREO = AudioStream(index=1, codec="aac", channels=2, sample_rate=48000, default=True)


def source(
    width: int,
    height: int,
    *,
    sar: Fraction = Fraction(1),
    rotation: int = 0,
    frame_rate: Fraction | None = Fraction(30),
    duration: float = 60.0,
    audio: tuple[AudioStream, ...] = (STEREO,),
    color_transfer: str | None = None,
    bit_depth: int = 8,
) -> SourceInfo:
    video = VideoStream(
        index=0,
        codec="h264",
        width=width,
        height=height,
        sar=sar,
        rotation=rotation,
        frame_rate=frame_rate,
        color_transfer=color_transfer,
        bit_depth=bit_depth,
    )
    return SourceInfo("mov,mp4,m4a,3gp,3g2,mj2", duration, 1_000_000, video=video, audio=audio)


def sizes(src: SourceInfo, limits: Limits = LIMITS) -> list[tuple[int, int]]:
    return [(rung.width, rung.height) for rung in plan_ladder(src, limits).rungs]


FULL_HD_LADDER = [(426, 240), (640, 360), (854, 480), (1280, 720), (1920, 1080)]


# --- sizes -------------------------------------------------------------------------------------


def test_1080p_gives_the_five_standard_rungs() -> None:  # check 1
    assert sizes(source(1920, 1080)) == FULL_HD_LADDER


def test_true_portrait_gives_the_same_rungs_standing_up() -> None:  # check 2
    rungs = sizes(source(1080, 1920))
    assert rungs == [(240, 426), (360, 640), (480, 854), (720, 1280), (1080, 1920)]
    for width, height in rungs:
        assert abs(Fraction(width, height) / Fraction(9, 16) - 1) < Fraction(1, 100)


@pytest.mark.parametrize("rotation", [90, 270])
def test_a_quarter_turn_display_matrix_gives_portrait_rungs(rotation: int) -> None:
    assert sizes(source(1920, 1080, rotation=rotation)) == sizes(source(1080, 1920))


def test_an_upside_down_source_stays_landscape() -> None:
    assert sizes(source(1920, 1080, rotation=180)) == FULL_HD_LADDER


def test_anamorphic_16_9_gives_square_pixel_rungs() -> None:  # check 5
    assert sizes(source(1440, 1080, sar=Fraction(4, 3))) == FULL_HD_LADDER


def test_ntsc_dv_4_3_gives_even_rungs_no_wider_than_shown() -> None:
    # 720x480 at SAR 10:11 is shown 655x480: the top rung is 654 wide, never 656
    assert sizes(source(720, 480, sar=Fraction(10, 11))) == [(328, 240), (492, 360), (654, 480)]


def test_720p_tops_out_at_720() -> None:  # check 4
    assert sizes(source(1280, 720)) == FULL_HD_LADDER[:4]


def test_a_source_below_240_gets_one_native_rung() -> None:  # check 4
    assert sizes(source(356, 200)) == [(356, 200)]
    assert sizes(source(320, 180)) == [(320, 180)]


def test_odd_tiny_sources_are_rounded_down_to_even() -> None:
    assert sizes(source(321, 181)) == [(320, 180)]


def test_540p_gets_a_native_540_top_rung() -> None:  # check 4
    assert sizes(source(960, 540)) == [*FULL_HD_LADDER[:3], (960, 540)]


def test_a_source_within_10_percent_of_a_rung_gets_no_native_rung() -> None:
    def names(width: int, height: int) -> list[str]:
        return [rung.name for rung in plan_ladder(source(width, height), LIMITS).rungs]

    assert names(888, 500) == ["240p", "360p", "480p"]  # 500 is 4 % above 480
    assert names(1404, 790) == ["240p", "360p", "480p", "720p"]  # 9.7 % above 720
    assert names(1424, 800) == ["240p", "360p", "480p", "720p", "800p"]  # 11 % above


@pytest.mark.parametrize(("width", "height"), [(2560, 1440), (3840, 2160), (2048, 1152)])
def test_sources_above_1080_top_out_at_1080(width: int, height: int) -> None:
    assert sizes(source(width, height)) == FULL_HD_LADDER


# --- bitrates ----------------------------------------------------------------------------------


def test_standard_rungs_carry_the_recipe_caps_and_audio_rates() -> None:
    rungs = plan_ladder(source(1920, 1080), LIMITS).rungs
    assert [r.video_maxrate_kbps for r in rungs] == [400, 800, 1400, 2800, 5000]
    assert [r.video_bufsize_kbps for r in rungs] == [800, 1600, 2800, 5600, 10000]
    assert [r.audio_kbps for r in rungs] == [64, 96, 128, 128, 128]
    assert [r.name for r in rungs] == ["240p", "360p", "480p", "720p", "1080p"]


def test_a_native_rung_interpolates_its_cap_by_pixel_count() -> None:
    top = plan_ladder(source(960, 540), LIMITS).top
    # 540² lies 21 % of the way from 480² to 720²: 1400 + 0.2125 x (2800 - 1400)
    assert (top.name, top.video_maxrate_kbps, top.audio_kbps) == ("540p", 1698, 128)


def test_a_tiny_rung_scales_the_240p_cap_down_with_a_floor() -> None:
    tiny = plan_ladder(source(320, 180), LIMITS).top
    assert (tiny.video_maxrate_kbps, tiny.audio_kbps) == (225, 64)  # 400 x (180/240)²
    assert video_maxrate_kbps(16) == 100


def test_caps_rise_with_the_short_side() -> None:
    caps = [video_maxrate_kbps(side) for side in range(16, 1081, 2)]
    assert caps == sorted(caps)
    assert caps[0] == 100
    assert caps[-1] == 5000


# --- frame rate --------------------------------------------------------------------------------

NTSC_FILM, NTSC, NTSC_60 = Fraction(24000, 1001), Fraction(30000, 1001), Fraction(60000, 1001)


@pytest.mark.parametrize(
    ("source_rate", "planned"),
    [
        (Fraction(30), Fraction(30)),
        (NTSC, NTSC),
        (Fraction(2950, 100), NTSC),
        (Fraction(2397, 100), NTSC_FILM),
        (Fraction(25), Fraction(25)),
        (Fraction(48), Fraction(50)),
        (NTSC_60, NTSC_60),
        (Fraction(6030, 100), Fraction(60)),  # a jittery 60 stays 60
        (Fraction(72), Fraction(60)),  # capped
        (Fraction(100), Fraction(50)),  # high speed: halved, then snapped
        (Fraction(120), Fraction(60)),
        (Fraction(120000, 1001), NTSC_60),
        (Fraction(240), Fraction(60)),
        (Fraction(600, 29), NTSC_FILM),  # 20.7 fps
        (Fraction(15), Fraction(15)),  # below 20: kept, no frames invented
        (Fraction(25, 2), Fraction(25, 2)),
        (None, Fraction(30)),  # unknown
    ],
)
def test_frame_rate_is_snapped_to_a_standard_rate(
    source_rate: Fraction | None, planned: Fraction
) -> None:
    assert output_frame_rate(source_rate) == planned
    assert plan_ladder(source(640, 360, frame_rate=source_rate), LIMITS).frame_rate == planned


@pytest.mark.parametrize(
    ("source_rate", "gop"),
    [(Fraction(30), 60), (NTSC, 60), (Fraction(25), 50), (NTSC_60, 120), (Fraction(15), 30)],
)
def test_keyframes_every_two_seconds(source_rate: Fraction, gop: int) -> None:
    plan = plan_ladder(source(640, 360, frame_rate=source_rate), LIMITS)
    assert (plan.gop_frames, plan.keyframe_seconds, plan.segment_seconds) == (gop, 2, 4)


# --- the rest of the plan ----------------------------------------------------------------------


def test_the_plan_carries_the_source_facts_the_encoder_needs() -> None:
    plan = plan_ladder(source(1920, 1080, rotation=90, sar=Fraction(1)), LIMITS)
    assert plan.video_stream_index == 0
    assert plan.audio == AudioPlan(stream_index=1, channels=2, sample_rate=48000)
    assert (plan.rotation, plan.sar, plan.tone_map) == (90, Fraction(1), False)
    assert plan.top == plan.rungs[-1]


def test_the_default_audio_track_is_the_one_encoded() -> None:
    commentary = AudioStream(index=1, codec="aac", channels=2, sample_rate=48000, default=False)
    main = AudioStream(index=2, codec="ac3", channels=6, sample_rate=48000, default=True)
    plan = plan_ladder(source(1280, 720, audio=(commentary, main)), LIMITS)
    assert plan.audio == AudioPlan(stream_index=2, channels=2, sample_rate=48000)


def test_a_silent_source_plans_no_audio() -> None:
    assert plan_ladder(source(1280, 720, audio=()), LIMITS).audio is None


@pytest.mark.parametrize(
    ("transfer", "bit_depth", "tone_map"),
    [("arib-std-b67", 10, True), ("smpte2084", 10, True), ("bt709", 10, True), ("bt709", 8, False)],
)
def test_hdr_or_deep_colour_is_tone_mapped(transfer: str, bit_depth: int, tone_map: bool) -> None:
    src = source(1920, 1080, color_transfer=transfer, bit_depth=bit_depth)
    assert plan_ladder(src, LIMITS).tone_map is tone_map


# --- limits ------------------------------------------------------------------------------------


def test_duration_limit_is_inclusive() -> None:
    limits = Limits(max_duration_seconds=600, max_pixels=1920 * 1080)
    assert plan_ladder(source(1920, 1080, duration=600), limits).top.height == 1080
    with pytest.raises(PlanError) as caught:
        plan_ladder(source(1920, 1080, duration=600.5), limits)
    assert caught.value.code == "ERR_DURATION_LIMIT"
    assert "600" in caught.value.text


def test_resolution_limit_counts_stored_pixels() -> None:
    limits = Limits(max_duration_seconds=600, max_pixels=1920 * 1080)
    assert len(plan_ladder(source(1080, 1920), limits).rungs) == 5
    with pytest.raises(PlanError) as caught:
        plan_ladder(source(1920, 1082), limits)
    assert caught.value.code == "ERR_RESOLUTION_LIMIT"


def test_a_picture_smaller_than_the_minimum_is_refused() -> None:
    limits = Limits(max_duration_seconds=600, max_pixels=1920 * 1080, min_short_side=16)
    assert sizes(source(64, 16), limits) == [(64, 16)]
    with pytest.raises(PlanError) as caught:
        plan_ladder(source(64, 14), limits)
    assert caught.value.code == "ERR_RESOLUTION_LIMIT"


def test_a_source_without_video_cannot_be_planned() -> None:
    audio_only = SourceInfo("mp3", 60.0, 1000, audio=(STEREO,))
    with pytest.raises(PlanError) as caught:
        plan_ladder(audio_only, LIMITS)
    assert caught.value.code == "ERR_NON_VIDEO"
