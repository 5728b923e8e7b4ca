/* libFuzzer's driver, linked by -sanitize=fuzzer (declared here: libFuzzer ships no header). */
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
