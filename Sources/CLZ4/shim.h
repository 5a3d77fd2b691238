// The LZ4 block API from Debian's liblz4-dev.
#include <lz4.h>
