// libFuzzer's driver, which the fuzz targets' entry points call (see FuzzSupport).
#ifndef BRAIN_CLIBFUZZER_H
#define BRAIN_CLIBFUZZER_H

#include <stddef.h>
#include <stdint.h>

/// Runs libFuzzer with the command-line arguments and the function that tests one input.
/// Defined by the libFuzzer runtime that `-sanitize=fuzzer` links in.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*test_one_input)(const uint8_t *data, size_t size));

#endif
