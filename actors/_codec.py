"""Message declaration and the msgpack codec.

A message is a frozen dataclass declared with :func:`message`. On the wire it is a
msgpack array whose first element is an ext marker carrying the type tag, followed by
the field values in declaration order::

    [Ext(1, b"sparklet.Terminated"), <actor ref>, "normal"]

Why an array headed by a marker rather than one ext blob per message: an ext payload
is itself an encoded buffer, so every nested message (and every ``bytes`` field inside
it, such as a cloudpickled function or a data batch) would be packed twice and copied
twice. With the marker, ``bytes`` fields travel as msgpack ``bin`` exactly once.

Actor references travel as ``[Ext(2, b""), address, path]`` and are resolved by the
receiving system. Arrays decode as tuples (declare sequence fields as ``tuple``); a
value the codec cannot carry (a set, an arbitrary object) fails at encode time with a
:class:`CodecError` naming the message type and the value's type, so strict mode
catches it in a single-process test before it can fail across processes.
"""

from __future__ import annotations

import dataclasses
from operator import attrgetter
from typing import Any, Callable

import msgpack

from sparklet.actors._errors import CodecError

__all__ = ["message", "MessageRegistry", "Codec", "DEFAULT_REGISTRY", "message_tag", "UnknownMessage",
           "register_message_types", "Local"]

_MSG_EXT = 1
_REF_EXT = 2
_REF_MARK = msgpack.ExtType(_REF_EXT, b"")
_LOCAL_EXT = 3


class Local:
    """A process-local value inside a message: an RDD graph, a function, a future.

    Messages between actors of one process may carry objects msgpack cannot (and should
    not) encode. Wrapping them in ``Local`` says so explicitly: strict mode round-trips
    the wrapper by identity and still checks every other field, and sending a message
    that holds one to another process fails with a :class:`CodecError` naming it.
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Local) and other.value is self.value

    def __hash__(self) -> int:
        return id(self.value)

    def __repr__(self) -> str:
        return f"Local({type(self.value).__qualname__})"


class _MessageSpec:
    """What the codec knows about one message type."""

    __slots__ = ("cls", "tag", "ext", "fields", "values", "arity")

    def __init__(self, cls: type, tag: str) -> None:
        self.cls = cls
        self.tag = tag
        self.ext = msgpack.ExtType(_MSG_EXT, tag.encode())
        self.fields = tuple(f.name for f in dataclasses.fields(cls))
        self.arity = len(self.fields)
        if self.arity == 0:
            self.values = lambda obj: ()
        elif self.arity == 1:
            getter = attrgetter(self.fields[0])
            self.values = lambda obj: (getter(obj),)
        else:
            self.values = attrgetter(*self.fields)

    def build(self, values: tuple) -> Any:
        if len(values) != self.arity:
            raise CodecError(
                f"message {self.tag!r} expects {self.arity} fields {self.fields}, got {len(values)}"
            )
        return self.cls(*values)


class UnknownMessage:
    """A message from a peer whose type tag this process does not know.

    Only :meth:`Codec.decode` with ``lenient=True`` (what the remote layer uses) makes
    these, so that one unknown type fails one delivery, with a clear error, instead of
    the whole connection.
    """

    __slots__ = ("tag", "values")

    def __init__(self, tag: str, values: tuple) -> None:
        self.tag, self.values = tag, values

    def __repr__(self) -> str:
        return f"UnknownMessage({self.tag!r}, {len(self.values)} fields)"


class _UnknownSpec:
    __slots__ = ("tag",)

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def build(self, values: tuple) -> UnknownMessage:
        return UnknownMessage(self.tag, values)


class MessageRegistry:
    """Maps message types to wire tags and back.

    Message *types* are a schema, declared at import time, so the default registry is
    module level; every piece of runtime state hangs off an :class:`ActorSystem`.
    """

    def __init__(self) -> None:
        self._by_tag: dict[str, _MessageSpec] = {}
        self._by_type: dict[type, _MessageSpec] = {}

    def register(self, cls: type, tag: str) -> None:
        existing = self._by_tag.get(tag)
        if existing is not None and existing.cls is not cls:
            # Re-importing a module (doctest, importlib reload) re-declares the same
            # qualified name: the newest declaration wins, as for any Python name.
            if (existing.cls.__module__, existing.cls.__qualname__) != (cls.__module__, cls.__qualname__):
                raise ValueError(
                    f"message tag {tag!r} is already used by {existing.cls.__module__}.{existing.cls.__qualname__}"
                )
            del self._by_type[existing.cls]
        spec = _MessageSpec(cls, tag)
        self._by_tag[tag] = spec
        self._by_type[cls] = spec

    def copy(self) -> "MessageRegistry":
        """A registry that knows what this one knows now; additions to either stay apart."""
        other = MessageRegistry()
        other._by_tag = dict(self._by_tag)
        other._by_type = dict(self._by_type)
        return other

    def spec_for_type(self, cls: type) -> _MessageSpec | None:
        return self._by_type.get(cls)

    def spec_for_tag(self, tag: str) -> _MessageSpec | None:
        return self._by_tag.get(tag)

    def __contains__(self, cls: type) -> bool:
        return cls in self._by_type


DEFAULT_REGISTRY = MessageRegistry()


def message(cls: type | None = None, *, tag: str | None = None, registry: MessageRegistry | None = None):
    """Declare a message type: a frozen, slotted dataclass registered with the codec.

    >>> @message
    ... class Ping:
    ...     n: int
    >>> Ping(3)
    Ping(n=3)

    The wire tag defaults to ``module.QualName``; pass ``tag=`` for a shorter or stable one.
    """

    def wrap(klass: type) -> type:
        if not dataclasses.is_dataclass(klass):
            klass = dataclasses.dataclass(frozen=True, slots=True)(klass)
        elif not klass.__dataclass_params__.frozen:  # type: ignore[attr-defined]
            raise TypeError(f"message {klass.__qualname__} must be a frozen dataclass")
        klass.__sparklet_tag__ = tag or f"{klass.__module__}.{klass.__qualname__}"
        (registry or DEFAULT_REGISTRY).register(klass, klass.__sparklet_tag__)
        return klass

    return wrap if cls is None else wrap(cls)


def register_message_types(types: Any, registry: MessageRegistry | None = None) -> int:
    """Register message classes that arrived by value (cloudpickle does not re-run the
    ``@message`` decorator, e.g. for types declared in a ``__main__`` script). Returns how
    many were new."""
    registry = registry or DEFAULT_REGISTRY
    added = 0
    for cls in types:
        tag = getattr(cls, "__sparklet_tag__", None)
        if isinstance(cls, type) and tag is not None and cls not in registry:
            registry.register(cls, tag)
            added += 1
    return added


def message_tag(cls: type, registry: MessageRegistry | None = None) -> str:
    spec = (registry or DEFAULT_REGISTRY).spec_for_type(cls)
    if spec is None:
        raise CodecError(f"{cls.__qualname__} is not a declared message type (use @message)")
    return spec.tag


class Codec:
    """msgpack encoder/decoder for messages, bound to one actor system.

    ``ref_type`` is the :class:`ActorRef` base class; ``encode_ref(ref)`` gives its
    ``(address, path)`` and ``resolve_ref(address, path)`` turns a decoded pair back into
    a reference usable in this process.
    """

    def __init__(
        self,
        *,
        ref_type: type,
        encode_ref: Callable[[Any], tuple[str | None, str]],
        resolve_ref: Callable[[str | None, str], Any],
        registry: MessageRegistry | None = None,
    ) -> None:
        self._registry = registry or DEFAULT_REGISTRY
        self._by_type = self._registry._by_type
        self._by_tag = self._registry._by_tag
        self._ref_type = ref_type
        self._encode_ref = encode_ref
        self._resolve_ref = resolve_ref
        self._packer = msgpack.Packer(default=self._default, use_bin_type=True, autoreset=True)
        self._remote_packer = msgpack.Packer(default=self._default_remote, use_bin_type=True, autoreset=True)
        # Local values in flight through a strict-mode round trip, by id (popped on decode).
        self._locals: dict[int, Local] = {}

    # -- encoding ---------------------------------------------------------------------
    def _default_remote(self, obj: Any) -> Any:
        if type(obj) is Local:
            raise CodecError(f"{obj!r} is process-local and cannot be sent to another process")
        return self._default(obj)

    def _default(self, obj: Any) -> Any:
        spec = self._by_type.get(type(obj))
        if spec is not None:
            return (spec.ext, *spec.values(obj))
        if type(obj) is Local:
            self._locals[id(obj)] = obj
            return msgpack.ExtType(_LOCAL_EXT, id(obj).to_bytes(8, "little"))
        if isinstance(obj, self._ref_type):
            address, path = self._encode_ref(obj)
            return (_REF_MARK, address, path)
        if isinstance(obj, int):
            raise CodecError(f"integer {obj} does not fit in msgpack's 64 bits")
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            raise CodecError(f"{type(obj).__qualname__} is a dataclass but not a declared message type (use @message)")
        raise CodecError(
            f"cannot encode a value of type {type(obj).__module__}.{type(obj).__qualname__}: "
            "messages carry None, bool, int, float, str, bytes, tuples/lists, dicts, actor refs "
            "and @message types (send other objects as cloudpickled bytes)"
        )

    def encode(self, obj: Any, *, remote: bool = True) -> bytes:
        """Encode ``obj`` for another process (``remote=True``, where :class:`Local` values
        are refused) or for a strict-mode round trip; raises :class:`CodecError` naming
        what could not be encoded."""
        packer = self._remote_packer if remote else self._packer
        try:
            return packer.pack(obj)
        except CodecError as exc:
            packer.reset()
            raise CodecError(f"cannot encode {_describe(obj)}: {exc}") from None
        except (OverflowError, ValueError, TypeError) as exc:
            packer.reset()
            raise CodecError(f"cannot encode {_describe(obj)}: {exc}") from None

    # -- decoding ---------------------------------------------------------------------
    def _ext_hook(self, code: int, data: bytes, lenient: bool = False) -> Any:
        if code == _MSG_EXT:
            try:
                tag = data.decode()
            except UnicodeDecodeError:
                raise CodecError(f"message type tag is not UTF-8: {data[:40]!r}") from None
            spec = self._by_tag.get(tag)
            if spec is None:
                if lenient:
                    return _UnknownSpec(tag)
                raise CodecError(f"unknown message type tag {tag!r}")
            return spec
        if code == _REF_EXT:
            return _REF_MARK
        if code == _LOCAL_EXT and not lenient:
            local = self._locals.pop(int.from_bytes(data, "little"), None)
            if local is not None:
                return local
            raise CodecError("a process-local value arrived without its object (it cannot cross processes)")
        raise CodecError(f"unknown msgpack ext type {code}")

    def _list_hook(self, items: tuple) -> Any:
        if items:
            head = items[0]
            if type(head) is _UnknownSpec:
                return head.build(items[1:])
            if type(head) is _MessageSpec:
                try:
                    return head.build(items[1:])
                except CodecError:
                    raise
                except Exception as exc:  # the dataclass refused the values
                    raise CodecError(f"malformed {head.tag!r} message: {exc}") from None
            if head is _REF_MARK:
                if len(items) != 3 or not isinstance(items[2], str):
                    raise CodecError(f"malformed actor reference {items!r}")
                return self._resolve_ref(items[1], items[2])
        return items

    def decode(self, data: bytes | memoryview, *, lenient: bool = False) -> Any:
        """Decode one frame payload; any malformation is a :class:`CodecError`.

        ``lenient``: a message with an unknown type tag becomes an :class:`UnknownMessage`
        instead of failing the whole frame.
        """
        try:
            return msgpack.unpackb(
                data,
                use_list=False,
                raw=False,
                strict_map_key=False,
                ext_hook=self._lenient_ext_hook if lenient else self._ext_hook,
                list_hook=self._list_hook,
            )
        except CodecError:
            raise
        except Exception as exc:  # msgpack raises several unrelated types on bad input
            raise CodecError(f"malformed frame ({type(exc).__name__}: {exc})") from None

    def _lenient_ext_hook(self, code: int, data: bytes) -> Any:
        return self._ext_hook(code, data, lenient=True)

    def roundtrip(self, obj: Any) -> Any:
        """Encode then decode: what strict mode does to every local message."""
        try:
            return self.decode(self.encode(obj, remote=False))
        finally:
            self._locals.clear()


def _describe(obj: Any) -> str:
    spec = DEFAULT_REGISTRY.spec_for_type(type(obj))
    return f"message {spec.tag!r}" if spec else f"value of type {type(obj).__qualname__}"
