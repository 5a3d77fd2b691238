// The header declares libFuzzer's driver; SwiftPM wants a source file in every C target.
#include "CLibFuzzer.h"
