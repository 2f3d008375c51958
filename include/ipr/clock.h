/* clock.h: the clocks every part of ipr reads: a monotonic one for durations and the wall clock for timestamps
 * (UTC, ISO 8601), so that no file keeps its own copy of clock_gettime arithmetic. */
#ifndef IPR_CLOCK_H
#define IPR_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Seconds on CLOCK_MONOTONIC: for durations within one process (never stored). */
double ipr_clock_monotonic_s(void);
/* Seconds since the epoch on CLOCK_REALTIME: for times written to files and compared across processes. */
double ipr_clock_wall_s(void);
/* "2024-05-01T12:00:00Z", or "20240501T120000Z" when compact. */
void ipr_clock_utc_stamp(int64_t epoch, char *out, size_t cap, int compact);

#ifdef __cplusplus
}
#endif
#endif
