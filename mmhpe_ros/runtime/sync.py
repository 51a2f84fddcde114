"""Approximate-time synchronisation of the feature streams, with a deadline for missing modalities.

No ROS here: the fusion node feeds :meth:`FeatureSync.add` with ``(modality, header stamp,
message)`` and fuses every :class:`SyncedSet` it returns. The vocabulary is message_filters'
``ApproximateTimeSynchronizer``: ``queue_size`` messages kept per input, ``slop`` the largest
stamp difference within a set. Unlike it, a set is also emitted when a modality is late:

* **Anchor.** The next set is built around ``T``, the newest of the queue heads that lie within
  ``deadline`` of the oldest head. Each modality contributes its queued message nearest to ``T``
  if that is within ``slop``; each message is used at most once, so the output rate follows the
  slowest live stream (camera 30 Hz + LiDAR 10 Hz -> 10 Hz sets) and the surplus of faster
  streams is counted as ``unmatched``.
* **Settled.** A modality is settled for ``T`` once it has a message stamped at or after ``T``
  (a later one cannot be nearer, for in-order streams), or when it has been silent for more than
  ``deadline`` before ``T`` (a dead sensor is not waited for; but one more than ``reset_after``
  behind is taken to be about to follow a jump forward of the others, such as sim -> wall time,
  unless it was already missing). The set is emitted when every enabled modality is settled.
* **Deadline.** Otherwise it is emitted once some settled stream has reached ``T + deadline``:
  the modalities not there are reported in :attr:`SyncedSet.missing` (the model accepts any
  subset). Time is the streams' stamps, not the wall clock, so replay at any rate behaves alike;
  :meth:`FeatureSync.flush` emits what is pending when every stream has gone quiet.
* **Stamps that jump.** A message more than ``reset_after`` older than its stream's newest
  or older than the last set (a bag loop, a restarted sensor) starts a new time: the sets still
  pending from the old time are emitted first with what is there (a loop's last frame, whose
  slowest modality is still on its way, is fused without it rather than lost); then every queue
  loses the messages more than ``reset_after`` ahead of it (counted in ``resets``). Until each
  other stream has followed, its messages still in flight from the old time are dropped as
  ``late`` (so a loop costs no extra sets). A message far ahead of the rest waits outside the anchor window and does not count as
  time passing for the deadline (if it is ever fused alone, the others' next messages reset).
  Messages too old to join any future set (but not that old), and repeats of a stamp already
  fused from that stream, are dropped as ``late``; sets leave in increasing stamp order.

Every queue holds at most ``queue_size`` messages (the oldest is dropped and counted as
``overflow``), whatever the stamps do.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Generic, Sequence, TypeVar

NS_PER_S = 1_000_000_000

T = TypeVar("T")


@dataclass
class StreamCounters:
    """What happened to one modality's messages (shown in diagnostics)."""

    received: int = 0
    used: int = 0  # went into an emitted set
    unmatched: int = 0  # passed over: a nearer message was chosen, or none was within slop
    late: int = 0  # arrived too old to join any future set
    overflow: int = 0  # dropped because the queue held queue_size messages
    missing: int = 0  # emitted sets this modality was missing from
    resets: int = 0  # queue cleared because stamps jumped back

    @property
    def dropped(self) -> int:
        """Messages that never reached the model."""
        return self.unmatched + self.late + self.overflow


@dataclass(frozen=True)
class SyncedSet(Generic[T]):
    """One set to fuse: the message of each modality present, around the anchor stamp."""

    stamp_ns: int  # anchor stamp: the output's stamp
    messages: dict[str, T]
    stamps: dict[str, int]
    missing: tuple[str, ...]  # enabled modalities not in the set
    by_deadline: bool  # emitted before every modality was settled

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def last_stamp_ns(self) -> int:
        """Newest stamp among the fused messages."""
        return max(self.stamps.values())


@dataclass
class _Queue(Generic[T]):
    stamps: list[int] = field(default_factory=list)  # sorted
    messages: list[T] = field(default_factory=list)
    newest: int | None = None
    used: int | None = None  # stamp of the last message of this stream that went into a set
    joined: bool = True  # False after another stream jumped back, until this one follows
    absent_at: int | None = None  # its newest stamp when it was last missing from a set
    counters: StreamCounters = field(default_factory=StreamCounters)

    def insert(self, stamp_ns: int, message: T) -> None:
        index = bisect.bisect_right(self.stamps, stamp_ns)
        self.stamps.insert(index, stamp_ns)
        self.messages.insert(index, message)
        self.newest = stamp_ns if self.newest is None else max(self.newest, stamp_ns)

    def pop(self, index: int) -> T:
        del self.stamps[index]
        return self.messages.pop(index)

    def drop_before(self, index: int) -> int:
        del self.stamps[:index], self.messages[:index]
        return index

    def nearest(self, stamp_ns: int) -> int | None:
        if not self.stamps:
            return None
        index = bisect.bisect_left(self.stamps, stamp_ns)
        candidates = [i for i in (index - 1, index) if 0 <= i < len(self.stamps)]
        return min(candidates, key=lambda i: abs(self.stamps[i] - stamp_ns))

    def clear_keep_newest(self) -> int:
        count = len(self.stamps)
        self.stamps.clear()
        self.messages.clear()
        return count

    def clear(self) -> int:
        count = len(self.stamps)
        self.stamps.clear()
        self.messages.clear()
        self.newest = None
        return count


class FeatureSync(Generic[T]):
    """Approximate-time + deadline synchroniser over ``modalities`` (see the module docstring).

    ``queue_size`` >= 1; ``slop_s`` >= 0; ``deadline_s`` >= ``slop_s``; ``reset_after_s`` >
    ``deadline_s``. Not thread-safe: the caller serialises :meth:`add` and :meth:`flush`.
    """

    def __init__(
        self,
        modalities: Sequence[str],
        *,
        queue_size: int = 10,
        slop_s: float = 0.05,
        deadline_s: float = 0.25,
        reset_after_s: float = 1.0,
    ) -> None:
        modalities = tuple(modalities)
        if not modalities or len(set(modalities)) != len(modalities):
            raise ValueError(f"need distinct modalities to synchronise, got {modalities}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if not 0 <= slop_s <= deadline_s < reset_after_s:
            raise ValueError(
                f"need 0 <= slop ({slop_s}) <= deadline ({deadline_s}) < reset_after ({reset_after_s}) seconds")
        self.modalities = modalities
        self.queue_size = queue_size
        self.slop_ns = round(slop_s * NS_PER_S)
        self.deadline_ns = round(deadline_s * NS_PER_S)
        self.reset_after_ns = round(reset_after_s * NS_PER_S)
        self._queues: dict[str, _Queue[T]] = {m: _Queue() for m in modalities}
        self._last_anchor: int | None = None
        self._first_ns: int | None = None  # first stamp since start or reset: never-seen streams wait from here
        self.sets = 0
        self.complete_sets = 0
        self.resets = 0

    @property
    def counters(self) -> dict[str, StreamCounters]:
        return {m: q.counters for m, q in self._queues.items()}

    @property
    def pending(self) -> dict[str, int]:
        """Messages queued per modality (each at most ``queue_size``)."""
        return {m: len(q.stamps) for m, q in self._queues.items()}

    def add(self, modality: str, stamp_ns: int, message: T) -> list[SyncedSet[T]]:
        """Queue one message; returns the sets it completes (oldest first, often none)."""
        queue = self._queues.get(modality)
        if queue is None:
            raise KeyError(f"modality {modality!r} is not synchronised here ({list(self.modalities)})")
        queue.counters.received += 1
        known = [t for t in (queue.newest, self._last_anchor) if t is not None]
        reference = max(known) if known else None
        if not queue.joined:  # another stream jumped back: is this one still in the old time?
            now = max((q.newest for q in self._queues.values() if q.joined and q.newest is not None), default=None)
            if now is not None and stamp_ns > now + self.reset_after_ns:
                queue.counters.late += 1  # in flight from before the jump
                return []
            queue.joined = True
            queue.counters.resets += 1
            queue.counters.unmatched += queue.clear()
        elif reference is not None and stamp_ns < reference - self.reset_after_ns:
            flushed = self._flush_old_time(stamp_ns)
            self._reset(modality, stamp_ns)
            return flushed + self._admit(queue, stamp_ns, message)
        elif (self._last_anchor is not None and stamp_ns <= self._last_anchor - self.slop_ns) or \
                (queue.used is not None and stamp_ns <= queue.used):
            queue.counters.late += 1  # too old for any future set, or a repeat of a fused stamp
            return []
        return self._admit(queue, stamp_ns, message)

    def flush(self) -> list[SyncedSet[T]]:
        """Emit every pending set now with what is there (the streams went quiet)."""
        return self._emit(force=True)

    # -- internals ---------------------------------------------------------------------------

    def _admit(self, queue: _Queue[T], stamp_ns: int, message: T) -> list[SyncedSet[T]]:
        """Queue a message that may join a future set; the sets that are now due."""
        if self._first_ns is None:
            self._first_ns = stamp_ns
        queue.insert(stamp_ns, message)
        if len(queue.stamps) > self.queue_size:
            queue.drop_before(1)
            queue.counters.overflow += 1
        return self._emit(force=False)

    def _flush_old_time(self, stamp_ns: int) -> list[SyncedSet[T]]:
        """Before a jump back to ``stamp_ns``: emit the sets still pending from the old time (what
        is there of them), so a bag loop does not lose its last frame. Only when every queued
        message is from the old time; otherwise the reset drops them as before."""
        queued = [t for q in self._queues.values() for t in q.stamps]
        if not queued or min(queued) <= stamp_ns + self.reset_after_ns:
            return []
        return self._emit(force=True)

    def _reset(self, modality: str, stamp_ns: int) -> None:
        """``modality`` jumped back to ``stamp_ns``: forget what belongs to the old time."""
        self.resets += 1
        queue = self._queues[modality]
        queue.counters.resets += 1
        queue.counters.unmatched += queue.clear()
        for other in self._queues.values():
            ahead = bisect.bisect_right(other.stamps, stamp_ns + self.reset_after_ns)
            other.counters.unmatched += len(other.stamps) - ahead
            del other.stamps[ahead:], other.messages[ahead:]
            other.newest = other.stamps[-1] if other.stamps else None
            other.used = None
            other.joined = other is queue or bool(other.stamps)  # messages of the new time: it has jumped
        self._last_anchor = None
        self._first_ns = stamp_ns

    def _anchor(self) -> int | None:
        """Stamp of the next set: sets leave in increasing stamp order, so only later heads count
        (a message just before the last set stays a candidate partner until it is out of slop)."""
        floor = self._last_anchor
        heads = [next((t for t in q.stamps if floor is None or t > floor), None) for q in self._queues.values()]
        heads = [h for h in heads if h is not None]
        if not heads:
            return None
        oldest = min(heads)
        return max(h for h in heads if h <= oldest + self.deadline_ns)

    def _settled(self, queue: _Queue[T], anchor: int) -> bool:
        """Its message for ``anchor`` is here, or it has been silent for more than ``deadline``.

        A stream whose newest stamp is more than ``reset_after`` behind the anchor is silent only
        if it was already missing at that stamp: otherwise the anchor is a jump forward of the
        others (sim -> wall time), which it is about to follow.
        """
        if queue.newest is None:  # nothing since start or reset: waited for `deadline` from then
            return self._first_ns is not None and self._first_ns < anchor - self.deadline_ns
        if queue.newest >= anchor:
            return True
        return queue.newest < anchor - self.deadline_ns and (
            queue.newest >= anchor - self.reset_after_ns or queue.newest == queue.absent_at)

    def _deadline_passed(self, anchor: int) -> bool:
        """Some stream has moved ``deadline`` past the anchor (and has not jumped far ahead)."""
        return any(
            q.newest is not None and anchor + self.deadline_ns <= q.newest <= anchor + self.reset_after_ns
            for q in self._queues.values()
        )

    def _emit(self, *, force: bool) -> list[SyncedSet[T]]:
        out: list[SyncedSet[T]] = []
        while (anchor := self._anchor()) is not None:
            settled = all(self._settled(q, anchor) for q in self._queues.values())
            if not (settled or force or self._deadline_passed(anchor)):
                break
            out.append(self._take(anchor, by_deadline=not settled))
        if force:  # what is left is at or before the last set: it can join no later one
            for queue in self._queues.values():
                queue.counters.unmatched += queue.clear_keep_newest()
        return out

    def _take(self, anchor: int, *, by_deadline: bool) -> SyncedSet[T]:
        """Remove and return the set around ``anchor``; prune what can no longer match."""
        messages: dict[str, T] = {}
        stamps: dict[str, int] = {}
        for modality, queue in self._queues.items():
            index = queue.nearest(anchor)
            if index is not None and abs(queue.stamps[index] - anchor) <= self.slop_ns:
                stamps[modality] = queue.used = queue.stamps[index]
                messages[modality] = queue.pop(index)
                queue.counters.used += 1
                queue.counters.unmatched += queue.drop_before(bisect.bisect_right(queue.stamps, queue.used))
            too_old = bisect.bisect_left(queue.stamps, anchor - self.slop_ns)
            queue.counters.unmatched += queue.drop_before(too_old)
        missing = tuple(m for m in self.modalities if m not in messages)
        for modality in missing:
            self._queues[modality].counters.missing += 1
            self._queues[modality].absent_at = self._queues[modality].newest
        self._last_anchor = anchor
        self.sets += 1
        self.complete_sets += not missing
        return SyncedSet(anchor, messages, stamps, missing, by_deadline)
