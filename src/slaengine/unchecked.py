"""Pydantic models built from values already known to be right, without validation.

Compiled with the clocks (see ``setup.py``): the clocks build every status
and threshold through ``trusted``, several times per ticket.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

_M = TypeVar("_M", bound=BaseModel)
_new = object.__new__
_set_dict = object.__setattr__
# BaseModel's own slots, set through their descriptors: faster than
# object.__setattr__, which looks each name up on the class first.
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def trusted(cls: type[_M], given: set[str], values: dict[str, Any]) -> _M:
    """A model holding ``values`` (every field), built without validation.

    Only for values the caller computed with each field's type: validating
    again would cost about three of every four microseconds spent building
    one. ``given`` is the set of fields counted as set; it may be shared
    (pydantic copies it before changing it).
    """
    model = _new(cls)
    _set_dict(model, "__dict__", values)
    _set_fields_set(model, given)
    _set_extra(model, None)
    _set_private(model, None)
    return model


def filled(template: _M, **changes: object) -> _M:
    """A copy of a validated model with some fields replaced, without validation.

    The engine builds one validated template per distinct rule match and
    fills in each ticket's id and due times; pydantic's ``model_copy`` does
    the same work several times slower. Only for values whose types are right
    by construction, and for fields the template was built with (given
    explicitly), since the template's set of given fields is kept as it is.
    """
    values = template.__dict__.copy()
    values.update(changes)
    return trusted(template.__class__, template.__pydantic_fields_set__, values)
