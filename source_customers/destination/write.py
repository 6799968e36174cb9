"""`write`: records from stdin applied to the vendor, in parallel, each ending written or
rejected; each STATE echoed once every record before it has ended.

Records are applied by `num_workers` threads, whichever is free taking the next record, and
one record of a matching key at a time: a key's next record is queued once the one before it
has ended, so records with one key are applied in input order. The main thread reads stdin,
deals, and writes every message out (one writer: lines never interleave). A record is in the
epoch of the next STATE; a STATE is echoed once its epoch and every one before it are done,
with `destinationStats` counting its epoch's records and rejected records. Input is read no
faster than it is applied: at most `QUEUED_PER_WORKER` records a worker read and not yet
ended, and as many epochs not yet echoed (one record lingering holds back the STATEs after
it, which would otherwise pile up as fast as the others end). An epoch is forgotten once
echoed: memory stays flat however many rows and STATEs come.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_customers.destination.apply import Applier, Outcome
from source_customers.destination.rejected import RejectedRecords
from source_customers.masking import mask
from source_customers.runtime.progress import counted, duration, progress_seconds

QUEUED_PER_WORKER = 64
LOGGED_PER_CAUSE = 5  # rejections logged one by one per cause; the rest are counted
WRITTEN = ("created", "updated", "deleted")


@dataclass
class StreamWrite:
    name: str
    applier: Applier
    records: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)  # the vendor's, by message
    notes: Counter[str] = field(default_factory=Counter)  # asked for, not applied
    started: float = field(default_factory=time.monotonic)

    def line(self, dry_run: bool, done: bool) -> str:
        verb = "would be " if dry_run else ""
        parts = [f"{self.kinds[k]:,} {verb}{k}" for k in (*WRITTEN, "unchanged")
                 if self.kinds[k]]
        if self.kinds["rejected"]:
            parts.append(f"{self.kinds['rejected']:,} {verb}rejected ({counted(self.reasons)})")
        if self.notes:
            parts.append(f"not applied: {counted(self.notes)}")
        if self.warnings:
            parts.append(f"the vendor's warnings: {counted(self.warnings)}")
        took = duration(time.monotonic() - self.started)
        state = f"done in {took}" if done else f"running for {took}"
        records = f"{self.records:,} record{'' if self.records == 1 else 's'}"
        return (f"Stream '{self.name}' {state}: {records}"
                + (f": {', '.join(parts)}" if parts else "") + ".")


@dataclass
class _Epoch:
    outstanding: int = 0
    records: int = 0
    rejected: int = 0
    state: dict[str, Any] | None = None  # the STATE that closes it, once read


class BadInput(Exception):
    pass


class Writer:
    def __init__(self, streams: Mapping[str, StreamWrite], workers: int,
                 rejected: RejectedRecords, emit: Callable[[dict[str, Any]], None],
                 dry_run: bool) -> None:
        self.streams, self.rejected, self.emit = streams, rejected, emit
        self.dry_run = dry_run
        self.workers = max(1, workers)
        # One queue for every worker: whichever is free takes the next record. Dealt to a
        # queue per worker by key instead, the input waited on the busiest worker while the
        # others ran dry (10,000 Malomo rows: 9% slower than a thread pool's loop).
        self.work: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.results: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.capacity = QUEUED_PER_WORKER * self.workers  # records read and not yet ended
        self.in_flight = 0
        # A key with a record queued or being applied, and its next records, in input order:
        # one record of a key at a time.
        self.busy: dict[tuple[str, str], deque[Any]] = {}
        # Epochs by number, each dropped once its STATE is echoed: a source may send a STATE
        # after every record, and a million of them kept would grow with the input.
        self.epochs: dict[int, _Epoch] = {0: _Epoch()}
        self.current = 0  # the epoch records now read belong to
        self.echoed = 0  # epochs whose STATE is echoed
        self.failure: BaseException | None = None
        self.stop = threading.Event()
        self.logged: Counter[tuple[str, str]] = Counter()
        self._told = time.monotonic()
        self._interval = progress_seconds()

    # --- workers ---------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            item = self.work.get()
            if item is None:
                return
            epoch, stream, record, key = item
            if self.stop.is_set():
                self.results.put((epoch, stream, record, key, None))
                continue
            try:
                outcome = stream.applier.apply(record)
            except BaseException as error:  # the sync's, not the record's: handed over
                self.stop.set()
                self.results.put((epoch, stream, record, key, error))
                continue
            self.results.put((epoch, stream, record, key, outcome))

    # --- main thread -----------------------------------------------------------------------
    def run(self, lines: Iterable[bytes]) -> None:
        threads = [threading.Thread(target=self._work, name=f"writer-{n}", daemon=True)
                   for n in range(self.workers)]
        for thread in threads:
            thread.start()
        bad: BadInput | None = None
        try:
            for number, line in enumerate(lines, 1):
                if self.stop.is_set():
                    break
                if line.strip():
                    self._take(number, line)
                self._collect(block=False)
        except BadInput as error:
            bad = error
        finally:
            # Every record read ends (applied, or passed over once the sync has failed)
            # before the workers are told to stop: a key's later records are queued only as
            # its earlier ones end.
            while self.in_flight:
                self._collect(block=True, timeout=0.2)
            for _ in threads:
                self.work.put(None)
            for thread in threads:
                thread.join()
            self._collect(block=False)
        if self.failure is not None:
            raise self.failure
        if bad is not None:
            raise bad

    def _take(self, number: int, line: bytes) -> None:
        try:
            message = orjson.loads(line)
            kind = message["type"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise BadInput(f"Line {number} of the input is not an Airbyte message; the records "
                           "before it were written or rejected.") from None
        if kind == "RECORD":
            record = message.get("record") or {}
            stream = self.streams.get(str(record.get("stream")))
            if stream is None:
                raise BadInput(f"Line {number} is a record of stream "
                               f"'{record.get('stream')}', which the catalog does not "
                               "configure.")
            data = record.get("data")
            if not isinstance(data, dict):
                raise BadInput(f"Line {number} is a record whose data is not an object.")
            self._deal(stream, data)
        elif kind == "STATE":
            self._make_room()
            self.epochs[self.current].state = message.get("state")
            self.current += 1
            self.epochs[self.current] = _Epoch()
            self._echo()

    def _deal(self, stream: StreamWrite, data: dict[str, Any]) -> None:
        found = stream.applier.key_of(data)
        key = None if found is None else (stream.name, found)
        self._make_room()
        epoch = self.current
        self.epochs[epoch].outstanding += 1
        stream.records += 1
        self.in_flight += 1
        item = (epoch, stream, data, key)
        if key is not None:
            waiting = self.busy.get(key)
            if waiting is not None:
                waiting.append(item)
                return
            self.busy[key] = deque()
        self.work.put(item)

    def _make_room(self) -> None:
        """Input is read no faster than it is applied, nor than its STATEs are echoed. Once
        the sync has failed, records are passed over and their epochs never end: no wait."""
        while not self.stop.is_set() and (self.in_flight >= self.capacity
                                          or len(self.epochs) > self.capacity):
            self._collect(block=True, timeout=0.2)

    def _collect(self, block: bool, timeout: float = 0.0) -> None:
        while True:
            try:
                epoch, stream, record, key, outcome = \
                    self.results.get(block=block, timeout=timeout) if block \
                    else self.results.get_nowait()
            except queue.Empty:
                break
            block = False
            self._release(key)
            self._ended(epoch, stream, record, outcome)
        self._echo()
        self._tell()

    def _release(self, key: tuple[str, str] | None) -> None:
        """A record has ended: its key's next record, if one waits, is queued."""
        self.in_flight -= 1
        if key is None:
            return
        waiting = self.busy[key]
        if waiting:
            self.work.put(waiting.popleft())
        else:
            del self.busy[key]

    def _ended(self, epoch: int, stream: StreamWrite, record: dict[str, Any],
               outcome: Outcome | BaseException | None) -> None:
        if isinstance(outcome, BaseException):
            if self.failure is None:
                self.failure = outcome
            return
        if outcome is None:  # not applied: the sync failed first
            return
        stream.kinds[outcome.kind] += 1
        for said, counter, verb in ((outcome.notes, stream.notes, "Not applied"),
                                    (outcome.warnings, stream.warnings, "Warned")):
            for text in said:
                text = _masked(text, record)  # the counts are printed in the summary too
                counter[text] += 1
                self._log_said(stream, record, verb, text)
        self.epochs[epoch].outstanding -= 1
        self.epochs[epoch].records += 1
        if outcome.kind == "rejected":
            stream.reasons[outcome.reason] += 1
            self.epochs[epoch].rejected += 1
            if not self.dry_run:
                self.rejected.add(stream.name, record, outcome)
            self._log_rejection(stream, record, outcome)

    def _log_rejection(self, stream: StreamWrite, record: dict[str, Any],
                       outcome: Outcome) -> None:
        self.logged[(stream.name, outcome.reason)] += 1
        if self.logged[(stream.name, outcome.reason)] > LOGGED_PER_CAUSE:
            return
        text = _masked(outcome.message, record)
        verb = "Would reject" if self.dry_run else "Rejected"
        self.emit(_log("WARN", f"{verb} a record of '{stream.name}'{self._which(stream, record)}"
                               f": {outcome.reason}{f' ({text})' if text else ''}."))

    def _log_said(self, stream: StreamWrite, record: dict[str, Any], verb: str,
                  text: str) -> None:
        """A note or a vendor's warning on a written record, logged LOGGED_PER_CAUSE times."""
        self.logged[(stream.name, text)] += 1
        if self.logged[(stream.name, text)] > LOGGED_PER_CAUSE:
            return
        self.emit(_log("WARN", f"{verb} on a record of '{stream.name}'"
                               f"{self._which(stream, record)}: {text}."))

    @staticmethod
    def _which(stream: StreamWrite, record: dict[str, Any]) -> str:
        which = ", ".join(f"{k} {mask(str(record.get(k)))}" for k in stream.applier.key
                          if record.get(k))
        return f" ({which})" if which else ""

    def _echo(self) -> None:
        """Echoes, in order, each STATE whose records have all ended."""
        while self.echoed < self.current:
            epoch = self.epochs[self.echoed]
            if epoch.outstanding or epoch.state is None:
                return
            stats = {"recordCount": float(epoch.records),
                     "rejectedRecordCount": float(epoch.rejected)}
            self.emit({"type": "STATE", "state": {**epoch.state, "destinationStats": stats}})
            del self.epochs[self.echoed]
            self.echoed += 1

    def _tell(self) -> None:
        now = time.monotonic()
        if now - self._told < self._interval:
            return
        self._told = now
        for stream in self.streams.values():
            if stream.records:
                self.emit(_log("INFO", stream.line(self.dry_run, done=False)))

    def summary(self) -> None:
        for stream in self.streams.values():
            self.emit(_log("INFO", stream.line(self.dry_run, done=True)))
        if self.rejected.stored:
            self.emit(_log("INFO", f"{self.rejected.stored:,} rejected records stored in "
                                   f"{self.rejected.where()}."))


def _masked(text: str, record: Mapping[str, Any]) -> str:
    """`text` with the record's own values masked: the vendor may quote them."""
    for value in record.values():
        if isinstance(value, str) and len(value) >= 5:
            text = text.replace(value, mask(value))
    return text


def _log(level: str, text: str) -> dict[str, Any]:
    return {"type": "LOG", "log": {"level": level, "message": text}}


def failure_message(error: BaseException) -> str:
    if isinstance(error, AirbyteTracedException):
        return error.message or str(error)
    return f"{type(error).__name__}: {error}"
