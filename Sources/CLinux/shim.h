#ifndef PEON_CLINUX_SHIM_H
#define PEON_CLINUX_SHIM_H

// Linux calls Swift cannot make itself: prctl is variadic and capset has no glibc wrapper.
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/// Keeps the permitted capabilities across the setuid that follows (cleared again by
/// peon_limit_capabilities, and by any execve).
static inline int peon_keep_capabilities(void) { return prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L); }

/// After the setuid: every capability gone but `cap` (none when negative), which stays permitted,
/// inheritable and ambient but not effective: the programs this process runs get it, this process
/// does not use it itself. Answers 0, or -1 with errno (then nothing at all is kept).
static inline int peon_limit_capabilities(int cap) {
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {{0, 0, 0}, {0, 0, 0}};
    prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L);
    if (cap >= 0 && cap < 64) {
        data[cap / 32].permitted = 1u << (cap % 32);
        data[cap / 32].inheritable = 1u << (cap % 32);
        if (syscall(SYS_capset, &header, data) == 0 && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (long)cap, 0L, 0L) == 0) return 0;
        data[cap / 32].permitted = 0;
        data[cap / 32].inheritable = 0;
    }
    syscall(SYS_capset, &header, data);
    return cap < 0 ? 0 : -1;
}

/// CAP_NET_ADMIN, for Swift (the kernel header's macro is not imported as a constant everywhere).
static inline int peon_cap_net_admin(void) { return CAP_NET_ADMIN; }

#endif
