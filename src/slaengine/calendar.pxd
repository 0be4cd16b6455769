# Declarations for compiling calendar.py with Cython (see setup.py): the
# epoch-microsecond arithmetic the clocks call per event, with C types.

cdef class _Table:
    cdef public long long lo_year, hi_year, lo_us, hi_us
    cdef public list starts, ends, cum, cum_end
    cpdef long long position(self, long long us) except? -1

cdef class _Timeline:
    cdef public object zone, weekly, usual, holidays, countries, workdays, special, closed
    cdef public dict raw_years, working, nth_cache
    cdef public _Table table
    cdef public object lock
    cdef public long long first_year, last_year
    cdef public str years
    cpdef _Table covering(self, long long us)
    cpdef _Table grown(self, _Table table, bint forward)
    cpdef bint is_open(self, long long us) except -1
    cpdef long long next_open(self, long long us) except? -1
    cpdef long long previous_close(self, long long us) except? -1
    cpdef long long add(self, long long us, long long amount) except? -1
    cpdef long long elapsed(self, long long a, long long b) except? -1
