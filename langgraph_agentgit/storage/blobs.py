"""Content-addressed storage of channel values and writes.

Five kinds of blob:

* ``VALUE`` — one serialized value, compressed with a preset dictionary when that pays
  off (zlib, or zstd above 4 KiB: see ``_ZSTD_MIN_BYTES``). A channel value may also
  name other VALUE blobs (its ``deps``) whose bytes join the dictionary: a new message is
  compressed against the write that carried it to the channel, so the same text is not
  paid for twice.
* ``LIST_DELTA`` — a list given as "the first ``keep`` items of a base list blob, then the
  items of a tail ``VALUE`` blob". A message list that grows by one message per step is
  stored as one small delta per step instead of a full copy.
* ``LIST_INDEX`` — a list given as slices of other ``VALUE`` blobs. Written instead of a
  delta once a delta chain reaches :func:`index_depth` (8 to :data:`MAX_DELTA_DEPTH`, by
  the list's length), so reading any version takes a bounded number of lookups. It
  costs a few bytes per slice, never a copy of the items.
* ``PACK`` and ``PACKED`` — when an index is written, the tails its thread stored since
  the previous one (one small list per step; all but the newest, which the index names
  itself) are packed: their items are stored again as
  one ``PACK`` blob (a list, compressed as one stream) and each tail's row is rewritten
  in place as a ``PACKED`` reference (its slice of the pack's items and of its bytes), so
  nothing is stored twice. The index names the pack: a cold read of a long list then
  decompresses and decodes a few packs instead of one blob per message. A packed tail
  keeps its id and reads back the same value, down to its exact serialized bytes (it may
  be another blob's compression hint).

Identical content is stored once (the digest is unique), across checkpoints, writes,
threads and branches. Blob ids are never reused (AUTOINCREMENT), so decoded values can be
cached by id for the life of the process (see :class:`_Decoded` for what happens when a
caller edits a shared object in place).
"""

from __future__ import annotations

import functools
import hashlib
import json
import operator
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Generic, TypeVar

import ormsgpack
import zstandard
from langgraph.checkpoint.serde.base import SerializerProtocol

from langgraph_agentgit.errors import AgentGitError, CorruptDataError
from langgraph_agentgit.storage.backend import Connection
from langgraph_agentgit.storage.zdict import PRESET_V1

VALUE, LIST_DELTA, LIST_INDEX, PACK, PACKED = 0, 1, 2, 3, 4
#: Kinds whose row holds one value (a list record is built from others).
VALUE_KINDS = (VALUE, PACK, PACKED)
KINDS = (VALUE, LIST_DELTA, LIST_INDEX, PACK, PACKED)
# A run of tails shorter than this is left as it is: packing it saves too little.
MIN_PACK_ITEMS = 4
# The type name of a serde's msgpack payloads: the only ones whose list items can be cut
# out and joined as bytes (msgpack is self-delimiting and a list is a header and items).
_MSGPACK = "msgpack"
# Bytes of serialized values the decoded-value cache of one saver holds (see BlobStore).
DEFAULT_CACHE_BYTES = 64 * 1024 * 1024
# Deltas a list version may sit on before the next version is an index (and its tails
# are packed): see index_depth. A cold read pays about 30 us per tail it meets (a row, a
# decompression, a decode, often a hint), several times what a packed message costs, so
# it is slowest just before an index. Measured on the chat (40 threads, cold
# get_state): with 64 a 30-turn thread read in 5x SqliteSaver's time, a 34-turn one in
# 2x; 32 halved that peak at the same size (200 turns: 716 KB against 721 KB).
MAX_DELTA_DEPTH = 32
# Short lists index sooner: at 8 a 15-turn thread reads in half the time it takes at 32.
# Everywhere 8 costs 6% more bytes at 200 turns (small packs compress worse and every
# index names every pack); 8 only while the list is short costs 3%.
MIN_DELTA_DEPTH = 8


def index_depth(items: int) -> int:
    """How many deltas a list of ``items`` items may sit on: one eighth of its length,
    from :data:`MIN_DELTA_DEPTH` to :data:`MAX_DELTA_DEPTH` (so a cold read meets at most
    about one tail per eight items)."""
    return min(MAX_DELTA_DEPTH, max(MIN_DELTA_DEPTH, items // 8))


# Values may be compressed against values that are themselves compressed against others,
# two levels deep at most (a message against the write that carried it, the write against
# the input it came from).
MAX_HINT_LEVEL = 2
_COMPRESS_MIN_BYTES = 24
_PLAIN, _ZLIB, _ZSTD = b"\x00", b"\x01", b"\x02"
_FLAGS = (_PLAIN, _ZLIB, _ZSTD)
# A value of more than 4 KiB compressed on its own (a pack above all) is a zstd frame: it
# inflates about three times as fast as zlib at the same size, and a cold read spent a
# fifth of its time inflating. Smaller values stay zlib streams, which zstd made 4%
# larger (messages, checkpoint bodies), and so do values compressed against hints: a
# zstd dictionary per value costs more to load (17 us) than the value takes to inflate.
# Frames carry their size and a checksum (4 bytes: without it a damaged frame mostly
# inflates to other text, where zlib's own checksum fails the read), not zstd's magic
# number.
_ZSTD_MIN_BYTES = 4096
_ZSTD_LEVEL = 6
# Larger payloads are stored as zlib streams, and a frame claiming more is damage (zstd
# allocates what the frame announces, so a forged size must not reach it).
_ZSTD_MAX_BYTES = 64 * 1024 * 1024
_ZSTD_DICT = zstandard.ZstdCompressionDict(PRESET_V1, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
# zstd's contexts are not thread-safe, and loading the dictionary costs more than a small
# value takes to compress: one pair per thread.
_zstd_local = threading.local()


def _zstd() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    pair: tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor] | None = getattr(
        _zstd_local, "pair", None
    )
    if pair is None:
        params = zstandard.ZstdCompressionParameters.from_level(
            _ZSTD_LEVEL,
            format=zstandard.FORMAT_ZSTD1_MAGICLESS,
            write_content_size=True,
            write_checksum=True,
            write_dict_id=False,
        )
        pair = (
            zstandard.ZstdCompressor(dict_data=_ZSTD_DICT, compression_params=params),
            zstandard.ZstdDecompressor(
                dict_data=_ZSTD_DICT, format=zstandard.FORMAT_ZSTD1_MAGICLESS
            ),
        )
        _zstd_local.pair = pair
    return pair


def _unzstd(frame: bytes) -> bytes:
    header = zstandard.get_frame_parameters(frame, format=zstandard.FORMAT_ZSTD1_MAGICLESS)
    if header.content_size > _ZSTD_MAX_BYTES:
        raise CorruptDataError(
            f"a stored value claims {header.content_size} bytes, more than a value stored "
            "as zstd may hold"
        )
    if not header.has_checksum:
        # Every frame is written with one: a flipped flag would otherwise let the next
        # flipped bit through as other text.
        raise CorruptDataError("a stored zstd value has lost its checksum")
    return _zstd()[1].decompress(frame)


K = TypeVar("K")
V = TypeVar("V")

Slice = tuple[int, int, int]  # (value blob id, start, stop)


class LRU(Generic[K, V]):
    """A thread-safe least-recently-used map bounded by the total weight of its entries
    (bytes, as the caller estimates them). An entry heavier than the whole capacity is
    not kept.

    While a write transaction runs, :meth:`BlobStore.transaction` has the map note every
    key its thread stores (``journal``), so that the entries can be dropped if the
    transaction rolls back: their ids may then be handed out again for other content
    (SQLite), or name blobs that do not exist (Postgres).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.weight = 0
        self._data: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()
        # Per thread: on a backend with concurrent writers (Postgres), one saver runs
        # several write transactions at once, each on its own thread.
        self._local = threading.local()

    @property
    def journal(self) -> set[K] | None:
        return getattr(self._local, "journal", None)

    @journal.setter
    def journal(self, keys: set[K] | None) -> None:
        self._local.journal = keys

    def get(self, key: K) -> V | None:
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return None
            self._data.move_to_end(key)
            return entry[0]

    def put(self, key: K, value: V, weight: int = 1) -> None:
        if weight > self.capacity or self.capacity <= 0:
            self.pop(key)
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self.weight -= old[1]
            self._data[key] = (value, weight)
            self.weight += weight
            journal = self.journal
            if journal is not None:
                journal.add(key)
            while self.weight > self.capacity:
                _, (_, dropped) = self._data.popitem(last=False)
                self.weight -= dropped

    def pop(self, key: K) -> None:
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self.weight -= old[1]

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.weight = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: K) -> bool:
        with self._lock:
            return key in self._data


def _zdict(hint: bytes) -> bytes:
    # zlib only looks back 32 KiB; keep the hint (most specific) at the end.
    return (PRESET_V1 + hint)[-32768:]


def _compress(payload: bytes, hint: bytes) -> bytes:
    packer = zlib.compressobj(6, zdict=_zdict(hint))
    return packer.compress(payload) + packer.flush()


def encode_value(serde: SerializerProtocol, value: Any, hint: bytes = b"") -> tuple[bytes, bytes]:
    """Serialize ``value`` to its stored form: a flag byte, the type name, the payload.

    Returns ``(stored, raw_payload)``. ``hint`` is extra dictionary material that the
    reader must supply again (the blob's ``deps``).
    """
    type_name, payload = serde.dumps_typed(value)
    return pack(type_name, payload, hint), payload


def pack(type_name: str, payload: bytes, hint: bytes = b"") -> bytes:
    """The stored form of an already serialized payload (see :func:`encode_value`)."""
    flag, stored = _PLAIN, payload
    if len(payload) >= _COMPRESS_MIN_BYTES:
        if hint or not _ZSTD_MIN_BYTES < len(payload) <= _ZSTD_MAX_BYTES:
            packed, packed_flag = _compress(payload, hint), _ZLIB
        else:
            packed, packed_flag = _zstd()[0].compress(payload), _ZSTD
        if len(packed) < len(payload):
            flag, stored = packed_flag, packed
    return flag + type_name.encode() + b"\x00" + stored


def raw_payload(data: bytes, hint: bytes = b"") -> tuple[str, bytes]:
    """The type name and uncompressed payload of a stored VALUE."""
    flag, rest = data[:1], data[1:]
    type_name, _, payload = rest.partition(b"\x00")
    if flag not in _FLAGS:
        raise CorruptDataError(f"a stored value has an unknown compression flag {flag!r}")
    try:
        if flag == _ZSTD:
            payload = _unzstd(payload)
        elif flag == _ZLIB:
            unpacker = zlib.decompressobj(zdict=_zdict(hint))
            payload = unpacker.decompress(payload) + unpacker.flush()
            if not unpacker.eof or unpacker.unused_data:
                # A stream cut short (or run on) inflates without an error, to less text.
                raise zlib.error("the stream is cut short or followed by other bytes")
    except (zlib.error, zstandard.ZstdError) as exc:
        raise CorruptDataError(f"a stored value cannot be decompressed ({exc})") from exc
    return type_name.decode(), payload


def decode_value(serde: SerializerProtocol, data: bytes, hint: bytes = b"") -> Any:
    """Inverse of :func:`encode_value`."""
    return serde.loads_typed(raw_payload(data, hint))


def array_header(count: int) -> bytes:
    """The msgpack header of an array of ``count`` items, in its shortest form (as
    msgpack writers emit it)."""
    if count < 16:
        return bytes((0x90 | count,))
    if count < 1 << 16:
        return b"\xdc" + count.to_bytes(2, "big")
    return b"\xdd" + count.to_bytes(4, "big")


def array_items(payload: bytes) -> tuple[int, int] | None:
    """``(item count, header length)`` of a msgpack array payload whose header is in its
    shortest form; None for anything else."""
    if not payload:
        return None
    first = payload[0]
    if 0x90 <= first <= 0x9F:
        count, size = first & 0x0F, 1
    elif first == 0xDC and len(payload) >= 3:
        count, size = int.from_bytes(payload[1:3], "big"), 3
    elif first == 0xDD and len(payload) >= 5:
        count, size = int.from_bytes(payload[1:5], "big"), 5
    else:
        return None
    return (count, size) if array_header(count) == payload[:size] else None


def packed_bounds(blob_id: int, data: bytes) -> tuple[int, int, int, int]:
    """A PACKED row's ``(first item, end item, first byte, end byte)`` in its pack (end
    exclusive; bytes of the pack's serialized payload)."""
    try:
        bounds = ormsgpack.unpackb(data)
    except Exception as exc:
        raise CorruptDataError("a packed value's bounds cannot be read", blob_id=blob_id) from exc
    if (
        not isinstance(bounds, list)
        or len(bounds) != 4
        or not all(type(b) is int for b in bounds)
        or not 0 <= bounds[0] <= bounds[1]
        or not 0 <= bounds[2] <= bounds[3]
    ):
        raise CorruptDataError("a packed value's bounds cannot be read", blob_id=blob_id)
    return bounds[0], bounds[1], bounds[2], bounds[3]


def packed_payload(blob_id: int, bounds: tuple[int, int, int, int], pack_payload: bytes) -> bytes:
    """The exact serialized payload of a PACKED value, cut from its pack's."""
    start, stop, first, end = bounds
    if end > len(pack_payload):
        raise CorruptDataError("a packed value lies past the end of its pack", blob_id=blob_id)
    return array_header(stop - start) + pack_payload[first:end]


def _digest(kind: int, deps: str | None, data: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    h.update(bytes([kind]))
    h.update((deps or "").encode())
    h.update(data)
    return h.digest()


class _Decoded:
    """A decoded VALUE blob and the fingerprint of what it held when it was decoded.

    Decoded values are shared between every checkpoint (and every call) that references
    them, which is what makes long histories cheap to read. A node may still edit a shared
    object in place, at any depth; the fingerprint (a copy of its containers, see
    :func:`fingerprint`) tells, when the next checkpoint is stored, that the object no
    longer holds what the database does, so the edit is stored and the stale object is
    dropped from the cache; a read finding one edited (a caller changed a snapshot's
    message) decodes the stored original again.
    """

    __slots__ = ("fingerprints", "is_pack", "size", "value")

    def __init__(self, value: Any, size: int) -> None:
        self.value = value
        # Decoded from a PACK row: what a PACKED row may name (ids are never reused).
        self.is_pack = False
        # Bytes of the serialized value: what the cache counts it as.
        self.size = size
        # A list's: one per item (list segments are compared item by item); another
        # value's: its own.
        self.fingerprints: Any = (
            fingerprints(value) if isinstance(value, list) else fingerprint(value)
        )

    @classmethod
    def part(cls, whole: _Decoded, start: int, stop: int, size: int) -> _Decoded:
        """Items ``start:stop`` of a decoded list (a packed tail of its pack): the same
        objects and their fingerprints, so a history read builds each message once."""
        decoded = cls.__new__(cls)
        decoded.is_pack = False
        decoded.value = whole.value[start:stop]
        decoded.fingerprints = whole.fingerprints[start:stop]
        decoded.size = size
        return decoded

    def holds(self) -> bool:
        """Whether the object still holds what it held when it was decoded (a caller may
        have edited a value a read handed out, such as a message of a snapshot)."""
        if isinstance(self.value, list):
            return all_unchanged(self.value, self.fingerprints)
        return unchanged(self.value, self.fingerprints)


class _Items:
    """A resolved list blob: its items (shared objects) and their fingerprints."""

    __slots__ = ("fingerprints", "items", "segments", "size")

    def __init__(
        self,
        items: tuple[Any, ...],
        fingerprints: tuple[Any, ...],
        segments: frozenset[int],
        size: int,
    ) -> None:
        self.items = items
        self.fingerprints = fingerprints
        self.segments = segments
        self.size = size


def _slices_weight(entry: tuple[tuple[Slice, ...], int]) -> int:
    return 64 + 32 * len(entry[0])


class BlobStore:
    """Writes and reads blobs on a connection, with the caches of one saver.

    ``cache_size`` bounds the caches in bytes of serialized values (decoded objects take
    a few times that in memory): decoded values get ``cache_size``, resolved lists a
    quarter of it, raw payloads kept as compression hints an eighth, list layouts a
    sixteenth. 0 turns every cache off, so that each read builds its own objects.
    """

    def __init__(
        self,
        serde: SerializerProtocol,
        *,
        sql: ModuleType,
        cache_size: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        self.serde = serde
        #: The backend's SQL module (``backends/<engine>/sql.py``).
        self.sql = sql
        # Decoded VALUE blobs, shared by every checkpoint that references them.
        self._values: LRU[int, _Decoded] = LRU(cache_size)
        # Resolved list blobs: the slices that make them up and their delta depth.
        self._slices: LRU[int, tuple[tuple[Slice, ...], int]] = LRU(cache_size // 16)
        # Resolved list blobs' items, so reading the head of a long list is one copy.
        self._items: LRU[int, _Items] = LRU(cache_size // 4)
        # Raw payloads of recent values and their hint level, used as compression hints.
        # Blob id -> (uncompressed payload, hint level, type name) of VALUE blobs.
        self._raw: LRU[int, tuple[bytes, int, str]] = LRU(cache_size // 8)
        # Ids known to be PACK rows: a PACKED row's bytes are cut from its pack's raw
        # payload, and a (damaged) one naming another value must not be cut from that.
        self._packs: LRU[int, bool] = LRU(65536)
        self._caches: tuple[LRU[int, Any], ...] = (
            self._values,
            self._slices,
            self._items,
            self._raw,
            self._packs,
        )

    def add_cache(self, cache: LRU[Any, Any]) -> None:
        """Have :meth:`transaction` drop what ``cache`` took in during a write that fails,
        as it does for the blob caches."""
        self._caches = (*self._caches, cache)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Wrap one write transaction (its COMMIT included): if it fails, whatever the
        caches took in during it is dropped. The ids of blobs it inserted are then given
        out again by the database, for other content."""
        for cache in self._caches:
            cache.journal = set()
        try:
            yield
        except BaseException:
            for cache in self._caches:
                for key in cache.journal or ():
                    cache.pop(key)
            raise
        finally:
            for cache in self._caches:
                cache.journal = None

    def decode(self, blob_id: int, data: bytes, hint: bytes = b"") -> _Decoded:
        try:
            type_name, payload = raw_payload(data, hint)
            return _Decoded(self.serde.loads_typed((type_name, payload)), len(payload))
        except CorruptDataError as exc:
            raise exc.located(blob_id=blob_id) from exc
        except AgentGitError:
            raise
        except Exception as exc:
            raise CorruptDataError(
                f"stored value cannot be decoded ({type(exc).__name__}: {exc})", blob_id=blob_id
            ) from exc

    def _forget(self, segments: Iterable[int]) -> None:
        """Drop cached objects a caller has edited in place; the next read decodes them
        afresh from the database."""
        for segment in segments:
            self._values.pop(segment)
        self._items.clear()

    # --- writing -------------------------------------------------------------------------

    def put_value(
        self,
        conn: Connection,
        value: Any,
        hint_ids: Sequence[int] = (),
        owner: int | None = None,
    ) -> int:
        """Store one value, returning the id of the (possibly pre-existing) blob.

        ``hint_ids`` name VALUE blobs likely to contain the same content (the writes that
        produced a channel value); the value is compressed against them when that is
        smaller, and then depends on them. ``owner``: the pk of the thread storing it,
        whose family alone may refer to it and to its hints (``None``: any thread may,
        and only a whole garbage collection frees it).
        """
        return self._put_value(conn, value, hint_ids, owner)[0]

    def _put_value(
        self, conn: Connection, value: Any, hint_ids: Sequence[int] = (), owner: int | None = None
    ) -> tuple[int, int]:
        """:meth:`put_value`, also returning the size of the serialized value."""
        # Serialized once: LangGraph may edit the value from another thread meanwhile (it
        # gives messages their ids in place), and the hint must be the bytes stored.
        type_name, payload = self.serde.dumps_typed(value)
        return self.put_serialized(conn, type_name, payload, hint_ids, owner), len(payload)

    def put_serialized(
        self,
        conn: Connection,
        type_name: str,
        payload: bytes,
        hint_ids: Sequence[int] = (),
        owner: int | None = None,
    ) -> int:
        """:meth:`put_value` for a value already serialized (``serde.dumps_typed``'s type
        name and bytes), stored as given: an import keeps the exact bytes it read."""
        raws = self._raw_payloads(conn, hint_ids) if hint_ids else {}
        for hint_id in hint_ids:
            # The value is exactly one of its hints (a message list's new tail is the
            # write that carried it; the first version of a channel is its first
            # write): that blob already holds it, and a second one would cost a row and,
            # on every read, one more decompression.
            found = raws.get(hint_id)
            if found is not None and found[0] == payload and found[2] == type_name:
                return hint_id
        data = pack(type_name, payload)
        deps: str | None = None
        level = 0
        hint, used, hint_level = self._hint(raws, hint_ids) if hint_ids else (b"", [], 0)
        if hint:
            hinted = pack(type_name, payload, hint)
            if len(hinted) < len(data):
                data, deps, level = hinted, json.dumps(used), hint_level + 1
        blob_id = self._upsert(conn, VALUE, deps, data, owner)
        self._raw.put(blob_id, (payload, level, type_name), len(payload))
        return blob_id

    def _hint(
        self, raws: Mapping[int, tuple[bytes, int, str]], ids: Sequence[int]
    ) -> tuple[bytes, list[int], int]:
        """Dictionary material from the given blobs: their raw payloads concatenated, the
        ids actually used, and the highest hint level among them.

        A value compressed against hints is one level above them. Only blobs of level 0
        or 1 serve as hints, so reading any value needs at most two more blobs' bytes.
        """
        used = [i for i in ids if i in raws and raws[i][1] < MAX_HINT_LEVEL]
        return (
            b"".join(raws[i][0] for i in used)[-32768:],
            used,
            max((raws[i][1] for i in used), default=0),
        )

    def _raw_payloads(
        self,
        conn: Connection,
        ids: Iterable[int],
        fetch: Callable[[Sequence[int]], list[tuple[Any, ...]]] | None = None,
        depth: int = 0,
        packs_only: bool = False,
    ) -> dict[int, tuple[bytes, int, str]]:
        """Uncompressed payloads (with hint levels and type names) of value blobs; others
        are left out. One query per hint level, however many blobs. ``packs_only``: a
        PACKED row is left out too (a pack is never itself packed)."""
        ids = list(ids)
        if depth > MAX_HINT_LEVEL:
            # Hints are never more than MAX_HINT_LEVEL deep: deeper is a (corrupt) loop.
            raise CorruptDataError(
                "stored values are compressed against each other in a loop", blob_id=min(ids)
            )
        out: dict[int, tuple[bytes, int, str]] = {}
        missing = []
        for blob_id in ids:
            cached = self._raw.get(blob_id)
            if cached is not None and (not packs_only or blob_id in self._packs):
                out[blob_id] = cached
            elif not self._list_record(blob_id):
                missing.append(blob_id)
        if missing:
            found = fetch(missing) if fetch else self._fetch(conn, missing)
            kinds = (PACK,) if packs_only else (VALUE, PACK)
            rows = [row for row in found if row[1] in kinds]
            for row in rows:
                if row[1] == PACK:
                    self._packs.put(row[0], True)
            packed = [row for row in found if row[1] == PACKED]
            if packed and not packs_only:
                out.update(self._packed_raws(conn, packed, fetch, depth))
            deps_of = {row[0]: _deps(row[0], row[2]) for row in rows}
            wanted = sorted({d for deps in deps_of.values() for d in deps})
            dep_raws = self._raw_payloads(conn, wanted, fetch, depth + 1) if wanted else {}
            for blob_id, _kind, _deps_text, data in rows:
                dep_ids = deps_of[blob_id]
                _require(dep_raws, dep_ids, blob_id)
                hint = b"".join(dep_raws[d][0] for d in dep_ids)[-32768:]
                level = 1 + max(dep_raws[d][1] for d in dep_ids) if dep_ids else 0
                try:
                    type_name, payload = raw_payload(data, hint)
                except Exception as exc:
                    raise CorruptDataError(
                        f"stored value cannot be decompressed ({exc})", blob_id=blob_id
                    ) from exc
                # Returned from here, not read back from the cache, which may be smaller
                # than one batch.
                out[blob_id] = (payload, level, type_name)
                self._raw.put(blob_id, out[blob_id], len(payload))
        return out

    def _packed_raws(
        self,
        conn: Connection,
        rows: Sequence[tuple[Any, ...]],
        fetch: Callable[[Sequence[int]], list[tuple[Any, ...]]] | None,
        depth: int,
    ) -> dict[int, tuple[bytes, int, str]]:
        """Raw payloads of PACKED rows, cut from their packs' (fetched and inflated once
        each). A packed value is at its pack's hint level: a pack has no hints, so this
        adds one lookup, never a level."""
        layout = {row[0]: (_pack_of(row[0], row[2]), packed_bounds(row[0], row[3])) for row in rows}
        packs = self._raw_payloads(
            conn, sorted({p for p, _ in layout.values()}), fetch, depth, packs_only=True
        )
        out: dict[int, tuple[bytes, int, str]] = {}
        for blob_id, (pack_id, bounds) in layout.items():
            if pack_id not in packs:
                raise CorruptDataError("a packed value names no pack", blob_id=blob_id)
            payload, level, type_name = packs[pack_id]
            found = array_items(payload)
            if found is None or bounds[1] > found[0]:
                # Cut anyway, it would be a wrong hint: the values compressed against it
                # would fail instead, each naming itself, in whatever order they are read.
                raise CorruptDataError("a packed value lies outside its pack", blob_id=blob_id)
            out[blob_id] = (packed_payload(blob_id, bounds, payload), level, type_name)
            self._raw.put(blob_id, out[blob_id], len(out[blob_id][0]))
        return out

    def _list_record(self, blob_id: int) -> bool:
        """Whether the caches know ``blob_id`` as a list delta or index, which is never
        a hint: a task's writes are compressed against its checkpoint's channel values,
        the message list among them, and fetching that row again for each write found
        nothing to use (two queries a turn)."""
        entry = self._slices.get(blob_id)
        if entry is None:
            return False
        slices = entry[0]
        # A list stored whole is one slice of itself; a delta or an index names others.
        return not (len(slices) == 1 and slices[0][0] == blob_id)

    def put_channel_value(
        self,
        conn: Connection,
        value: Any,
        previous: int | None,
        hint_ids: Sequence[int] = (),
        tails: list[tuple[int, int, int, Sequence[Any]]] | None = None,
        owner: int | None = None,
    ) -> int:
        """Store a channel's new value, as a delta against ``previous`` when it is a list
        sharing a prefix with the previous version of the same channel.

        ``tails``, when given, receives the list items this version stores that the
        previous one did not hold: ``(VALUE blob id holding them, 0 (their position in
        it), their position in the list, the items)`` (the message index)."""
        base = self._stored_list(conn, previous) if previous and isinstance(value, list) else None
        keep = self._common_prefix(base[0], value) if base else 0
        if base is None or keep == 0:
            blob_id = self.put_value(conn, value, hint_ids, owner)
            if isinstance(value, list):
                entry: tuple[tuple[Slice, ...], int] = (((blob_id, 0, len(value)),), 0)
                self._slices.put(blob_id, entry, _slices_weight(entry))
                if tails is not None:
                    tails.append((blob_id, 0, 0, value))
            return blob_id
        assert previous is not None
        base_items, base_slices, base_depth = base
        if keep == len(value) == len(base_items.items):
            return previous
        # The objects about to be serialized are what the tail blob holds: they are cached
        # as its decoded value, fingerprinted once.
        tail = _Decoded(value[keep:], 0)
        tail_slices: tuple[Slice, ...] = ()
        tail_id = 0
        if tail.value:
            tail_id, tail.size = self._put_value(conn, tail.value, hint_ids, owner)
            tail_slices = ((tail_id, 0, len(tail.value)),)
            self._values.put(tail_id, tail, tail.size)
            if tails is not None:
                tails.append((tail_id, 0, keep, tail.value))
        appended = keep == len(base_items.items)
        slices = (base_slices if appended else _truncate(base_slices, keep)) + tail_slices
        depth = base_depth + 1
        segments = base_items.segments | {tail_id} if appended else None
        if depth > index_depth(len(value)):
            # The new tail stays a slice of its own: no delta names it, so packed it would
            # be a row nothing reaches (garbage, and its message index rows with it). The
            # next index packs it, when the delta after this index names it.
            older = slices[: len(slices) - len(tail_slices)]
            packed = self._pack(conn, older, owner) if owner is not None else older
            if packed is not older:
                # The items are the same objects; what an edit found in them drops from
                # the cache are the packs as well as the tails.
                segments = frozenset(s[0] for s in slices + packed)
                slices = packed + tail_slices
            blob_id = self._put_index(conn, slices, owner)
            depth = 0
        else:
            deps = json.dumps([previous, tail_id] if tail_id else [previous])
            blob_id = self._upsert(conn, LIST_DELTA, deps, ormsgpack.packb([keep, depth]), owner)
        self._slices.put(blob_id, (slices, depth), _slices_weight((slices, depth)))
        items = _Items(
            base_items.items[:keep] + tuple(tail.value),
            base_items.fingerprints[:keep] + tail.fingerprints,
            segments if segments is not None else frozenset(s[0] for s in slices),
            base_items.size + tail.size,
        )
        self._items.put(blob_id, items, items.size)
        return blob_id

    def _pack(self, conn: Connection, slices: tuple[Slice, ...], owner: int) -> tuple[Slice, ...]:
        """Pack the tails among an index's slices (see the module's docstring): each run
        of slices that are whole lists stored as msgpack by this thread (``owner``) is
        stored as one PACK blob, its tails' rows become PACKED references into it, and
        the index names the pack instead. Returns the slices to index (``slices`` itself
        when nothing was packed).

        A tail found shared meanwhile, or packed by another writer, keeps its row: the
        pack holds a copy of its items then, which costs bytes, never a value."""
        ids = sorted({seg for seg, _, _ in slices})
        rows = conn.execute(self.sql.SELECT_BLOB_OWNERS, (json.dumps(ids),)).fetchall()
        mine = [row[0] for row in rows if row[1] == VALUE and row[2] == owner]
        raws = self._raw_payloads(conn, mine) if mine else {}
        # Per slice that is a whole tail which can be packed: its items' bytes.
        parts: list[bytes | None] = []
        for seg, start, stop in slices:
            raw = raws.get(seg)
            found = array_items(raw[0]) if raw is not None and raw[2] == _MSGPACK else None
            whole = raw is not None and found is not None and start == 0 and found[0] == stop
            parts.append(raw[0][found[1] :] if whole and raw is not None and found else None)
        out: list[Slice] = []
        run: list[int] = []
        for k in range(len(slices) + 1):
            if k < len(slices) and parts[k] is not None:
                run.append(k)
                continue
            if sum(slices[i][2] for i in run) >= MIN_PACK_ITEMS:
                members = [(slices[i][0], slices[i][2], parts[i] or b"") for i in run]
                out.append(self._put_pack(conn, members, owner))
            else:
                out.extend(slices[i] for i in run)
            run = []
            if k < len(slices):
                out.append(slices[k])
        return slices if len(out) == len(slices) else tuple(out)

    def _put_pack(
        self, conn: Connection, members: list[tuple[int, int, bytes]], owner: int
    ) -> Slice:
        """Store one pack of the given tails (blob id, item count, the items' bytes) and
        turn their rows into references to it; the slice of the pack that replaces them."""
        chunks: list[bytes] = []
        bounds: dict[int, list[int]] = {}
        items = 0
        offset = 0
        for seg, count, body in members:
            # Offsets are past the pack's own header, added below once its size is known.
            bounds.setdefault(seg, [items, items + count, offset, offset + len(body)])
            chunks.append(body)
            items += count
            offset += len(body)
        head = array_header(items)
        payload = head + b"".join(chunks)
        pack_id = self._upsert(conn, PACK, None, pack(_MSGPACK, payload), owner)
        self._raw.put(pack_id, (payload, 0, _MSGPACK), len(payload))
        self._packs.put(pack_id, True)
        deps = json.dumps([pack_id])
        # In id order: two writers packing the same tails lock their rows in one order.
        tails = []
        for seg in sorted(bounds):
            first, stop, start_byte, end_byte = bounds[seg]
            data = ormsgpack.packb([first, stop, start_byte + len(head), end_byte + len(head)])
            tails.append({"id": seg, "owner": owner, "deps": deps, "data": data})
        # The backend's statements, each with the names of its parameters.
        for statement, names in self.sql.PACK_TAILS:
            conn.executemany(statement, [[tail[n] for n in names.split()] for tail in tails])
        return (pack_id, 0, items)

    def _common_prefix(self, stored: _Items, new: Sequence[Any]) -> int:
        """How many leading items of ``new`` are the stored items, unedited.

        The same object counts when what it holds is still what it held when it was
        stored (see :func:`fingerprint`); another object counts when it is equal and of
        the same types. An object edited in place ends the prefix, and the cache forgets
        it so that reads decode the stored original again.
        """
        items = stored.items
        n = min(len(items), len(new))
        # Identity and fingerprints are compared in C over the whole run: this is the
        # step of a put whose cost grows with the length of the list (and with what its
        # items hold).
        identical = list(map(operator.is_, items[:n], new[:n]))
        run = identical.index(False) if False in identical else n
        if not all_unchanged(items[:run], stored.fingerprints[:run]):
            edited = next(i for i in range(run) if not unchanged(items[i], stored.fingerprints[i]))
            self._forget(stored.segments)
            return edited
        while run < n and same(items[run], new[run]):
            run += 1
        return run

    def put_list_delta(self, conn: Connection, base: int, keep: int, tail: int, depth: int) -> int:
        """A list blob: the first ``keep`` items of the list blob ``base``, then the items
        of the VALUE blob ``tail`` (a list); ``depth`` is ``base``'s depth plus one and
        must not exceed :data:`MAX_DELTA_DEPTH` (write an index instead). Without an
        owner (an import's: shared)."""
        return self._upsert(
            conn, LIST_DELTA, json.dumps([base, tail]), ormsgpack.packb([keep, depth]), None
        )

    def put_index(self, conn: Connection, slices: Sequence[Slice]) -> int:
        """A list blob made of slices ``(value blob id, start, stop)`` of list VALUE blobs."""
        return self._put_index(conn, slices)

    def _put_index(
        self, conn: Connection, slices: Sequence[Slice], owner: int | None = None
    ) -> int:
        deps = json.dumps([s[0] for s in slices])
        data = zlib.compress(ormsgpack.packb([[s[1], s[2]] for s in slices]))
        return self._upsert(conn, LIST_INDEX, deps, data, owner)

    def _upsert(
        self, conn: Connection, kind: int, deps: str | None, data: bytes, owner: int | None
    ) -> int:
        # Deltas and values compressed against hints are small and specific to one step;
        # indexing their digest costs more than the rare duplicate it would catch.
        indexed = kind != LIST_DELTA and not (kind == VALUE and deps)
        digest = _digest(kind, deps, data) if indexed else None
        row = conn.execute(self.sql.UPSERT_BLOB, (digest, kind, deps, data, owner)).fetchone()
        if digest is not None and row[1] is None and row[2] is not None:
            # Found stored (only a digest can be), and shared now or already: what it is
            # built from may be reached from another family too, so no family's sweep
            # may take it. A new blob is built from its own family's or shared blobs.
            conn.execute(self.sql.SHARE_BLOB_CLOSURE, (row[2],))
        return int(row[0])

    def _stored_list(
        self, conn: Connection, blob_id: int
    ) -> tuple[_Items, tuple[Slice, ...], int] | None:
        """The items of a list blob as the cache holds them, with their slices and depth."""
        read = _Read(self, conn)
        resolved = read.resolve([blob_id]).get(blob_id)
        if resolved is None:
            return None
        # Unverified: _common_prefix compares what the objects hold with the stored
        # fingerprints itself, and forgets what was edited.
        return read.items(blob_id, resolved[0], verify=False), resolved[0], resolved[1]

    # --- reading -------------------------------------------------------------------------

    def load(self, conn: Connection, ids: Iterable[int]) -> dict[int, Any]:
        """Decode the given blobs. List blobs come back as new list objects whose items
        are shared with every other list holding the same stored items.

        Raises :class:`CorruptDataError` naming the blob when one is missing or cannot be
        decoded (never returns fewer values than asked for).
        """
        return _Read(self, conn).load({i for i in ids if i})

    def _fetch(self, conn: Connection, ids: Sequence[int]) -> list[tuple[Any, ...]]:
        """The rows of the given blobs; a missing one is damage."""
        rows = conn.execute(self.sql.SELECT_BLOBS, (json.dumps(list(ids)),)).fetchall()
        if len(rows) < len(set(ids)):
            found = {row[0] for row in rows}
            gone = min(i for i in ids if i not in found)
            raise CorruptDataError("a stored value is missing", blob_id=gone)
        return rows


class _Read:
    """One read; values decoded here are shared within it even when caching is off."""

    def __init__(self, store: BlobStore, conn: Connection) -> None:
        self.store = store
        self.conn = conn
        self.values: dict[int, _Decoded] = {}
        # Rows fetched with everything they are built from (see fetch).
        self.rows: dict[int, tuple[Any, ...]] = {}
        # Cached values found unedited during this read.
        self.verified: set[int] = set()

    def fetch(self, ids: Sequence[int]) -> list[tuple[Any, ...]]:
        """The rows of the given blobs. What those rows are built from (delta bases and
        tails, index segments, compression hints) and the caches do not hold yet is
        fetched at once, transitively, in one more query: a cold read of a long list is
        two round trips instead of one per delta, and a warm one does not fetch what it
        already has."""
        missing = [i for i in ids if i not in self.rows]
        if missing:
            found = self.store._fetch(self.conn, missing)
            self.rows.update((row[0], row) for row in found)
            store = self.store
            wanted = {
                d
                for row in found
                for d in _deps(row[0], row[2])
                if d not in self.rows
                and d not in store._slices
                and d not in store._values
                and d not in store._raw
            }
            if wanted:
                closure = self.conn.execute(
                    self.store.sql.SELECT_BLOB_CLOSURE, (json.dumps(sorted(wanted)),)
                )
                self.rows.update((row[0], row) for row in closure)
        return [self.rows[i] for i in ids]

    def value(self, blob_id: int) -> Any:
        if blob_id not in self.values:
            self.ensure_values({blob_id})
        return self.values[blob_id].value

    def ensure_values(self, ids: Iterable[int]) -> None:
        missing = self._uncached(ids)
        if missing:
            self._accept(self.fetch(missing))

    def _uncached(self, ids: Iterable[int]) -> list[int]:
        """Take the given values from the cache into this read; the ids it lacks."""
        missing = []
        for blob_id in ids:
            if blob_id in self.values:
                continue
            cached = self.cached(blob_id)
            if cached is not None:
                self.values[blob_id] = cached
            else:
                missing.append(blob_id)
        return missing

    def cached(self, blob_id: int) -> _Decoded | None:
        """The cached decoded value, if it still holds what the database does. Objects a
        read handed out are shared with later reads; one that was edited in place since
        (a node, or a caller editing a snapshot) is dropped and decoded afresh, so an
        edit never reaches a later read or the next checkpoint's stored value."""
        decoded = self.store._values.get(blob_id)
        if decoded is None or blob_id in self.verified:
            return decoded
        if not decoded.holds():
            self.store._forget([blob_id])
            return None
        self.verified.add(blob_id)
        return decoded

    def _accept(self, rows: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Decode value rows (VALUE, PACK, PACKED); return the list-record rows."""
        rows = list(rows)
        deps_of = {
            row[0]: _deps(row[0], row[2]) for row in rows if row[1] in (VALUE, PACK) and row[2]
        }
        wanted = {d for deps in deps_of.values() for d in deps}
        raws = self.store._raw_payloads(self.conn, wanted, self.fetch) if wanted else {}
        records = []
        packed = []
        for blob_id, kind, deps, data in rows:
            if kind not in KINDS:
                raise CorruptDataError(f"stored value has unknown kind {kind!r}", blob_id=blob_id)
            if kind == PACKED:
                packed.append((blob_id, deps, data))
                continue
            if kind not in VALUE_KINDS:
                records.append((blob_id, kind, deps, data))
                continue
            dep_ids = deps_of.get(blob_id, ())
            _require(raws, dep_ids, blob_id)
            hint = b"".join(raws[d][0] for d in dep_ids)[-32768:]
            decoded = self.store.decode(blob_id, data, hint)
            decoded.is_pack = kind == PACK
            if decoded.is_pack:
                self.store._packs.put(blob_id, True)
            self.values[blob_id] = decoded
            self.store._values.put(blob_id, decoded, decoded.size)
        if packed:
            self._accept_packed(packed)
        return records

    def _accept_packed(self, rows: list[tuple[int, str | None, bytes]]) -> None:
        """Decode PACKED rows as parts of their packs' decoded lists (each pack decoded
        once, its messages shared by every tail packed in it)."""
        layout = {
            blob_id: (_pack_of(blob_id, deps), packed_bounds(blob_id, data))
            for blob_id, deps, data in rows
        }
        missing = self._uncached(sorted({pack_id for pack_id, _ in layout.values()}))
        if missing:
            # Fetched first: a row that is not a pack is damage, and decoding it with
            # the rest could recurse into another packed row.
            found = self.fetch(missing)
            for row in found:
                if row[1] != PACK:
                    owner = next(b for b, (p, _) in layout.items() if p == row[0])
                    raise CorruptDataError("a packed value names no pack", blob_id=owner)
            self._accept(found)
        for blob_id, (pack_id, (start, stop, first, end)) in layout.items():
            whole = self.values[pack_id]
            if not whole.is_pack:
                # Decoded earlier in this read (or cached) as another kind of value.
                raise CorruptDataError("a packed value names no pack", blob_id=blob_id)
            if not isinstance(whole.value, list) or stop > len(whole.value):
                raise CorruptDataError("a packed value lies outside its pack", blob_id=blob_id)
            decoded = _Decoded.part(whole, start, stop, end - first)
            self.values[blob_id] = decoded
            self.store._values.put(blob_id, decoded, decoded.size)

    def items(self, blob_id: int, slices: tuple[Slice, ...], *, verify: bool = True) -> _Items:
        """The items of a resolved list blob (cached: one copy per read of a long list)."""
        cached = self.store._items.get(blob_id)
        if cached is not None:
            # One pass in C over the items: a caller may have edited one in place since
            # a read handed it out (see cached()). A put compares them itself.
            if not verify or cached.segments <= self.verified:
                return cached
            if all_unchanged(cached.items, cached.fingerprints):
                # Older versions of the list (a history read) reuse these segments.
                self.verified |= cached.segments
                return cached
            self.store._forget(cached.segments)
        self.ensure_values({seg for seg, _, _ in slices})
        decoded = [(self.values[seg], start, stop) for seg, start, stop in slices]
        if any(not isinstance(d.value, list) for d, _, _ in decoded):
            raise CorruptDataError(
                "a list is built from a value that is not a list", blob_id=blob_id
            )
        built = _Items(
            tuple(item for d, start, stop in decoded for item in d.value[start:stop]),
            tuple(fp for d, start, stop in decoded for fp in d.fingerprints[start:stop]),
            frozenset(seg for seg, _, _ in slices),
            sum(d.size for d, _, _ in decoded),
        )
        self.store._items.put(blob_id, built, built.size)
        return built

    def load(self, wanted: set[int]) -> dict[int, Any]:
        resolved = self.resolve(list(wanted))
        # Every value this read needs is decoded in one batch: the values asked for and
        # the segments of each list whose items the cache does not hold (a cold read of
        # a long list), so that their compression hints are fetched and inflated once.
        needed = {i for i in wanted if i not in resolved}
        for blob_id, (slices, _depth) in resolved.items():
            if blob_id not in self.store._items:
                needed.update(seg for seg, _, _ in slices)
        self.ensure_values(needed)
        out: dict[int, Any] = {}
        for blob_id in wanted:
            if blob_id in resolved:
                out[blob_id] = list(self.items(blob_id, resolved[blob_id][0]).items)
            elif blob_id in self.values:
                out[blob_id] = private(self.values[blob_id].value)
        return out

    def resolve(self, ids: list[int]) -> dict[int, tuple[tuple[Slice, ...], int]]:
        """Slices of each list blob in ``ids``; blobs that are not lists are left out
        (but decoded on the way, since telling them apart needs their row)."""
        store = self.store
        out: dict[int, tuple[tuple[Slice, ...], int]] = {}
        records: dict[int, tuple[int, tuple[int, ...], bytes]] = {}
        # VALUE blobs met on the way (lists stored whole, or not lists at all): decoded
        # together with the deltas' tails once the chains are walked.
        values: set[int] = set()
        pending = ids
        while pending:
            fetch = []
            for blob_id in pending:
                cached = store._slices.get(blob_id)
                if cached is not None:
                    out[blob_id] = cached
                    continue
                if blob_id not in self.values:
                    decoded = self.cached(blob_id)
                    if decoded is not None:
                        self.values[blob_id] = decoded
                if blob_id in self.values:
                    self._value_as_list(blob_id, out)
                elif blob_id not in records and blob_id not in values:
                    fetch.append(blob_id)
            pending = []
            if not fetch:
                break
            for blob_id, kind, deps, data in self.fetch(fetch):
                if kind in VALUE_KINDS:
                    values.add(blob_id)
                    continue
                if kind not in (LIST_DELTA, LIST_INDEX):
                    raise CorruptDataError(
                        f"stored value has unknown kind {kind!r}", blob_id=blob_id
                    )
                dep_ids = _deps(blob_id, deps)
                if not dep_ids:
                    raise CorruptDataError("a stored list names no parts", blob_id=blob_id)
                records[blob_id] = (kind, dep_ids, data)
                if kind == LIST_DELTA and dep_ids[0] not in out:
                    pending.append(dep_ids[0])
        tails = {
            dep_ids[1]
            for kind, dep_ids, _data in records.values()
            if kind == LIST_DELTA and len(dep_ids) > 1
        }
        self.ensure_values(values | tails)
        for blob_id in values:
            self._value_as_list(blob_id, out)
        # A delta needs its base first. Bases were met after the deltas built on them, so
        # walking the records backwards places a chain in one pass; repeat until every
        # record is placed (or nothing moves: damage).
        lengths: dict[int, int] = {}
        unresolved = dict(reversed(records.items()))
        while unresolved:
            progressed = False
            for blob_id, (kind, dep_ids, data) in list(unresolved.items()):
                if kind == LIST_DELTA and dep_ids[0] not in out:
                    continue
                try:
                    entry = self._layout(blob_id, kind, dep_ids, data, out, lengths)
                except AgentGitError:
                    raise
                except Exception as exc:
                    raise CorruptDataError(
                        f"stored list cannot be decoded ({type(exc).__name__}: {exc})",
                        blob_id=blob_id,
                    ) from exc
                store._slices.put(blob_id, entry, _slices_weight(entry))
                out[blob_id] = entry
                del unresolved[blob_id]
                progressed = True
            if not progressed:
                # A base that is not a list, or a chain of deltas that loops.
                raise CorruptDataError(
                    "a stored list is built on a base that is not a list",
                    blob_id=min(unresolved),
                )
        return out

    def _layout(
        self,
        blob_id: int,
        kind: int,
        dep_ids: tuple[int, ...],
        data: bytes,
        out: dict[int, tuple[tuple[Slice, ...], int]],
        lengths: dict[int, int],
    ) -> tuple[tuple[Slice, ...], int]:
        """The slices and delta depth of one list record whose base is resolved.
        ``lengths`` holds the item counts of the lists resolved so far, so that a chain
        of deltas is laid out in time linear in its length."""
        if kind == LIST_INDEX:
            bounds = ormsgpack.unpackb(zlib.decompress(data))
            slices = tuple(
                (seg, int(start), int(stop))
                for seg, (start, stop) in zip(dep_ids, bounds, strict=True)
            )
            lengths[blob_id] = sum_lengths(slices)
            return slices, 0
        keep, depth = ormsgpack.unpackb(data)
        keep = int(keep)
        base = dep_ids[0]
        base_slices = out[base][0]
        base_length = lengths.get(base)
        if base_length is None:
            base_length = lengths[base] = sum_lengths(base_slices)
        tail: tuple[Slice, ...] = ()
        if len(dep_ids) > 1:
            tail = ((dep_ids[1], 0, len(self.value(dep_ids[1]))),)
        kept = base_slices if keep >= base_length else _truncate(base_slices, keep)
        lengths[blob_id] = min(keep, base_length) + sum_lengths(tail)
        return kept + tail, int(depth)

    def _value_as_list(self, blob_id: int, out: dict[int, tuple[tuple[Slice, ...], int]]) -> None:
        value = self.values[blob_id].value
        if isinstance(value, list):
            entry: tuple[tuple[Slice, ...], int] = (((blob_id, 0, len(value)),), 0)
            self.store._slices.put(blob_id, entry, _slices_weight(entry))
            out[blob_id] = entry


def _deps(blob_id: int, text: str | None) -> tuple[int, ...]:
    """The ids a blob is built from (its ``deps`` column)."""
    if not text:
        return ()
    try:
        return _parsed_deps(text)
    except (ValueError, TypeError) as exc:  # TypeError: a number or bytes in the column
        raise CorruptDataError("a stored value's parts cannot be read", blob_id=blob_id) from exc


@functools.lru_cache(maxsize=4096)
def _parsed_deps(text: str) -> tuple[int, ...]:
    # One read parses each row's deps three times (fetching what it is built from,
    # walking the chain, decoding it): a cold read of a short thread spent 5% of its
    # time in json.loads. Damage raises ValueError, which the cache does not keep.
    deps = json.loads(text)
    if not isinstance(deps, list) or not all(type(d) is int for d in deps):
        raise ValueError("not a list of ids")
    return tuple(deps)


def _pack_of(blob_id: int, text: str | None) -> int:
    """The pack a PACKED row names (its only dep)."""
    deps = _deps(blob_id, text)
    if len(deps) != 1:
        raise CorruptDataError("a packed value names no pack", blob_id=blob_id)
    return deps[0]


def _require(found: Mapping[int, Any], dep_ids: Iterable[int], blob_id: int) -> None:
    gone = [d for d in dep_ids if d not in found]
    if gone:
        raise CorruptDataError(
            f"a stored value is compressed against values {gone} that are missing",
            blob_id=blob_id,
        )


# Containers LangGraph's channels adopt from a checkpoint and then change in place (a
# waiting edge's barrier adds to its set): each read gets its own.
_ADOPTED = (set, dict, bytearray)


def private(value: Any) -> Any:
    """``value``, or a shallow copy of it when it is a container a channel may change in
    place; the cached object must keep holding what the database does."""
    return value.copy() if type(value) in _ADOPTED else value


def same(a: Any, b: Any) -> bool:
    """Equal *and* of the same types all the way down through dicts, lists and tuples:
    ``1 == 1.0 == True``, but they are stored differently and must not be swapped."""
    if a is b:
        return True
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is list or kind is tuple:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if kind is dict:
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    try:
        return bool(a == b)
    except Exception:  # an __eq__ that cannot compare means "not known to be the same"
        return False


# Immutable leaves: shared by a snapshot as they are, without a call (most of what a
# message's attributes hold; a cold read fingerprints every message it decodes).
_ATOMS = frozenset((str, int, float, bool, type(None), bytes))


def _snapshot(value: Any) -> Any:
    """``value`` with every dict, list, set and tuple in it copied, to any depth; other
    objects (strings, numbers, objects of other types) are shared. Compared with ``==``
    to the live value later, it tells whether anything inside was changed in place."""
    kind = type(value)
    if kind is dict:
        return (
            {k: v if type(v) in _ATOMS else _snapshot(v) for k, v in value.items()} if value else {}
        )
    if kind is list:
        return [v if type(v) in _ATOMS else _snapshot(v) for v in value] if value else []
    if isinstance(value, dict):
        return {key: _snapshot(item) for key, item in value.items()} if value else {}
    if isinstance(value, list):
        return [_snapshot(item) for item in value] if value else []
    if isinstance(value, tuple):
        return tuple(_snapshot(item) for item in value) if value else ()
    if isinstance(value, set):
        return set(value)
    return value


def _state(obj: Any) -> Any:
    """What an object holds: its attributes (a message's ``__dict__``), or itself (a
    dict, a list, a string...)."""
    attributes = getattr(obj, "__dict__", None)
    return obj if attributes is None else attributes


def fingerprint(obj: Any) -> Any:
    """A copy of what an object holds, taken when it is stored or decoded: its
    attributes (or, for a dict or list, itself) with every nested dict, list, set and
    tuple copied. Decoded values are shared between reads and with the graph, and a node
    or a caller may edit one in place, at any depth (``msg.content = ...``,
    ``msg.additional_kwargs["k"] = v``, ``msg.tool_calls[0]["args"]["x"] = 1``):
    :func:`unchanged` compares the object with this copy, in C, and an edited object is
    stored again and dropped from the cache. Objects of other types nested inside are
    compared with their own ``==``, so an edit inside one of them is seen only if its
    ``==`` sees it."""
    return _snapshot(_state(obj))


def _equal(now: Any, saved: Any) -> bool:
    try:
        return bool(now == saved)
    except Exception:  # an __eq__ that cannot answer (numpy): treated as changed
        return False


def unchanged(obj: Any, saved: Any) -> bool:
    """Whether ``obj`` still holds what :func:`fingerprint` copied (equal, at any depth)."""
    return _equal(_state(obj), saved)


def fingerprints(items: Sequence[Any]) -> tuple[Any, ...]:
    """:func:`fingerprint` of every item."""
    return tuple(map(fingerprint, items))


_ATTRIBUTES = operator.attrgetter("__dict__")


def all_unchanged(items: Sequence[Any], saved: Sequence[Any]) -> bool:
    """:func:`unchanged` for every item: the comparisons run in C (``dict == dict``
    skips the values shared with the copy, strings included), so checking a long
    message list costs about as much as copying its references. A put and a read each
    check the whole list: this is the part of a turn that grows with the conversation."""
    if len(items) != len(saved):
        return False
    try:
        # Messages: their attributes gathered and compared in two C passes, without a
        # Python call per item (a third faster than the loop below on 2,000 messages).
        return tuple(map(_ATTRIBUTES, items)) == tuple(saved)
    except AttributeError:
        pass  # an item without attributes (a dict, a string...): compared as itself
    except Exception:  # an __eq__ that cannot answer: item by item
        return all(map(unchanged, items, saved))
    try:
        return all(map(operator.eq, map(_state, items), saved))
    except Exception:
        return all(map(unchanged, items, saved))


def _truncate(slices: tuple[Slice, ...], keep: int) -> tuple[Slice, ...]:
    if keep >= sum_lengths(slices):
        return slices
    out: list[Slice] = []
    remaining = keep
    for seg, start, stop in slices:
        if remaining <= 0:
            break
        take = min(stop - start, remaining)
        out.append((seg, start, start + take))
        remaining -= take
    return tuple(out)


def sum_lengths(slices: Sequence[Slice]) -> int:
    """Number of items the slices cover."""
    return sum(stop - start for _, start, stop in slices)
