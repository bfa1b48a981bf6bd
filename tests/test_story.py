"""The salvage story over ten days, replayed with `--now`: one test per path of an interview's case.

Each story runs twice over the same files — once with one Engine kept throughout, once through the
command line (a fresh Engine and StateStore at every step, as after a restart) — and both runs must
leave exactly the same drafts, texts, slots and cases at every step. The user's actions are played
on the real draft stores: the drafts folder here, the Google and Graph fakes at the end.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from story_world import (
    PHONE,
    FolderMailbox,
    GoogleMailbox,
    GraphMailbox,
    Mailbox,
    Story,
    at,
    interview,
    meeting,
)

from daemon.core.ids import short_id
from daemon.core.model import ActionKind, Phase

MISSED, FOLLOW_UP, THANK_YOU, RESCHEDULE = (ActionKind.MISSED, ActionKind.FOLLOW_UP, ActionKind.THANK_YOU,
                                            ActionKind.RESCHEDULE)
T = at("2026-11-24 10:00")  # Tuesday: the interview
NOTICED = at("2026-11-24 10:12")  # a pass just after start + grace
DUE = NOTICED + timedelta(hours=20)  # the follow-up, by wall time from the miss

StoryFn = Callable[[Story], None]


def replay(tmp_path: Path, mailbox: Callable[[Path], Mailbox], story: StoryFn) -> None:
    """The story with and without restarts between its steps: both must tell the same story."""
    transcripts = []
    for restart in (False, True):
        folder = tmp_path / ("restarts" if restart else "one-engine")
        folder.mkdir()
        world = Story(folder, mailbox(folder), restart)
        try:
            story(world)
        finally:
            world.close()
        transcripts.append([(when, _portable(snap, folder)) for when, snap in world.transcript])
    for (when, one), (_, other) in zip(*transcripts, strict=True):
        assert one == other, f"a restart changed the story at {when}:\n{one}\n{other}"


def _portable(snap: object, folder: Path) -> object:
    return str(snap).replace(str(folder), "<tmp>")


def missed_at_start(s: Story) -> None:
    """Mon: the interview is booked. Tue 09:00 a meeting lands on top of it; the laptop wakes after the start."""
    s.put(interview("iv", T))
    assert s.run(at("2026-11-23 08:00")) == []
    s.put(meeting("m", T - timedelta(minutes=30)))
    assert s.run(NOTICED) == ["created:missed_interview"]
    assert s.case("iv").phase is Phase.MISSED and s.case("iv").missed_at == NOTICED


# ---- missed → sent → follow-up stays until sent or deleted ------------------------------------------------


@pytest.mark.parametrize("last", ["sent", "deleted"])
def test_missed_then_sent_then_the_follow_up_stays_until_the_user_acts(tmp_path: Path, last: str) -> None:
    def story(s: Story) -> None:
        missed_at_start(s)
        offered = s.draft(MISSED, "iv").slots
        assert len(offered) == 3 and "I can join right away" in s.text(MISSED, "iv")
        s.send(MISSED, "iv")
        assert s.run(at("2026-11-24 11:00")) == ["sent:missed_interview"]
        assert s.run(DUE - timedelta(minutes=5)) == []
        assert s.run(DUE + timedelta(minutes=1)) == ["created:follow_up_apology"]
        follow = s.text(FOLLOW_UP, "iv")
        assert "once more" in follow  # an apology was sent
        # the standing offer stays the same offer: the times still ahead are offered again
        ahead = {x for x in offered if x.start >= DUE + timedelta(days=1)}
        assert ahead and ahead <= set(s.draft(FOLLOW_UP, "iv").slots)
        # the interview leaves the read window (1 day back): the follow-up stays, days on (a time it
        # offered that has passed is replaced, the others stay)
        assert s.run(at("2026-11-25 12:00")) == []
        for day in ("2026-11-26 12:00", "2026-11-27 09:00"):
            assert s.run(at(day)) in ([], ["updated:follow_up_apology"])
            assert s.live_kinds() == [("follow_up_apology", "iv")]
            slots = s.draft(FOLLOW_UP, "iv").slots
            assert len(slots) == 3 and all(x.start > at(day) for x in slots)
            assert {x for x in ahead if x.start > at(day)} <= set(slots)
        assert s.case("iv").phase is Phase.MISSED
        if last == "sent":
            s.send(FOLLOW_UP, "iv")
            assert s.run(at("2026-11-27 10:00")) == ["sent:follow_up_apology"]
            assert s.case("iv").phase is Phase.FOLLOWED_UP
            assert s.run(at("2026-12-03 09:00")) == []
            assert s.case("iv").phase is Phase.FOLLOWED_UP  # 6 days: still open
            assert s.run(at("2026-12-04 10:30")) == []
            assert s.case("iv").phase is Phase.CLOSED and "follow-up apology was sent" in s.case("iv").close_reason
        else:
            s.delete(FOLLOW_UP, "iv")
            assert s.run(at("2026-11-27 10:00")) == ["deleted:follow_up_apology"]
            assert s.case("iv").phase is Phase.CLOSED and s.case("iv").close_reason == "you deleted the last draft"
            assert s.run(at("2026-12-03 09:00")) == []
        assert s.live_kinds() == []

    replay(tmp_path, FolderMailbox, story)


# ---- missed → moved ----------------------------------------------------------------------------------------


def test_missed_then_moved_thanks_them_and_fits_the_follow_up_to_the_new_time(tmp_path: Path) -> None:
    new_time = at("2026-11-27 14:00")

    def story(s: Story) -> None:
        missed_at_start(s)
        s.send(MISSED, "iv")
        assert s.run(DUE + timedelta(minutes=1)) == ["created:follow_up_apology", "sent:missed_interview"]
        assert "still open to meeting" in s.text(FOLLOW_UP, "iv")
        s.put(s.entries["iv"].moved(new_time))  # the organizer moves the missed interview
        assert s.run(at("2026-11-25 09:00")) == ["created:thank_you", "updated:follow_up_apology"]
        case = s.case("iv")
        assert case.phase is Phase.REBOOKED and case.rebooked_key == "iv" and case.rebooked_start == new_time
        thanks = s.text(THANK_YOU, "iv")
        assert "Friday 27 November, 14:00–15:00 GMT" in thanks
        assert "after I missed our technical interview" in thanks and "I'm sorry again for that" in thanks
        follow = s.text(FOLLOW_UP, "iv")
        assert "missing our technical interview on Tuesday 24 November" in follow
        assert "Thank you for agreeing to meet again on Friday 27 November, 14:00–15:00 GMT" in follow
        assert "still open to meeting" not in follow and "any of these times" not in follow
        assert s.draft(FOLLOW_UP, "iv").slots == ()
        assert s.run(at("2026-11-26 09:00")) == []
        # the new interview takes place: the case closes; what the user left unsent is moot
        assert s.run(new_time + timedelta(minutes=15)) == ["withdrawn:follow_up_apology", "withdrawn:thank_you"]
        assert s.case("iv").phase is Phase.CLOSED and s.case("iv").close_reason == "the rebooked interview took place"

    replay(tmp_path, FolderMailbox, story)


# ---- missed → re-invited -----------------------------------------------------------------------------------


def reinvited(s: Story) -> None:
    missed_at_start(s)
    s.send(MISSED, "iv")
    assert s.run(DUE + timedelta(minutes=1)) == ["created:follow_up_apology", "sent:missed_interview"]
    # a colleague at the same company books a new call; the old event stays at its old time
    s.put(interview("iv2", at("2026-11-30 11:00"), organizer=("Priya Shah", "priya@acme-robotics.example"),
                    created=at("2026-11-25 08:30")))
    assert s.run(at("2026-11-25 09:00")) == ["created:thank_you", "updated:follow_up_apology"]
    old, new = s.case("iv"), s.case("iv2")
    assert old.phase is Phase.REBOOKED and old.rebooked_key == "iv2" and new.rebooks == "iv"
    thanks = s.text(THANK_YOU, "iv2")
    assert "Monday 30 November, 11:00–12:00 GMT" in thanks
    assert "after I missed our technical interview" in thanks and "I'm sorry again for that" in thanks
    assert s.draft(THANK_YOU, "iv2").recipients == "priya@acme-robotics.example"
    follow = s.text(FOLLOW_UP, "iv")
    assert "Thank you for agreeing to meet again on Monday 30 November, 11:00–12:00 GMT" in follow
    assert "still open to meeting" not in follow and s.draft(FOLLOW_UP, "iv").slots == ()


def test_missed_then_re_invited_links_the_new_invitation_to_the_case(tmp_path: Path) -> None:
    def story(s: Story) -> None:
        reinvited(s)
        # days later, with the old event still in the calendar, nothing more is drafted
        assert s.run(at("2026-11-27 09:00")) == []
        s.send(THANK_YOU, "iv2")
        assert s.run(at("2026-11-27 10:00")) == ["sent:thank_you"]
        assert s.run(at("2026-11-30 11:15")) == ["withdrawn:follow_up_apology"]
        assert s.case("iv").phase is Phase.CLOSED
        assert s.case("iv2").phase is Phase.SCHEDULED  # the new interview went ahead

    replay(tmp_path, FolderMailbox, story)


# ---- two clashes: slots held while an offer stands -----------------------------------------------------------


def test_two_clashes_never_get_the_same_times_and_sent_offers_stay_held(tmp_path: Path) -> None:
    thursday = at("2026-11-26 10:00")
    globex = ("Sam Green", "sam@globex.example")
    initech = ("Kim Park", "kim@initech.example")

    def story(s: Story) -> None:
        s.put(interview("a", thursday), meeting("ma", thursday - timedelta(minutes=30)),
              interview("b", thursday + timedelta(hours=4), "Globex", globex),
              meeting("mb", thursday + timedelta(hours=3, minutes=30)))
        assert s.run(at("2026-11-23 08:00")) == ["created:reschedule_request", "created:reschedule_request"]
        a, b = set(s.draft(RESCHEDULE, "a").slots), set(s.draft(RESCHEDULE, "b").slots)
        assert len(a) == len(b) == 3 and not a & b
        s.send(RESCHEDULE, "a")
        assert s.run(at("2026-11-23 12:00")) == ["sent:reschedule_request"]
        # a third clash hours later, after restarts: the times offered to Acme (sent) and Globex (live) stay theirs
        s.put(interview("c", thursday + timedelta(days=1), "Initech", initech),
              meeting("mc", thursday + timedelta(days=1, minutes=-30)))
        assert s.run(at("2026-11-23 15:00")) == ["created:reschedule_request"]
        c = set(s.draft(RESCHEDULE, "c").slots)
        assert len(c) == 3 and not c & a and not c & b
        assert s.case("a").phase is Phase.RESCHEDULE_REQUESTED
        # Acme takes one of the offered times: the case is rebooked and its other times are free again
        chosen = sorted(a, key=lambda x: x.start)[-1]
        s.put(s.entries["a"].moved(chosen.start))
        assert s.run(at("2026-11-24 08:00")) == ["created:thank_you"]
        assert s.case("a").phase is Phase.REBOOKED and s.case("a").rebooked_start == chosen.start
        # Globex's offer still stands: a fourth clash gets none of Globex's or Initech's times
        s.put(interview("d", thursday + timedelta(days=6), "Hooli", ("Ana Ruiz", "ana@hooli.example")),
              meeting("md", thursday + timedelta(days=6, minutes=-30)))
        assert s.run(at("2026-11-24 09:00")) == ["created:reschedule_request"]
        d = set(s.draft(RESCHEDULE, "d").slots)
        assert len(d) == 3 and not d & b and not d & c

    replay(tmp_path, FolderMailbox, story)


# ---- an edited draft is left alone -------------------------------------------------------------------------


def test_an_edited_follow_up_is_left_alone_through_a_move(tmp_path: Path) -> None:
    mine = "Dear Jordan,\n\nSorry again. Could we talk on Friday?\n\nAlex\n"

    def story(s: Story) -> None:
        missed_at_start(s)
        s.edit(MISSED, "iv", "Dear Jordan,\n\nI am so sorry about today.\n\nAlex\n")
        assert s.run(at("2026-11-24 11:00")) == ["edited:missed_interview"]
        assert s.run(DUE + timedelta(minutes=1)) == ["created:follow_up_apology"]
        follow = s.text(FOLLOW_UP, "iv")
        assert ("in writing" in follow or "sorry again" in follow) and "once more" not in follow  # nothing sent yet
        assert s.live_kinds() == [("follow_up_apology", "iv"), ("missed_interview", "iv")]  # the edited one stays
        s.edit(FOLLOW_UP, "iv", mine)
        assert s.run(at("2026-11-25 08:00")) == ["edited:follow_up_apology"]
        s.put(s.entries["iv"].moved(at("2026-11-27 14:00")))
        assert s.run(at("2026-11-25 09:00")) == ["created:thank_you"]
        assert s.text(FOLLOW_UP, "iv") == mine  # the user's words, untouched
        assert "I'm sorry I missed it" in s.text(THANK_YOU, "iv")  # no apology was sent: not "again"
        assert s.run(at("2026-11-26 09:00")) == []
        assert s.text(FOLLOW_UP, "iv") == mine

    replay(tmp_path, FolderMailbox, story)


# ---- an old miss, recorded days later ----------------------------------------------------------------------


def test_an_old_miss_is_found_in_the_case_store_and_gets_the_apology_first(tmp_path: Path) -> None:
    def story(s: Story) -> None:
        s.put(interview("iv", T))
        assert s.run(at("2026-11-23 08:00")) == []
        assert s.run(at("2026-11-24 12:00")) == []  # nothing seemed wrong
        friday = at("2026-11-27 09:00")  # three days later, long out of the read window
        code, printed = s.cli("missed", short_id("iv"), "--reason", "illness", now=friday)
        assert code == 0, printed
        assert s.run(friday + timedelta(minutes=1)) == []  # the command made the draft already
        (record,) = s.records()
        assert record.kind is MISSED and record.state.value == "untouched"
        text = s.text(MISSED, "iv")
        assert "I'm very sorry" in text and "our technical interview on Tuesday 24 November" in text
        assert "once more" not in text and "right away" not in text and "unwell" in text
        assert s.case("iv").phase is Phase.MISSED and s.case("iv").user_missed
        code, printed = s.cli("check", "--no-poll", "--format", "json", now=friday + timedelta(hours=1))
        (case,) = json.loads(printed)["cases"]  # listed although it is out of the calendar's window
        assert case["phase"] == "missed" and case["title"] == "Technical interview - Acme Robotics"
        assert case["call_first"] == f"call first: {PHONE}" and code == 1
        code, printed = s.cli("status", "--format", "json", now=friday + timedelta(hours=1))
        (case,) = json.loads(printed)["cases"]
        assert [h["phase"] for h in case["history"]] == ["scheduled", "missed"] and case["call_first"]
        code, printed = s.cli("report", "--format", "json", now=friday + timedelta(hours=1))
        assert [c["call_first"] for c in json.loads(printed)["call_first"]] == [f"call first: {PHONE}"]
        assert s.run(friday + timedelta(hours=20, minutes=1)) == ["created:follow_up_apology", "withdrawn:missed_interview"]
        code, printed = s.cli("done", "iv", now=friday + timedelta(days=1))
        assert code == 0 and "closed" in printed.lower()
        assert s.case("iv").phase is Phase.CLOSED and "you said" in s.case("iv").close_reason
        assert s.run(friday + timedelta(days=1, minutes=1)) == ["withdrawn:follow_up_apology"]
        code, printed = s.cli("check", "--no-poll", "--format", "json", now=friday + timedelta(days=1, hours=1))
        assert json.loads(printed)["cases"] == [] and code == 0

    replay(tmp_path, FolderMailbox, story)


def test_a_miss_older_than_the_look_back_is_not_offered(tmp_path: Path) -> None:
    s = Story(tmp_path, FolderMailbox(tmp_path), restart=True)
    s.put(interview("iv", T))
    s.run(at("2026-11-23 08:00"))
    code, printed = s.cli("missed", "iv", now=T + timedelta(days=15))
    assert code == 2


# ---- the laptop slept through it ---------------------------------------------------------------------------


def test_a_laptop_that_slept_through_the_miss_handles_it_as_a_miss_on_waking(tmp_path: Path) -> None:
    woke = at("2026-11-24 22:30")

    def story(s: Story) -> None:
        s.put(interview("iv", T))
        assert s.run(at("2026-11-23 08:00")) == []
        s.put(meeting("m", T - timedelta(minutes=30)))
        # asleep from Monday evening; no check ran at 10:10; it wakes 12 hours after the start
        assert s.run(woke) == ["created:missed_interview"]
        case = s.case("iv")
        assert case.missed_at == woke  # timed from when it was noticed
        text = s.text(MISSED, "iv")
        assert "I'm very sorry" in text and "once more" not in text
        # the next day the untouched draft's "this morning" becomes "yesterday"
        assert s.run(woke + timedelta(hours=19)) == ["updated:missed_interview"]
        assert "yesterday at 10:00 GMT" in s.text(MISSED, "iv")
        assert s.run(woke + timedelta(hours=20, minutes=1)) == ["created:follow_up_apology",
                                                                  "withdrawn:missed_interview"]

    replay(tmp_path, FolderMailbox, story)


# ---- the same stories on the Google and Graph fakes --------------------------------------------------------


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, Path]]:
    from fakes.graph_fake import GraphFake, config_text, sign_in

    fake = GraphFake()
    state = tmp_path_factory.mktemp("graph-story")
    sign_in(fake, config_text(fake, state))
    yield fake, state
    fake.close()


def test_on_google_missed_sent_follow_up_then_re_invited(tmp_path: Path) -> None:
    from fakes.google_fake import GoogleFake

    def story(s: Story) -> None:
        reinvited(s)
        s.send(FOLLOW_UP, "iv")
        assert s.run(at("2026-11-25 10:00")) == ["sent:follow_up_apology"]
        assert s.run(at("2026-11-30 11:15")) == ["withdrawn:thank_you"]
        assert s.case("iv").phase is Phase.CLOSED

    transcripts = []
    for restart in (False, True):
        with GoogleFake() as fake:
            folder = tmp_path / str(restart)
            folder.mkdir()
            world = Story(folder, GoogleMailbox(fake, folder), restart)
            try:
                story(world)
            finally:
                world.close()
            assert fake.count("drafts.send") + fake.count("messages.send") == 0  # Salvage never sends
        transcripts.append([(when, _portable(snap, folder)) for when, snap in world.transcript])
    assert transcripts[0] == transcripts[1]


def test_on_graph_missed_then_moved_and_an_edit_left_alone(tmp_path: Path, graph: tuple[object, Path]) -> None:
    fake, state = graph

    def story(s: Story) -> None:
        missed_at_start(s)
        assert PHONE not in s.text(MISSED, "iv")  # the number is for the user's call, not the email
        s.send(MISSED, "iv")
        assert s.run(DUE + timedelta(minutes=1)) == ["created:follow_up_apology", "sent:missed_interview"]
        s.edit(FOLLOW_UP, "iv", "Dear Jordan,\n\nMy own words.\n\nAlex\n")
        s.put(s.entries["iv"].moved(at("2026-11-27 14:00")))
        assert s.run(at("2026-11-25 09:00")) == ["created:thank_you", "edited:follow_up_apology"]
        assert "sorry again" in s.text(THANK_YOU, "iv") and "My own words." in s.text(FOLLOW_UP, "iv")
        s.delete(THANK_YOU, "iv")
        assert s.run(at("2026-11-25 10:00")) == ["deleted:thank_you"]
        assert s.run(at("2026-11-26 10:00")) == []

    transcripts = []
    for restart in (False, True):
        fake.reset()  # type: ignore[attr-defined]
        folder = tmp_path / str(restart)
        folder.mkdir()
        world = Story(folder, GraphMailbox(fake, state), restart)
        try:
            story(world)
        finally:
            world.close()
        transcripts.append([(when, _portable(snap, folder)) for when, snap in world.transcript])
        assert fake.violations == []  # type: ignore[attr-defined]
    assert transcripts[0] == transcripts[1]
