from slaengine.calendar cimport _Timeline as _Hours

cdef class _Roles:
    cdef public tuple fixed, checks
    cpdef hits(self, fields)

cpdef bint _any(tuple alternatives, fields)

cdef class _Spec:
    cdef public object name, kind, on_reopen
    cdef public dict roles
    cdef public frozenset pause_statuses, inactive_statuses

cpdef object _utc_or_none(us)

cdef class _Cycle:
    cdef public long long number, started_at, since, counted, ran
    cdef public list segments, used
    cdef public object open_at, stopped_at, outcome, target, calendar, _budget, _record
    cdef public _Hours arithmetic
    cpdef pause(self, long long at)
    cpdef stop(self, long long at, outcome)
    cpdef reopen(self, long long at, bint paused)
    cpdef retarget(self, long long at, target, calendar, mode)
    cpdef paused_time(self, long long at)
    cpdef budget(self)
    cpdef _Measure measure(self, long long at)
    cpdef record(self)

cdef class _Measure:
    cdef public object consumed, budget, due, state

cpdef object _locate(_Hours arithmetic, list segments, list used, amount, resume)

cdef class _Metric:
    cdef public _Spec spec
    cdef public _Cycle cycle
    cdef public list history
    cdef public bint event_paused
    cpdef on_event(self, str kind, fields, long long at, status, _Timeline timeline)
    cpdef _new_cycle(self, long long at, bint paused, _Timeline timeline)
    cpdef status(self, long long at, plan, bint paused_now)

cdef class _Timeline:
    cdef public object policy, ticket, status, decision
    cdef public list metrics
    cdef public dict _calendars
    cpdef calendar(self, name)
    cpdef advance(self, event, long long at)
    cpdef _redecide(self, long long at)
    cpdef retarget(self, _Cycle cycle, name, long long at)
    cpdef dict status_of(self, long long at)
    cpdef bint _paused(self, _Metric metric)

cdef class TicketClock:
    cdef public object policy, _ticket_id, _timeline, _created
    cdef public dict _events
    cdef public list _keys
    cdef public long long _applied
    cpdef _advance(self, event, long long at)
    cpdef _Timeline _replayed(self)
