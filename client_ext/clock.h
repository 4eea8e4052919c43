/* The hooks' time source.
 *
 * Reading CLOCK_MONOTONIC costs tens of nanoseconds (far more in some
 * virtual machines), twice per recorded call. Where the kernel itself trusts
 * the CPU's time-stamp counter (x86-64 with the "tsc" clocksource, which
 * implies an invariant counter synchronised across cores), the hooks read
 * the counter instead and sessions convert ticks to nanoseconds when they
 * stop, against CLOCK_MONOTONIC readings taken at module load and at the
 * conversion. Elsewhere a tick is a CLOCK_MONOTONIC nanosecond. */
#ifndef TP_CLOCK_H
#define TP_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

/** Whether ticks are TSC ticks (read-only after tp_clock_init()). */
extern bool tp_clock_tsc;

/** CLOCK_MONOTONIC in ns. */
static inline int64_t tp_clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/** The current time in ticks. */
static inline int64_t tp_clock(void)
{
#if defined(__x86_64__)
    if (__builtin_expect(tp_clock_tsc, 1))
        return (int64_t)__rdtsc();
#endif
    return tp_clock_mono_ns();
}

/** Choose the time source and take the reference reading. Call once, at
 *  module load; force_mono selects CLOCK_MONOTONIC whatever the machine. */
void tp_clock_init(bool force_mono);

/** Nanoseconds per tick, measured from module load to now (1.0 without the
 *  TSC). The first call within 2 ms of tp_clock_init() waits for the rest of
 *  those 2 ms, so that the measure is precise. */
double tp_clock_ns_per_tick(void);

#endif
