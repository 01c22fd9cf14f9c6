"""How many tokens speculative decoding drafts: more while they are kept, fewer when not, and
plain steps for a while after drafts rejected whole."""

from gradient.generation.draft_schedule import FIRST_SIZE, LONGEST_WAIT, DraftSchedule


def test_drafts_grow_while_kept_and_follow_what_was_kept():
    s = DraftSchedule(7)
    assert s.next(100) == FIRST_SIZE == 3
    s.update(3, 3)
    assert s.next(100) == 5
    s.update(5, 5)
    assert s.next(100) == 7            # at most the limit
    s.update(7, 7)
    assert s.next(100) == 7
    s.update(7, 2)                     # two kept: one more than that next
    assert s.next(100) == 3
    assert s.next(2) == 2              # never more than may still be generated


def test_drafts_rejected_whole_wait_longer_each_time():
    s = DraftSchedule(8)
    plain_steps = []
    for _ in range(9):
        size = s.next(100)
        assert size > 0
        s.update(size, 0)
        waited = 0
        while s.next(100) == 0:
            waited += 1
        plain_steps.append(waited)
    assert plain_steps == [1, 2, 4, 8, 16, 32, 32, 32, 32]
    assert max(plain_steps) == LONGEST_WAIT
    assert s.size == 1
    s.update(1, 1)                     # kept again: no more waiting, and growing
    assert s.next(100) == 3


def test_a_forward_without_drafts_changes_nothing():
    s = DraftSchedule(5)
    s.update(0, 0)
    assert s.next(100) == 3


def test_a_timed_schedule_first_times_a_plain_step():
    s = DraftSchedule(5, timed=True)
    assert s.next(100) == 0
    s.update(0, 0, 0.010)
    assert s.next(100) == FIRST_SIZE


def test_drafts_kept_in_part_that_cost_more_than_plain_steps_wait_as_misses():
    s = DraftSchedule(5, timed=True)
    s.next(100)
    s.update(0, 0, 0.010)                  # a plain step: 10 ms a token
    s.update(s.next(100), 2, 1.0)          # the first drafts' forward (a draft model reading
    assert s.next(100) == 3                # the prompt) is left out
    s.update(s.next(100), 2, 0.024)        # 3 tokens for 24 ms: 8 ms a token, it pays
    assert s.next(100) == 3                # no wait
    waits = []
    for _ in range(4):                     # 2 tokens for 30 ms: 15 ms a token, it does not
        size = s.next(100)
        assert size > 0
        s.update(size, 1, 0.030)
        waited = 0
        while s.next(100) == 0:
            waited += 1
            s.update(0, 0, 0.010)
        waits.append(waited)
    # the running average (half the newest): 11.5 ms a token after the first such forward,
    # then 13.3, 14.1, 14.6: plain steps between tries, longer each time
    assert waits == [1, 2, 4, 8]
    for still_waits in (True, False):      # 6 ms a token: the average 10.3 ms, then 8.1
        s.update(s.next(100), 1, 0.012)
        assert (s.next(100) == 0) is still_waits
        while s.next(100) == 0:
            s.update(0, 0, 0.010)


def test_an_untimed_schedule_judges_by_acceptance_alone():
    s = DraftSchedule(5)
    s.update(s.next(100), 1)               # nothing known of the seconds: kept in part pays
    assert s.next(100) == 2
