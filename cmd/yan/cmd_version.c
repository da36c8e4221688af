/* cmd_version.c — `yan version`: version, ABI and the CPU features found. */
#include "cmd.h"

int yan_cmd_version(int argc, char **argv) {
    if (argc > 1 && cmd_is_help(argv[1])) {
        printf("usage: yan version\n\nPrints the version, the ABI version and the CPU features yan dispatches to.\n");
        return 0;
    }
    printf("yan %s (abi %d)\ncpu: %s, %d cores\n", yan_version(), YAN_ABI_VERSION, yan_cpu_features(), yan_cpu_count());
    return 0;
}
