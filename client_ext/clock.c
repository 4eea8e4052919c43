/* The hooks' time source; see clock.h. */
#include "clock.h"

#include <stdio.h>
#include <string.h>

bool tp_clock_tsc;
static int64_t ref_tick, ref_mono;

/* Whether the kernel's clocksource is the TSC: it then vouches that the
 * counter is invariant and synchronised across CPUs. */
static bool kernel_uses_tsc(void)
{
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (!f)
        return false;
    char buf[32] = "";
    bool ok = fgets(buf, sizeof(buf), f) != NULL && strncmp(buf, "tsc", 3) == 0 &&
              (buf[3] == '\n' || buf[3] == '\0');
    fclose(f);
    return ok;
}

void tp_clock_init(bool force_mono)
{
#if defined(__x86_64__)
    tp_clock_tsc = !force_mono && kernel_uses_tsc();
#else
    (void)force_mono;
    tp_clock_tsc = false;
#endif
    ref_mono = tp_clock_mono_ns();
    ref_tick = tp_clock();
}

double tp_clock_ns_per_tick(void)
{
    if (!tp_clock_tsc)
        return 1.0;
    int64_t mono, tick;
    do {
        mono = tp_clock_mono_ns();
        tick = tp_clock();
    } while (mono - ref_mono < 2000000);
    if (tick <= ref_tick)
        return 1.0; /* cannot happen with an invariant counter */
    return (double)(mono - ref_mono) / (double)(tick - ref_tick);
}
