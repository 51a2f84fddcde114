"""Approximate-time synchronisation of the feature streams, with a deadline for missing modalities.

No ROS here: the fusion node feeds :meth:`FeatureSync.add` with ``(modality, header stamp,
message)`` and fuses every :class:`SyncedSet` it returns. Complete sets are exactly those of
message_filters' (Python) ``ApproximateTimeSynchronizer`` with the same ``queue_size`` and
``slop`` (test/test_sync.py runs both on the same randomised streams):

* Each modality keeps up to ``queue_size`` messages by stamp (a repeated stamp replaces the
  message; beyond ``queue_size`` the oldest is dropped: ``overflow``).
* When a message arrives, each other modality's queued messages within ``slop`` of its stamp are
  candidates, nearest first; the first combination (in that order) whose stamps span less than
  ``slop`` (newest - oldest < slop) is emitted with the new message, and its messages leave the
  queues. ``slop`` is the largest stamp spread within a set.

What message_filters does not do, and this does:

* **Silent sensors are not waited for.** A modality with no message in the last ``deadline`` of
  stamp time before the new message (or none at all, ``deadline`` after the start) is left out
  of that search: the set is emitted at once without it (``missing``), so a dead sensor costs
  neither frames nor latency.
* **Deadline.** A message that has not joined a set by the time the streams' stamps have moved
  ``deadline`` past it (one lost WiFi window, a dropped LiDAR scan) is fused with what is there:
  the largest combination around it whose stamps span less than ``slop`` (then the smallest
  spread), the modality without a message there reported in :attr:`SyncedSet.missing`. It is
  dropped instead (``unmatched``) when another modality's message for that time already went
  into a set: the surplus of a faster stream (a 30 Hz camera beside a 10 Hz LiDAR) or a message
  that arrived after its set was fused without it. Stream time is the newest stamp of the
  streams, leaving out one that jumped more than ``reset_after`` ahead of the rest, so replay at
  any rate behaves alike; :meth:`FeatureSync.flush` fuses what is pending when every stream has
  gone quiet.
* **Stamps that jump back** more than ``reset_after`` behind the stream's newest or the last set
  (a bag loop, a restarted sensor) start a new time: what is pending from the old time is fused
  first (a loop's last frame, whose slowest modality is still on its way, is fused without it),
  then every queue loses the messages more than ``reset_after`` ahead of the new stamp
  (``resets``). Until each other stream has followed, its messages still in flight from the old
  time are dropped as ``late``. A message not newer than its stream's last fused one is ``late``.

A set's stamp (:attr:`SyncedSet.stamp_ns`) is the median of its messages' stamps (the lower one
for an even count).
"""
from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field
from typing import Generic, Sequence, TypeVar

NS_PER_S = 1_000_000_000
SEEN_HISTORY = 32  # stamps remembered per stream, to tell a lost message from a slower stream's rhythm
GAP_FACTOR = 1.5  # neighbouring stamps this many periods apart: a message is missing between them

T = TypeVar("T")


@dataclass
class StreamCounters:
    """What happened to one modality's messages (shown in diagnostics)."""

    received: int = 0
    used: int = 0  # went into an emitted set
    unmatched: int = 0  # passed over: its time was fused without it, or replaced by a message of the same stamp
    late: int = 0  # not newer than the stream's last fused message, or from before a stamp jump
    overflow: int = 0  # dropped because the queue held queue_size messages
    missing: int = 0  # emitted sets this modality was missing from
    resets: int = 0  # queue cleared because stamps jumped back

    @property
    def dropped(self) -> int:
        """Messages that never reached the model."""
        return self.unmatched + self.late + self.overflow


@dataclass(frozen=True)
class SyncedSet(Generic[T]):
    """One set to fuse: the message of each modality present."""

    stamp_ns: int  # median of the messages' stamps: the output's stamp
    messages: dict[str, T]
    stamps: dict[str, int]
    missing: tuple[str, ...]  # enabled modalities not in the set
    by_deadline: bool  # emitted by the deadline or a flush, not when its last message arrived

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def last_stamp_ns(self) -> int:
        """Newest stamp among the fused messages."""
        return max(self.stamps.values())


@dataclass
class _Stream(Generic[T]):
    pending: dict[int, T] = field(default_factory=dict)  # stamp -> message, in arrival order (as message_filters)
    newest: int | None = None
    last_used: int | None = None
    seen: list[int] = field(default_factory=list)  # the newest SEEN_HISTORY stamps received, sorted
    absent_at: int | None = None  # its newest stamp when it was last missing from a set
    joined: bool = True  # False after another stream jumped back, until this one follows
    counters: StreamCounters = field(default_factory=StreamCounters)

    def saw(self, stamp_ns: int) -> None:
        bisect.insort(self.seen, stamp_ns)
        if len(self.seen) > SEEN_HISTORY:
            del self.seen[0]

    def period_ns(self) -> int | None:
        """The stream's usual stamp interval: the median gap of the stamps seen (None before three)."""
        gaps = sorted(b - a for a, b in zip(self.seen, self.seen[1:]) if b > a)
        return gaps[len(gaps) // 2] if len(gaps) >= 2 else None

    def clear(self) -> int:
        count = len(self.pending)
        self.pending.clear()
        self.newest = None
        return count


class FeatureSync(Generic[T]):
    """Approximate-time + deadline synchroniser over ``modalities`` (see the module docstring).

    ``queue_size`` >= 1; 0 < ``slop_s`` <= ``deadline_s`` < ``reset_after_s``. Not thread-safe:
    the caller serialises :meth:`add`, :meth:`flush` and :meth:`configure`.
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
        self.modalities = modalities
        self._streams: dict[str, _Stream[T]] = {m: _Stream() for m in modalities}
        self.configure(queue_size=queue_size, slop_s=slop_s, deadline_s=deadline_s, reset_after_s=reset_after_s)
        self._last_set: int | None = None  # newest stamp of the last set
        self._first_ns: int | None = None  # first stamp since start or reset: never-seen streams awaited until deadline
        self.sets = 0
        self.complete_sets = 0
        self.resets = 0

    def configure(self, *, queue_size: int | None = None, slop_s: float | None = None,
                  deadline_s: float | None = None, reset_after_s: float | None = None) -> None:
        """Change any of the settings (ValueError, changing nothing, if the result is invalid);
        they apply from the next message on."""
        queue_size = self.queue_size if queue_size is None else int(queue_size)
        slop = self.slop_ns / NS_PER_S if slop_s is None else float(slop_s)
        deadline = self.deadline_ns / NS_PER_S if deadline_s is None else float(deadline_s)
        reset_after = self.reset_after_ns / NS_PER_S if reset_after_s is None else float(reset_after_s)
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if not 0 < slop <= deadline < reset_after:
            raise ValueError(f"need 0 < slop ({slop}) <= deadline ({deadline}) < reset_after ({reset_after}) seconds")
        self.queue_size = queue_size
        self.slop_ns = round(slop * NS_PER_S)
        self.deadline_ns = round(deadline * NS_PER_S)
        self.reset_after_ns = round(reset_after * NS_PER_S)
        for stream in self._streams.values():
            while len(stream.pending) > queue_size:
                del stream.pending[min(stream.pending)]
                stream.counters.overflow += 1

    @property
    def counters(self) -> dict[str, StreamCounters]:
        return {m: s.counters for m, s in self._streams.items()}

    @property
    def pending(self) -> dict[str, int]:
        """Messages queued per modality (each at most ``queue_size``)."""
        return {m: len(s.pending) for m, s in self._streams.items()}

    def add(self, modality: str, stamp_ns: int, message: T) -> list[SyncedSet[T]]:
        """Queue one message; returns the sets now due (oldest first, often none)."""
        stream = self._streams.get(modality)
        if stream is None:
            raise KeyError(f"modality {modality!r} is not synchronised here ({list(self.modalities)})")
        stream.counters.received += 1
        if not stream.joined:  # another stream jumped back: is this one still in the old time?
            now = max((s.newest for s in self._streams.values() if s.joined and s.newest is not None), default=None)
            if now is not None and stamp_ns > now + self.reset_after_ns:
                stream.counters.late += 1  # in flight from before the jump
                return []
            stream.joined = True
            stream.counters.resets += 1
            stream.counters.unmatched += stream.clear()
        else:
            known = [t for t in (stream.newest, self._last_set) if t is not None]
            if known and stamp_ns < max(known) - self.reset_after_ns:
                flushed = self._flush_old_time(stamp_ns)
                self._reset(modality, stamp_ns)
                return flushed + self._admit(stream, stamp_ns, message)
            if stream.last_used is not None and stamp_ns <= stream.last_used:
                stream.counters.late += 1
                return []
        return self._admit(stream, stamp_ns, message)

    def flush(self) -> list[SyncedSet[T]]:
        """Fuse everything pending now with what is there (the streams went quiet)."""
        return self._emit_due(force=True)

    # -- internals ---------------------------------------------------------------------------

    def _admit(self, stream: _Stream[T], stamp_ns: int, message: T) -> list[SyncedSet[T]]:
        if self._first_ns is None:
            self._first_ns = stamp_ns
        if stamp_ns in stream.pending:
            stream.counters.unmatched += 1  # replaced, as message_filters' queue (a dict by stamp) replaces it
        stream.pending[stamp_ns] = message
        stream.saw(stamp_ns)
        stream.newest = stamp_ns if stream.newest is None else max(stream.newest, stamp_ns)
        while len(stream.pending) > self.queue_size:
            del stream.pending[min(stream.pending)]
            stream.counters.overflow += 1
        out = []
        if stamp_ns in stream.pending:
            matched = self._match(stream, stamp_ns)
            if matched is not None:
                out.append(matched)
        out.extend(self._emit_due(force=False))
        return sorted(out, key=lambda s: s.stamp_ns)

    def _awaited(self, stream: _Stream[T], stamp_ns: int) -> bool:
        """Whether a set at ``stamp_ns`` waits for ``stream``: it has sent within ``deadline`` before
        (or the synchroniser started less than ``deadline`` before) and has not jumped far ahead;
        or it is more than ``reset_after`` behind (the others jumped forward; it is about to follow)
        and was not missing from a set since its last message."""
        if stream.newest is None:
            return self._first_ns is not None and stamp_ns - self._first_ns <= self.deadline_ns
        if stream.newest < stamp_ns - self.reset_after_ns:  # the others jumped ahead (sim -> wall time):
            return stream.newest != stream.absent_at  # it follows, unless it was already silent before
        return stamp_ns - self.deadline_ns <= stream.newest <= stamp_ns + self.reset_after_ns

    def _match(self, arrived: _Stream[T], stamp_ns: int) -> SyncedSet[T] | None:
        """message_filters' search for a set with the message just queued at ``stamp_ns`` (over the
        streams a set waits for)."""
        others: list[tuple[str, list[int]]] = []
        for modality, stream in self._streams.items():
            if stream is arrived or not self._awaited(stream, stamp_ns):
                continue
            near = [(s, abs(s - stamp_ns)) for s in stream.pending if abs(s - stamp_ns) <= self.slop_ns]
            if not near:
                return None
            near.sort(key=lambda pair: pair[1])  # stable: equal distances in arrival order
            others.append((modality, [s for s, _ in near]))
        own = next(m for m, s in self._streams.items() if s is arrived)
        for combination in itertools.product(*(stamps for _, stamps in others)):
            stamps = (*combination, stamp_ns)
            if max(stamps) - min(stamps) < self.slop_ns:
                chosen = {modality: s for (modality, _), s in zip(others, combination)}
                chosen[own] = stamp_ns
                return self._emit(chosen, by_deadline=False)
        return None

    def _stream_time(self) -> int | None:
        """The newest stamp of the streams, leaving out those more than ``reset_after`` ahead of the
        median stream (a clock glitch must not make everything due)."""
        newest = sorted(s.newest for s in self._streams.values() if s.newest is not None)
        if not newest:
            return None
        median = newest[(len(newest) - 1) // 2]
        return max(t for t in newest if t <= median + self.reset_after_ns)

    def _emit_due(self, *, force: bool) -> list[SyncedSet[T]]:
        """Fuse or drop, oldest first, the messages ``deadline`` behind stream time (all with ``force``)."""
        out: list[SyncedSet[T]] = []
        now = self._stream_time()
        while True:
            oldest = min(((stamp, m) for m, s in self._streams.items() for stamp in s.pending), default=None)
            if oldest is None or not (force or (now is not None and oldest[0] + self.deadline_ns <= now)):
                return out
            synced = self._fuse_due(*oldest)
            if synced is not None:
                out.append(synced)

    def _fuse_due(self, stamp_ns: int, modality: str) -> SyncedSet[T] | None:
        """The set around a message whose deadline has passed, or None when it is dropped: another
        stream's message for that time already went into a set, or the message falls between two
        frames of another stream (a faster stream's surplus)."""
        stream = self._streams[modality]
        choices = []
        for other_modality, other in self._streams.items():
            if other_modality == modality:  # this message or a later one of its stream within slop
                choices.append([t for t in stream.pending if stamp_ns <= t < stamp_ns + self.slop_ns])
                continue
            near = [t for t in other.pending if abs(t - stamp_ns) < self.slop_ns]
            if not near and not self._absent(other, stamp_ns):
                del stream.pending[stamp_ns]
                stream.counters.unmatched += 1
                return None
            choices.append([None, *near])
        best: tuple | None = None
        own_index = self.modalities.index(modality)
        for combination in itertools.product(*choices):
            stamps = [t for t in combination if t is not None]
            spread = max(stamps) - min(stamps)
            if spread >= self.slop_ns:
                continue
            key = (-len(stamps), spread, combination[own_index] - stamp_ns)
            if best is None or key < best[0]:
                best = (key, combination)
        chosen = {m: t for m, t in zip(self._streams, best[1]) if t is not None}
        return self._emit(chosen, by_deadline=True)

    def _absent(self, stream: _Stream[T], stamp_ns: int) -> bool:
        """Whether ``stream`` lacks a message at ``stamp_ns`` (lost, late or silent) rather than
        having had it already fused, or having no frame at that time (a slower stream)."""
        if not self._awaited(stream, stamp_ns):
            return True
        seen = stream.seen
        index = bisect.bisect_left(seen, stamp_ns)
        before = seen[index - 1] if index > 0 else None
        after = seen[index] if index < len(seen) else None
        if (before is not None and stamp_ns - before < self.slop_ns) or \
                (after is not None and after - stamp_ns < self.slop_ns):
            return False  # its message for this time was fused (or dropped) already
        if before is None or after is None:
            return True  # nothing before (it started later) or nothing since (it is late or lost)
        period = stream.period_ns()
        return period is None or after - before > GAP_FACTOR * period

    def _emit(self, chosen: dict[str, int], *, by_deadline: bool) -> SyncedSet[T]:
        messages: dict[str, T] = {}
        for modality in self.modalities:
            if modality in chosen:
                stream = self._streams[modality]
                stamp = chosen[modality]
                messages[modality] = stream.pending.pop(stamp)
                stream.last_used = stamp if stream.last_used is None else max(stream.last_used, stamp)
                stream.counters.used += 1
        missing = tuple(m for m in self.modalities if m not in chosen)
        for modality in missing:
            self._streams[modality].counters.missing += 1
            self._streams[modality].absent_at = self._streams[modality].newest
        stamps = sorted(chosen.values())
        self._last_set = stamps[-1] if self._last_set is None else max(self._last_set, stamps[-1])
        self.sets += 1
        self.complete_sets += not missing
        return SyncedSet(stamps[(len(stamps) - 1) // 2], messages, {m: chosen[m] for m in messages}, missing,
                         by_deadline)

    def _flush_old_time(self, stamp_ns: int) -> list[SyncedSet[T]]:
        """Before a jump back to ``stamp_ns``: fuse the sets still pending from the old time (what is
        there of them), so a bag loop does not lose its last frame. Only when every queued message
        is from the old time; otherwise the reset drops them."""
        queued = [t for s in self._streams.values() for t in s.pending]
        if not queued or min(queued) <= stamp_ns + self.reset_after_ns:
            return []
        return self._emit_due(force=True)

    def _reset(self, modality: str, stamp_ns: int) -> None:
        """``modality`` jumped back to ``stamp_ns``: forget what belongs to the old time."""
        self.resets += 1
        jumped = self._streams[modality]
        jumped.counters.resets += 1
        jumped.counters.unmatched += jumped.clear()
        for stream in self._streams.values():
            ahead = [t for t in stream.pending if t > stamp_ns + self.reset_after_ns]
            for t in ahead:
                del stream.pending[t]
            stream.counters.unmatched += len(ahead)
            stream.newest = max(stream.pending, default=None)
            stream.last_used = None
            stream.seen = [t for t in stream.seen if t <= stamp_ns + self.reset_after_ns]
            stream.joined = stream is jumped or bool(stream.pending)  # messages of the new time: it has jumped
        self._last_set = None
        self._first_ns = stamp_ns
