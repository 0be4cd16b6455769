# Declarations for compiling calendar.py with Cython (see setup.py): the
# epoch-microsecond arithmetic the clocks call per event, with C types.

cimport cython

cdef class _Table:
    cdef public long long lo_year, hi_year, lo_us, hi_us
    cdef public list starts, ends, cum, cum_end

    @cython.locals(k=Py_ssize_t, start=cython.longlong, end=cython.longlong, counted=cython.longlong)
    cpdef long long position(self, long long us) except? -1

@cython.locals(lo=Py_ssize_t, hi=Py_ssize_t, mid=Py_ssize_t, value=cython.longlong)
cdef Py_ssize_t _bisect_right(list values, long long x) except -1

@cython.locals(lo=Py_ssize_t, hi=Py_ssize_t, mid=Py_ssize_t, value=cython.longlong)
cdef Py_ssize_t _bisect_left(list values, long long x) except -1

cdef class _Timeline:
    cdef public object zone, weekly, usual, holidays, countries, workdays, special, closed
    cdef public dict raw_years, working, nth_cache
    cdef public _Table table
    cdef public object lock
    cdef public long long first_year, last_year
    cdef public str years
    cpdef _Table covering(self, long long us)
    cpdef _Table grown(self, _Table table, bint forward)

    @cython.locals(table=_Table, k=Py_ssize_t)
    cpdef bint is_open(self, long long us) except -1

    @cython.locals(table=_Table, i=Py_ssize_t, start=cython.longlong)
    cpdef long long next_open(self, long long us) except? -1

    @cython.locals(table=_Table, k=Py_ssize_t, end=cython.longlong)
    cpdef long long previous_close(self, long long us) except? -1

    @cython.locals(
        table=_Table, starts=list, cum=list, i=Py_ssize_t, k=Py_ssize_t,
        start=cython.longlong, opens=cython.longlong, end=cython.longlong,
        counted=cython.longlong, target=cython.longlong, due=cython.longlong,
    )
    cpdef long long add(self, long long us, long long amount) except? -1

    @cython.locals(table=_Table)
    cpdef long long elapsed(self, long long a, long long b) except? -1
